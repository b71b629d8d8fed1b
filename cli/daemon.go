package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// DefaultHost is berthd's API socket.
const DefaultHost = "unix:///run/berth/berth.sock"

// daemonStartTimeout bounds the wait for a berthd that berth started.
const daemonStartTimeout = 10 * time.Second

// host returns the daemon address: -H, else $BERTH_HOST, else
// $DOCKER_HOST, else DefaultHost.
func (c *CLI) host() string {
	h, _ := c.hostSource()
	return h
}

// hostSource also says whether berth may start berthd when nothing
// answers there: only for the default socket and for $BERTH_HOST, never
// for an address meant for another daemon ($DOCKER_HOST, -H).
func (c *CLI) hostSource() (string, bool) {
	switch {
	case len(c.hosts) > 0:
		return c.hosts[0], false
	case c.getenv("BERTH_HOST") != "":
		return c.getenv("BERTH_HOST"), true
	case c.getenv("DOCKER_HOST") != "":
		return c.getenv("DOCKER_HOST"), false
	}
	return DefaultHost, true
}

// client returns the API client, connecting (and starting berthd) on the
// first call.
func (c *CLI) client(ctx context.Context) (*client.Client, error) {
	if c.api != nil {
		return c.api, nil
	}
	if len(c.hosts) > 1 {
		return nil, &StatusError{Status: "Specify only one -H", Code: 1}
	}
	host, autostart := c.hostSource()
	if socket, ok := strings.CutPrefix(host, "unix://"); ok && autostart {
		if err := c.ensureDaemon(ctx, host, socket); err != nil {
			return nil, err
		}
	}
	api, err := client.New(
		client.WithHost(host),
		client.WithAPIVersionNegotiation(),
		client.WithUserAgent("berth/"+c.version),
	)
	if err != nil {
		return nil, fmt.Errorf("unable to resolve berth daemon host %q: %w", host, err)
	}
	c.api = api
	return api, nil
}

// ensureDaemon starts berthd on socket when nothing listens there. A
// socket that refuses for another reason (permissions, say) is left to the
// client, whose error says so.
func (c *CLI) ensureDaemon(ctx context.Context, host, socket string) error {
	conn, err := net.Dial("unix", socket)
	if err == nil {
		conn.Close()
		return nil
	}
	if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	logPath := filepath.Join(filepath.Dir(socket), "berthd.log")
	if err := c.startDaemon(ctx, host, socket, logPath); err != nil {
		return &StatusError{Status: connectError(host) + "\n" + err.Error(), Code: 1}
	}
	return nil
}

// daemonBinary finds berthd: $BERTH_DAEMON, else next to the running
// executable, else in $PATH.
func (c *CLI) daemonBinary() (string, error) {
	if p := c.getenv("BERTH_DAEMON"); p != "" {
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "berthd")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("berthd")
	if err != nil {
		return "", fmt.Errorf("berthd was not found next to the berth executable or in $PATH")
	}
	return p, nil
}

// startDaemon runs berthd detached (its own session, output to logPath)
// and waits until it answers /_ping on socket.
func (c *CLI) startDaemon(ctx context.Context, host, socket, logPath string) error {
	bin, err := c.daemonBinary()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(socket), 0o711); err != nil {
		return fmt.Errorf("could not start berthd: %w", err)
	}
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("could not start berthd: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--host", host)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if c.debug {
		fmt.Fprintf(c.errOut, "starting %s --host %s (log: %s)\n", bin, host, logPath)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("could not start berthd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	ctx, cancel := context.WithTimeout(ctx, daemonStartTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if ping(ctx, socket) {
			return nil
		}
		select {
		case err := <-exited:
			if ping(ctx, socket) {
				// Another berthd won the race for the socket.
				return nil
			}
			return fmt.Errorf("berthd (%s) exited: %v%s", bin, err, logTail(logPath))
		case <-ctx.Done():
			return fmt.Errorf("berthd (%s) did not answer within %s; see %s", bin, daemonStartTimeout, logPath)
		case <-tick.C:
		}
	}
}

// ping reports whether an API server answers GET /_ping on socket.
func ping(ctx context.Context, socket string) bool {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://berthd/_ping", nil)
	if err != nil {
		return false
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// logTail returns the last lines of the daemon's log for an error message.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 5 {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return "; see " + path
	}
	return fmt.Sprintf("; last lines of %s:\n%s", path, strings.Join(lines, "\n"))
}
