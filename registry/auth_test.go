package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"

	"berth.dev/internal/errdefs"
)

func TestParseChallenges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   []Challenge
	}{
		{"basic", []string{`Basic realm="Registry Realm"`},
			[]Challenge{{"basic", map[string]string{"realm": "Registry Realm"}}}},
		{"bearer", []string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`},
			[]Challenge{{"bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull"}}}},
		{"two in one value", []string{`Basic realm="r", Bearer realm="https://a/t",service="s"`},
			[]Challenge{{"basic", map[string]string{"realm": "r"}}, {"bearer", map[string]string{"realm": "https://a/t", "service": "s"}}}},
		{"two values", []string{`Basic realm="r"`, `bearer realm=https://a/t`},
			[]Challenge{{"basic", map[string]string{"realm": "r"}}, {"bearer", map[string]string{"realm": "https://a/t"}}}},
		{"spaces and case", []string{`BEARER  Realm = "x" , Service="y",error="insufficient_scope"`},
			[]Challenge{{"bearer", map[string]string{"realm": "x", "service": "y", "error": "insufficient_scope"}}}},
		{"escapes", []string{`Basic realm="say \"hi\", ok"`},
			[]Challenge{{"basic", map[string]string{"realm": `say "hi", ok`}}}},
		{"scope with spaces", []string{`Bearer realm="x",scope="repository:a:pull repository:b:pull,push"`},
			[]Challenge{{"bearer", map[string]string{"realm": "x", "scope": "repository:a:pull repository:b:pull,push"}}}},
		{"no params", []string{`Negotiate`}, []Challenge{{"negotiate", map[string]string{}}}},
		{"empty", []string{""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseChallenges(tc.values)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseChallenges(%q)\n got %#v\nwant %#v", tc.values, got, tc.want)
			}
		})
	}
}

// authRegistry is a fake registry that wants Basic or Bearer auth, with a
// token server, counting what it sees.
type authRegistry struct {
	t      *testing.T
	scheme string // "basic" or "bearer"
	user   string
	pass   string

	mu           sync.Mutex
	tokenScopes  []string // scope parameters of the token requests
	tokenAuth    []string // Authorization of the token requests
	issued       int
	revoked      map[string]bool
	registryHits int

	tokens   *httptest.Server
	registry *httptest.Server
}

func newAuthRegistry(t *testing.T, scheme string) *authRegistry {
	a := &authRegistry{t: t, scheme: scheme, user: "alice", pass: "s3cret", revoked: map[string]bool{}}
	a.tokens = httptest.NewServer(http.HandlerFunc(a.serveToken))
	t.Cleanup(a.tokens.Close)
	a.registry = httptest.NewServer(http.HandlerFunc(a.serveRegistry))
	t.Cleanup(a.registry.Close)
	return a
}

func (a *authRegistry) host() string { return strings.TrimPrefix(a.registry.URL, "http://") }

func (a *authRegistry) serveToken(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokenScopes = append(a.tokenScopes, strings.Join(r.URL.Query()["scope"], " "))
	a.tokenAuth = append(a.tokenAuth, r.Header.Get("Authorization"))
	if u, p, _ := r.BasicAuth(); u != a.user || p != a.pass {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad password"}]}`, http.StatusUnauthorized)
		return
	}
	if r.URL.Query().Get("service") != "fake" {
		http.Error(w, "wrong service", http.StatusBadRequest)
		return
	}
	a.issued++
	fmt.Fprintf(w, `{"token":"tok-%d","expires_in":300}`, a.issued)
}

func (a *authRegistry) serveRegistry(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.registryHits++
	ok := false
	switch a.scheme {
	case "basic":
		u, p, _ := r.BasicAuth()
		ok = u == a.user && p == a.pass
		w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
	case "bearer":
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		ok = strings.HasPrefix(tok, "tok-") && !a.revoked[tok]
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="fake",scope="repository:x/y:pull"`, a.tokens.URL))
	}
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"tags":["a","b"]}`)
}

func (a *authRegistry) client(user, pass string) *Client {
	return New(WithRetries(0), WithCredentials(func(host string) (AuthConfig, error) {
		if host != a.host() {
			a.t.Errorf("credentials asked for %q, want %q", host, a.host())
		}
		return AuthConfig{Username: user, Password: pass}, nil
	}))
}

func (a *authRegistry) ref(t *testing.T) reference.Named {
	r, err := reference.ParseNormalizedNamed(a.host() + "/x/y")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBasicAuth(t *testing.T) {
	a := newAuthRegistry(t, "basic")
	ctx := context.Background()
	tags, err := a.client("alice", "s3cret").Tags(ctx, a.ref(t))
	if err != nil || !reflect.DeepEqual(tags, []string{"a", "b"}) {
		t.Fatalf("Tags: %v, %v", tags, err)
	}
	_, err = a.client("alice", "wrong").Tags(ctx, a.ref(t))
	if !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}
	_, err = New(WithRetries(0)).Tags(ctx, a.ref(t))
	if !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("anonymous: %v", err)
	}
}

func TestBearerAuthCachesTokensPerScope(t *testing.T) {
	a := newAuthRegistry(t, "bearer")
	ctx := context.Background()
	c := a.client("alice", "s3cret")
	for range 3 {
		if _, err := c.Tags(ctx, a.ref(t)); err != nil {
			t.Fatal(err)
		}
	}
	a.mu.Lock()
	issued, scopes, auth := a.issued, a.tokenScopes, a.tokenAuth
	a.mu.Unlock()
	if issued != 1 {
		t.Fatalf("%d tokens issued for three requests of one scope, want 1 (cached)", issued)
	}
	if scopes[0] != "repository:x/y:pull" {
		t.Fatalf("token scope %q", scopes[0])
	}
	if !strings.HasPrefix(auth[0], "Basic ") {
		t.Fatalf("token request authorization %q, want Basic", auth[0])
	}

	// A push asks for a new token with the push scope.
	if _, err := c.blobExists(ctx, c.pushEndpoint(a.ref(t)), "x/y", digest.FromString("x"), true); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	last, issued := a.tokenScopes[len(a.tokenScopes)-1], a.issued
	a.mu.Unlock()
	if last != "repository:x/y:pull,push" || issued != 2 {
		t.Fatalf("push: token scope %q, %d tokens issued", last, issued)
	}

	_, err := a.client("alice", "wrong").Tags(ctx, a.ref(t))
	if !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestBearerRetriesOnceAfter401(t *testing.T) {
	a := newAuthRegistry(t, "bearer")
	ctx := context.Background()
	c := a.client("alice", "s3cret")
	if _, err := c.Tags(ctx, a.ref(t)); err != nil {
		t.Fatal(err)
	}
	// The registry stops accepting the cached token: the client gets a
	// 401, fetches a new token and succeeds, in one call.
	a.mu.Lock()
	a.revoked["tok-1"] = true
	hits := a.registryHits
	a.mu.Unlock()
	if _, err := c.Tags(ctx, a.ref(t)); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.issued != 2 || a.registryHits-hits != 2 {
		t.Fatalf("issued %d tokens and made %d requests, want 2 and 2 (one retry)", a.issued, a.registryHits-hits)
	}
}

func TestBearerGivesUpAfterOneRetry(t *testing.T) {
	a := newAuthRegistry(t, "bearer")
	a.revoked["tok-1"], a.revoked["tok-2"], a.revoked["tok-3"] = true, true, true
	_, err := a.client("alice", "s3cret").Tags(context.Background(), a.ref(t))
	if !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("Tags with tokens always refused: %v", err)
	}
	if a.registryHits != 2 {
		t.Fatalf("%d requests, want 2 (the first and one retry)", a.registryHits)
	}
}

func TestBearerTokenRenewedAfterExpiry(t *testing.T) {
	a := newAuthRegistry(t, "bearer")
	ctx := context.Background()
	c := a.client("alice", "s3cret")
	now := time.Now()
	c.now = func() time.Time { return now }
	for _, step := range []struct {
		advance time.Duration
		issued  int
	}{
		{0, 1},
		{200 * time.Second, 1}, // within the 300s lifetime
		{100 * time.Second, 2}, // 300s later: renewed (before it runs out)
		{10 * time.Second, 2},
	} {
		now = now.Add(step.advance)
		if _, err := c.Tags(ctx, a.ref(t)); err != nil {
			t.Fatal(err)
		}
		a.mu.Lock()
		issued := a.issued
		a.mu.Unlock()
		if issued != step.issued {
			t.Fatalf("after %v more: %d tokens issued, want %d", step.advance, issued, step.issued)
		}
	}
}
