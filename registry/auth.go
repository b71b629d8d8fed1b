package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"berth.dev/internal/errdefs"
)

// Challenge is one challenge of a WWW-Authenticate header: how the registry
// wants a request to be authorized.
type Challenge struct {
	// Scheme is lower case: "basic" or "bearer".
	Scheme string
	// Params has lower-case keys: realm, service, scope, error.
	Params map[string]string
}

// ParseChallenges reads the challenges of WWW-Authenticate header values. A
// value may hold several challenges separated by commas, as in
// `Basic realm="r", Bearer realm="https://auth/token",service="reg"`.
// What cannot be parsed is skipped.
func ParseChallenges(values []string) []Challenge {
	var out []Challenge
	for _, v := range values {
		out = append(out, parseChallengeValue(v)...)
	}
	return out
}

func parseChallengeValue(s string) []Challenge {
	var out []Challenge
	for {
		s = strings.TrimLeft(s, " \t,")
		scheme, rest := readToken(s)
		if scheme == "" {
			return out
		}
		ch := Challenge{Scheme: strings.ToLower(scheme), Params: map[string]string{}}
		s = rest
		for {
			t := strings.TrimLeft(s, " \t,")
			name, after := readToken(t)
			after = strings.TrimLeft(after, " \t")
			if name == "" || !strings.HasPrefix(after, "=") {
				// Either the end, a new challenge, or a token68
				// credential (which registries do not use).
				if strings.HasPrefix(after, "=") || (name == "" && t != "") {
					s = skipToComma(t)
				} else {
					s = t
				}
				break
			}
			var val string
			val, s = readValue(strings.TrimLeft(after[1:], " \t"))
			ch.Params[strings.ToLower(name)] = val
		}
		out = append(out, ch)
	}
}

// isTokenChar is RFC 7230's tchar.
func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func readToken(s string) (tok, rest string) {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// readValue reads a quoted string (with backslash escapes) or, leniently,
// anything up to a comma or a space (an unquoted URL is not a token, but
// some servers send one).
func readValue(s string) (val, rest string) {
	if !strings.HasPrefix(s, `"`) {
		i := strings.IndexAny(s, ", \t")
		if i < 0 {
			return s, ""
		}
		return s[:i], s[i:]
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "" // unterminated: take what there is
}

func skipToComma(s string) string {
	if i := strings.IndexByte(s, ','); i >= 0 {
		return s[i:]
	}
	return ""
}

// pickChallenge prefers Bearer over Basic and ignores schemes we cannot
// answer.
func pickChallenge(chs []Challenge) (Challenge, bool) {
	for _, scheme := range []string{"bearer", "basic"} {
		for _, ch := range chs {
			if ch.Scheme == scheme {
				return ch, true
			}
		}
	}
	return Challenge{}, false
}

// repoScope is the token scope for actions on a repository.
func repoScope(repo string, push bool) string {
	if push {
		return "repository:" + repo + ":pull,push"
	}
	return "repository:" + repo + ":pull"
}

// authCache remembers, per endpoint host, the challenge to answer and the
// bearer tokens already fetched (per set of scopes, until they expire).
type authCache struct {
	mu         sync.Mutex
	challenges map[string]Challenge
	tokens     map[string]cachedToken
}

type cachedToken struct {
	token   string
	expires time.Time
}

func (a *authCache) challenge(host string) (Challenge, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, ok := a.challenges[host]
	return ch, ok
}

// setChallenge remembers the challenge of a host for the next requests. Its
// scope concerns the request that was refused only, so it is not kept.
func (a *authCache) setChallenge(host string, ch Challenge) {
	params := make(map[string]string, len(ch.Params))
	for k, v := range ch.Params {
		if k != "scope" && k != "error" {
			params[k] = v
		}
	}
	ch.Params = params
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.challenges == nil {
		a.challenges = map[string]Challenge{}
	}
	a.challenges[host] = ch
}

func tokenKey(host string, scopes []string) string {
	return host + " " + strings.Join(scopes, " ")
}

func (a *authCache) token(key string, now time.Time) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.tokens[key]
	if !ok || !now.Before(t.expires) {
		return "", false
	}
	return t.token, true
}

func (a *authCache) setToken(key string, t cachedToken) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tokens == nil {
		a.tokens = map[string]cachedToken{}
	}
	a.tokens[key] = t
}

func (a *authCache) dropToken(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.tokens, key)
}

// tokenResponse is a token server's answer (Docker's token spec and its
// OAuth2 variant).
type tokenResponse struct {
	Token        string    `json:"token"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	ExpiresIn    int       `json:"expires_in"`
	IssuedAt     time.Time `json:"issued_at"`
}

// minTokenLifetime is the lifetime the token spec promises when a token
// server does not say.
const minTokenLifetime = 60 * time.Second

// tokenClientID names berth to token servers.
const tokenClientID = "berth"

// scopeList merges scopes without duplicates, sorted (cache keys must not
// depend on the order).
func scopeList(scopes ...[]string) []string {
	var out []string
	for _, list := range scopes {
		for _, s := range list {
			if s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return out
}

// fetchToken asks the realm of a Bearer challenge for a token for scopes:
// with an identity token by the OAuth2 refresh-token grant (POST), otherwise
// by GET with Basic credentials (or none, for anonymous pulls). offline asks
// for a refresh token too (at login).
func (c *Client) fetchToken(ctx context.Context, ch Challenge, auth AuthConfig, scopes []string, offline bool) (tokenResponse, error) {
	realm, err := url.Parse(ch.Params["realm"])
	if err != nil || realm.Host == "" || (realm.Scheme != "https" && realm.Scheme != "http") {
		return tokenResponse{}, fmt.Errorf("%w: bearer challenge with a bad realm %q", errdefs.ErrInvalidArgument, ch.Params["realm"])
	}
	var req *http.Request
	if auth.IdentityToken != "" {
		form := url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {auth.IdentityToken},
			"client_id":     {tokenClientID},
		}
		if s := ch.Params["service"]; s != "" {
			form.Set("service", s)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		if offline {
			form.Set("access_type", "offline")
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return tokenResponse{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		q := realm.Query()
		if s := ch.Params["service"]; s != "" {
			q.Set("service", s)
		}
		for _, s := range scopes {
			q.Add("scope", s)
		}
		if offline {
			q.Set("offline_token", "true")
			q.Set("client_id", tokenClientID)
		}
		realm.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
		if err != nil {
			return tokenResponse{}, err
		}
		if auth.Username != "" || auth.Password != "" {
			req.SetBasicAuth(auth.Username, auth.Password)
		}
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	hc := c.http
	if c.hosts.Lookup(realm.Host).Insecure {
		hc = c.insecure
	}
	resp, err := hc.Do(req)
	if err != nil {
		return tokenResponse{}, fmt.Errorf("%w: fetch token from %s: %w", errdefs.ErrUnavailable, realm.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return tokenResponse{}, fmt.Errorf("fetch token from %s: %w", realm.Host, newResponseError(resp))
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return tokenResponse{}, fmt.Errorf("%w: fetch token from %s: bad answer: %w", errdefs.ErrUnavailable, realm.Host, err)
	}
	if tr.Token == "" {
		tr.Token = tr.AccessToken
	}
	if tr.Token == "" {
		return tokenResponse{}, fmt.Errorf("%w: fetch token from %s: no token in the answer", errdefs.ErrUnavailable, realm.Host)
	}
	return tr, nil
}

// bearerToken returns a token for scopes at an endpoint host: from the
// cache, or fetched and cached until shortly before it expires.
func (c *Client) bearerToken(ctx context.Context, ep Endpoint, ch Challenge, scopes []string) (string, error) {
	auth, err := c.credentials(ep.AuthHost)
	if err != nil {
		return "", err
	}
	if auth.RegistryToken != "" {
		return auth.RegistryToken, nil
	}
	scopes = scopeList(scopes)
	key := tokenKey(ep.Host, scopes)
	now := c.now()
	if tok, ok := c.auth.token(key, now); ok {
		return tok, nil
	}
	tr, err := c.fetchToken(ctx, ch, auth, scopes, false)
	if err != nil {
		return "", err
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	if life < minTokenLifetime {
		life = minTokenLifetime
	}
	issued := now
	if !tr.IssuedAt.IsZero() && tr.IssuedAt.Before(now) {
		issued = tr.IssuedAt
	}
	// Renew a little early: a token must not expire in flight.
	c.auth.setToken(key, cachedToken{token: tr.Token, expires: issued.Add(life * 9 / 10)})
	return tr.Token, nil
}

// credentials looks up the login for a host; none is anonymous.
func (c *Client) credentials(host string) (AuthConfig, error) {
	if c.creds == nil {
		return AuthConfig{}, nil
	}
	a, err := c.creds(host)
	if err != nil {
		return AuthConfig{}, fmt.Errorf("credentials for %s: %w", host, err)
	}
	return a, nil
}

// authorize sets the Authorization header of req for the challenge the
// endpoint host last sent, if any.
func (c *Client) authorize(ctx context.Context, req *http.Request, ep Endpoint, scopes []string) error {
	ch, ok := c.auth.challenge(ep.Host)
	if !ok {
		return nil
	}
	switch ch.Scheme {
	case "basic":
		auth, err := c.credentials(ep.AuthHost)
		if err != nil {
			return err
		}
		if auth.Username != "" || auth.Password != "" {
			req.SetBasicAuth(auth.Username, auth.Password)
		}
	case "bearer":
		tok, err := c.bearerToken(ctx, ep, ch, scopes)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return nil
}
