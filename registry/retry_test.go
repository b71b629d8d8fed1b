package registry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"berth.dev/image"
	"berth.dev/internal/errdefs"
)

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A registry host the resolver does not know fails at once: asking again
// would only make an offline pull slow. Other transport errors are retried.
func TestUnknownHostNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		calls int32
	}{
		{"unknown host", &net.DNSError{Err: "no such host", Name: "registry.invalid", IsNotFound: true}, 1},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			hc := &http.Client{Transport: roundTripper(func(*http.Request) (*http.Response, error) {
				calls.Add(1)
				return nil, tc.err
			})}
			c := New(WithHTTPClient(hc), WithRetries(2), WithRetryDelay(time.Millisecond))
			ref, err := image.ParseNamed("registry.invalid/x:1")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Resolve(context.Background(), ref)
			if !errors.Is(err, errdefs.ErrUnavailable) || calls.Load() != tc.calls {
				t.Errorf("calls %d (want %d), err %v", calls.Load(), tc.calls, err)
			}
		})
	}
}
