package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"

	"berth.dev/internal/errdefs"
)

// Client talks to registries. It is safe for concurrent use; it caches the
// authentication challenges and tokens of the hosts it has talked to, and
// which insecure hosts answered over plain HTTP.
type Client struct {
	hosts      *Hosts
	creds      func(host string) (AuthConfig, error)
	http       *http.Client
	insecure   *http.Client // http's transport without TLS verification
	userAgent  string
	retries    int
	retryDelay time.Duration

	auth authCache
	now  func() time.Time // the clock token lifetimes are measured by

	mu        sync.Mutex
	plainHTTP map[string]bool // insecure hosts found to speak plain HTTP
}

// Option configures a Client.
type Option func(*Client)

// DefaultRetries is how often a failed request (a 5xx or 429 answer, a
// connection error, a download cut short) is tried again by default.
const DefaultRetries = 3

// WithHosts sets the per-host configuration (mirrors, insecure hosts).
func WithHosts(h *Hosts) Option { return func(c *Client) { c.hosts = h } }

// WithCredentials sets where credentials come from, given a registry host
// such as "docker.io" or "127.0.0.1:5000" (a DockerConfig's Get fits).
// Without it every request is anonymous.
func WithCredentials(f func(host string) (AuthConfig, error)) Option {
	return func(c *Client) { c.creds = f }
}

// WithHTTPClient sets the HTTP client. For insecure hosts its transport is
// cloned with TLS verification off when it is an *http.Transport.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithUserAgent sets the User-Agent of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithRetries sets how many times a failed request is tried again (0: never).
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(n, 0) } }

// WithRetryDelay sets the first pause before a retry; it doubles with each
// further attempt (default 250ms).
func WithRetryDelay(d time.Duration) Option { return func(c *Client) { c.retryDelay = d } }

// New returns a Client.
func New(opts ...Option) *Client {
	c := &Client{
		retries:    DefaultRetries,
		retryDelay: 250 * time.Millisecond,
		userAgent:  "berth",
		plainHTTP:  map[string]bool{},
		now:        time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// A registry that accepts a connection and never answers must
		// not hang a pull forever.
		tr.ResponseHeaderTimeout = 2 * time.Minute
		c.http = &http.Client{Transport: tr}
	}
	c.insecure = c.http
	var tr *http.Transport
	switch t := c.http.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	}
	if tr != nil {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.InsecureSkipVerify = true
		ic := *c.http
		ic.Transport = tr
		c.insecure = &ic
	}
	return c
}

// request is one call of the registry API.
type request struct {
	method string
	ep     Endpoint
	// path is below /v2/ ("library/busybox/manifests/latest"), or abs is
	// a whole URL (an upload location).
	path   string
	abs    *url.URL
	query  url.Values
	header http.Header
	// body is sent again as is when the request is retried; a stream
	// cannot be, so a request with one is never retried.
	body   []byte
	stream io.Reader
	length int64 // of stream, -1 if unknown
	scopes []string
	// ownAuth: the header carries the authorization (or none), and the
	// client's challenges and credentials are left out (for Login).
	ownAuth bool
}

// do sends r, retrying with back-off after transport errors and transient
// answers (429, 5xx) while the body can be sent again. Any answer that is
// not retried is returned, whatever its status.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, r)
		again := r.stream == nil && attempt < c.retries && ctx.Err() == nil
		switch {
		case err != nil && (!again || !errors.Is(err, errdefs.ErrUnavailable) || hostUnknown(err)):
			return nil, err
		case err == nil && (!again || !transientStatus(resp.StatusCode)):
			return resp, nil
		case err == nil:
			discard(resp)
		}
		if err := c.pause(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// hostUnknown reports a name the resolver says does not exist: asking
// again does not help (an offline machine fails this way at once).
func hostUnknown(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// pause waits before retry number attempt+1.
func (c *Client) pause(ctx context.Context, attempt int) error {
	d := c.retryDelay << min(attempt, 6)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// send sends r once, and once more after a 401 with a challenge (which the
// second request answers).
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	resp, err := c.sendOnce(ctx, r)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || r.stream != nil || r.ownAuth {
		return resp, err
	}
	ch, ok := pickChallenge(ParseChallenges(resp.Header.Values("WWW-Authenticate")))
	if !ok {
		return resp, nil
	}
	if ch.Scheme == "basic" {
		auth, err := c.credentials(r.ep.AuthHost)
		if err != nil {
			discard(resp)
			return nil, err
		}
		if auth.Username == "" && auth.Password == "" {
			return resp, nil // nothing to answer with
		}
	}
	discard(resp)
	retry := *r
	retry.scopes = scopeList(r.scopes, strings.Fields(ch.Params["scope"]))
	// The token that was refused is stale, and so is one for the scopes
	// the registry now asks for.
	c.auth.dropToken(tokenKey(r.ep.Host, scopeList(r.scopes)))
	c.auth.dropToken(tokenKey(r.ep.Host, retry.scopes))
	c.auth.setChallenge(r.ep.Host, ch)
	return c.sendOnce(ctx, &retry)
}

// sendOnce sends r with the authorization the host asked for last. An
// insecure host that fails over https is tried over plain http, and
// remembered as such.
func (c *Client) sendOnce(ctx context.Context, r *request) (*http.Response, error) {
	scheme := "https"
	if r.ep.PlainHTTP || c.speaksHTTP(r.ep.Host) {
		scheme = "http"
	}
	resp, err := c.sendScheme(ctx, r, scheme)
	if err == nil || scheme == "http" || !r.ep.Insecure || r.abs != nil || r.stream != nil || ctx.Err() != nil || !errors.Is(err, errdefs.ErrUnavailable) {
		return resp, err
	}
	resp, err2 := c.sendScheme(ctx, r, "http")
	if err2 != nil {
		return nil, fmt.Errorf("%w (and over plain http: %w)", err, err2)
	}
	c.mu.Lock()
	c.plainHTTP[r.ep.Host] = true
	c.mu.Unlock()
	return resp, nil
}

func (c *Client) speaksHTTP(host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plainHTTP[host]
}

func (c *Client) sendScheme(ctx context.Context, r *request, scheme string) (*http.Response, error) {
	req, err := c.newRequest(ctx, r, scheme)
	if err != nil {
		return nil, err
	}
	if !r.ownAuth {
		if err := c.authorize(ctx, req, r.ep, r.scopes); err != nil {
			return nil, err
		}
	}
	hc := c.http
	if r.ep.Insecure {
		hc = c.insecure
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", errdefs.ErrUnavailable, err)
	}
	return resp, nil
}

func (c *Client) newRequest(ctx context.Context, r *request, scheme string) (*http.Request, error) {
	var u *url.URL
	if r.abs != nil {
		v := *r.abs
		u = &v
	} else {
		u = &url.URL{Scheme: scheme, Host: r.ep.Host, Path: r.ep.Path + "/v2/" + r.path}
	}
	if len(r.query) > 0 {
		q := u.Query()
		for k, vs := range r.query {
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	length := int64(0)
	switch {
	case r.stream != nil:
		body, length = r.stream, r.length
	case r.body != nil:
		body, length = bytes.NewReader(r.body), int64(len(r.body))
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	}
	if body != nil {
		req.ContentLength = length
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	return req, nil
}

// discard drains a little of a response body (so the connection can be
// reused) and closes it.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// pullEndpoints are where a pull of ref may go: mirrors first.
func (c *Client) pullEndpoints(ref reference.Named) []Endpoint {
	return c.hosts.Endpoints(reference.Domain(ref), true)
}

// pushEndpoint is the registry itself.
func (c *Client) pushEndpoint(ref reference.Named) Endpoint {
	eps := c.hosts.Endpoints(reference.Domain(ref), false)
	return eps[len(eps)-1]
}

// onEndpoints runs fn on each endpoint in turn until one succeeds, and
// returns the last error when none does (the registry's own, mirrors being
// tried first).
func onEndpoints[T any](ctx context.Context, eps []Endpoint, fn func(Endpoint) (T, error)) (T, error) {
	var zero T
	var last error
	for _, ep := range eps {
		v, err := fn(ep)
		if err == nil {
			return v, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return zero, last
}
