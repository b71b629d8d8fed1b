// Package registrytest runs a real registry for tests: Debian's
// docker-registry (distribution v2.8) on a free loopback port, its storage
// in the test's temporary directory, optionally behind htpasswd Basic auth
// or a token server (Bearer auth) that runs in the test process. It is
// stopped when the test ends. Tests are skipped when the binary is missing.
package registrytest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Binary is where Debian installs the registry (package docker-registry).
const Binary = "/usr/bin/docker-registry"

// Registry is a running registry.
type Registry struct {
	addr  string
	user  string
	pass  string
	token *tokenServer
}

// Option configures Start.
type Option func(*options)

type options struct {
	user, pass string
	token      bool
}

// WithHtpasswd protects the registry with Basic auth: one user, user, with
// the password pass.
func WithHtpasswd(user, pass string) Option {
	return func(o *options) { o.user, o.pass, o.token = user, pass, false }
}

// WithTokenAuth protects the registry with Bearer tokens from a token
// server in the test process, which gives tokens to the user user with the
// password pass (all actions) and to anonymous clients (pull only).
func WithTokenAuth(user, pass string) Option {
	return func(o *options) { o.user, o.pass, o.token = user, pass, true }
}

// Start runs a registry for the test and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("registry binary: %v", err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dir := t.TempDir()
	auth := ""
	var ts *tokenServer
	switch {
	case o.token:
		auth, ts = startTokenServer(t, dir, o.user, o.pass)
	case o.user != "":
		auth = writeHtpasswd(t, dir, o.user, o.pass)
	}
	// The port is free when we look, but may be taken before the
	// registry binds it: try a few times.
	var errs []error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		if err := run(t, dir, addr, auth); err != nil {
			errs = append(errs, err)
			continue
		}
		return &Registry{addr: addr, user: o.user, pass: o.pass, token: ts}
	}
	t.Fatalf("start registry: %v", errors.Join(errs...))
	return nil
}

// Addr is the registry's "127.0.0.1:port".
func (r *Registry) Addr() string { return r.addr }

// Host is the registry's host as references name it ("127.0.0.1:port").
func (r *Registry) Host() string { return r.addr }

// URL is the registry's base URL, "http://127.0.0.1:port".
func (r *Registry) URL() string { return "http://" + r.addr }

// Ref is a reference to name (such as "test/busybox:latest") in the
// registry.
func (r *Registry) Ref(name string) string { return r.addr + "/" + name }

// Credentials are the user and password of WithHtpasswd or WithTokenAuth.
func (r *Registry) Credentials() (user, pass string) { return r.user, r.pass }

// TokenRequests counts the requests the token server of WithTokenAuth has
// had (0 without one).
func (r *Registry) TokenRequests() int64 {
	if r.token == nil {
		return 0
	}
	return r.token.requests.Load()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// run starts the registry on addr and waits until it answers /v2/. It
// returns an error (after stopping it) when it exits first.
func run(t testing.TB, dir, addr, auth string) error {
	secret := make([]byte, 16)
	rand.Read(secret)
	storage := filepath.Join(dir, "storage")
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
%s`, storage, addr, hex.EncodeToString(secret), auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(Binary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Kill() // the process we started, by its PID
		<-exited
	}

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				t.Cleanup(stop)
				return nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			stop()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("registry exited (%v): %s", err, strings.TrimSpace(string(log)))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("registry did not answer on %s: %s", addr, strings.TrimSpace(string(log)))
		}
	}
}

// writeHtpasswd writes the password file and returns the auth section.
func writeHtpasswd(t testing.TB, dir, user, pass string) string {
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", path)
}
