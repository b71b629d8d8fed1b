package registrytest

import (
	"net/http"
	"testing"
)

func TestStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want int // status of an anonymous GET /v2/
	}{
		{"open", nil, http.StatusOK},
		{"htpasswd", []Option{WithHtpasswd("alice", "s3cret")}, http.StatusUnauthorized},
		{"token", []Option{WithTokenAuth("alice", "s3cret")}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Start(t, tc.opts...)
			resp, err := http.Get(r.URL() + "/v2/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("GET /v2/: %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without a challenge")
			}
			if r.Host() != r.Addr() || r.Ref("a/b:c") != r.Addr()+"/a/b:c" {
				t.Fatalf("Host %q Addr %q Ref %q", r.Host(), r.Addr(), r.Ref("a/b:c"))
			}
		})
	}
}

func TestStartedRegistryStopsWithTheTest(t *testing.T) {
	var addr string
	t.Run("inner", func(t *testing.T) {
		addr = Start(t).Addr()
	})
	if _, err := http.Get("http://" + addr + "/v2/"); err == nil {
		t.Fatalf("registry on %s still answers after its test ended", addr)
	}
}
