// Package testutil holds small helpers shared by berth's tests: guards for
// tests that need root or a kernel feature, and unique names for what a test
// creates on the host (cgroups, network namespaces, containers) so parallel
// runs and leftovers are easy to tell apart.
package testutil

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
)

// Prefix starts the name of everything a test creates on the host.
const Prefix = "berth-test-"

// RequiresRoot skips the test unless it runs as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("test requires root")
	}
}

// UniqueName returns Prefix followed by a short random suffix.
func UniqueName(t testing.TB) string {
	t.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return Prefix + hex.EncodeToString(b[:])
}

// Buffer collects a child process's output while a test reads it: a
// bytes.Buffer safe for one writer and concurrent readers.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
