package openat2

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Open resolves inside the root while renames race with it (each may make
// the kernel answer EAGAIN), and never returns EAGAIN itself.
func TestOpenUnderRenames(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		x, y := filepath.Join(root, "x"), filepath.Join(root, "y")
		os.Mkdir(x, 0o755)
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Rename(x, y)
			os.Rename(y, x)
		}
	}()
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT}
	for range 2000 {
		fd, err := Open(rfd, "a/../a/b/../b", how)
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("open: %v", err)
		}
		unix.Close(fd)
	}
	close(stop)
	wg.Wait()
}
