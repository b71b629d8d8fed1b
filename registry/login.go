package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/distribution/reference"

	"berth.dev/internal/errdefs"
)

// Login checks auth against a registry host ("docker.io",
// "127.0.0.1:5000"), the way `docker login` does: GET /v2/, and answer the
// challenge with the credentials (Basic, or a token fetched from the Bearer
// realm). It returns an identity token when the token server hands out a
// refresh token, which may be stored instead of the password. Wrong
// credentials are an ErrUnauthorized error. A registry that asks for no
// credentials accepts any.
func (c *Client) Login(ctx context.Context, host string, auth AuthConfig) (string, error) {
	eps := c.hosts.Endpoints(host, false)
	ep := eps[len(eps)-1]
	token, err := c.login(ctx, ep, auth)
	if err != nil {
		return "", fmt.Errorf("login to %s: %w", host, err)
	}
	return token, nil
}

func (c *Client) login(ctx context.Context, ep Endpoint, auth AuthConfig) (string, error) {
	// An anonymous request first, to learn the challenge.
	resp, err := c.do(ctx, &request{method: http.MethodGet, ep: ep, ownAuth: true})
	if err != nil {
		return "", err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		discard(resp)
		return "", nil
	case http.StatusUnauthorized:
	default:
		return "", newResponseError(resp)
	}
	discard(resp)
	ch, ok := pickChallenge(ParseChallenges(resp.Header.Values("WWW-Authenticate")))
	if !ok {
		return "", fmt.Errorf("%w: the registry asks for an authentication we do not know: %q", errdefs.ErrNotImplemented, resp.Header.Values("WWW-Authenticate"))
	}
	header := http.Header{}
	var identity string
	switch ch.Scheme {
	case "basic":
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(auth.Username+":"+auth.Password)))
	case "bearer":
		token := auth.RegistryToken
		if token == "" {
			tr, err := c.fetchToken(ctx, ch, auth, nil, true)
			if err != nil {
				return "", err
			}
			token, identity = tr.Token, tr.RefreshToken
		}
		header.Set("Authorization", "Bearer "+token)
	}
	// Check the answer with a request that carries it.
	resp, err = c.do(ctx, &request{method: http.MethodGet, ep: ep, header: header, ownAuth: true})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", newResponseError(resp)
	}
	discard(resp)
	return identity, nil
}

// Tags lists the tags of ref's repository, following the registry's
// pagination.
func (c *Client) Tags(ctx context.Context, ref reference.Named) ([]string, error) {
	repo := reference.Path(ref)
	tags, err := onEndpoints(ctx, c.pullEndpoints(ref), func(ep Endpoint) ([]string, error) {
		var all []string
		r := &request{method: http.MethodGet, ep: ep, path: repo + "/tags/list", scopes: []string{repoScope(repo, false)}}
		for {
			resp, err := c.do(ctx, r)
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusOK {
				return nil, newResponseError(resp)
			}
			var page struct {
				Tags []string `json:"tags"`
			}
			err = json.NewDecoder(io.LimitReader(resp.Body, MaxManifestSize)).Decode(&page)
			resp.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("%w: bad tag list: %w", errdefs.ErrUnavailable, err)
			}
			all = append(all, page.Tags...)
			next := nextLink(resp)
			if next == nil {
				return all, nil
			}
			r = &request{method: http.MethodGet, ep: ep, abs: next, scopes: r.scopes}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", ref.Name(), err)
	}
	return tags, nil
}

// nextLink reads a `Link: </v2/...?last=x&n=100>; rel="next"` header.
func nextLink(resp *http.Response) *url.URL {
	for _, v := range resp.Header.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
			if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				continue
			}
			target = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(target), "<"), ">")
			if u, err := resp.Request.URL.Parse(target); err == nil {
				return u
			}
		}
	}
	return nil
}
