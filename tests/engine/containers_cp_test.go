package engine_test

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/tests/enginetest"
)

// cp resolves symlinks inside the container's root: a link to / or to
// ../../.. reads the container's files, never the host's, and a copy
// through one writes inside the container.
func TestCpSymlinkEscapes(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	d.MustBerth("run", "-d", "--name", "cpx", "busybox", "sh", "-c",
		"ln -s / /link; ln -s ../../.. /up; mkdir /d; ln -s /d /ld; echo container-passwd > /etc/passwd; exec sleep 1000")
	waitFor(t, "the links", func() bool {
		_, _, code := d.Berth("exec", "cpx", "test", "-L", "/ld")
		return code == 0
	})
	for _, src := range []string{"cpx:/link/etc/passwd", "cpx:/up/etc/passwd", "cpx:/up/../../etc/passwd"} {
		out := d.MustBerth("cp", src, "-")
		tr := tar.NewReader(strings.NewReader(out))
		if _, err := tr.Next(); err != nil {
			t.Fatalf("cp %s -: %v", src, err)
		}
		data, _ := io.ReadAll(tr)
		if string(data) != "container-passwd\n" {
			t.Errorf("cp %s gave %q, not the container's file", src, data)
		}
	}
	host := filepath.Join(t.TempDir(), "berth-test-cp")
	os.WriteFile(host, []byte("from host\n"), 0o644)
	for _, dst := range []string{"cpx:/up/tmp/", "cpx:/up/"} { // (the second replaces /up: the bug below)
		d.MustBerth("cp", host, dst)
	}
	for _, p := range []string{"/berth-test-cp", "/tmp/berth-test-cp"} {
		if _, err := os.Lstat(p); err == nil {
			os.Remove(p)
			t.Errorf("cp wrote %s on the host", p)
		}
	}
	if out := d.MustBerth("exec", "cpx", "cat", "/tmp/berth-test-cp"); out != "from host\n" {
		t.Errorf("cp to cpx:/up/tmp/ wrote %q in the container's /tmp", out)
	}
	t.Run("into a symlinked directory", func(t *testing.T) {
		// The docker CLI follows a destination symlink (it stats it and
		// uses its target); compare berth's cp with it.
		for _, tc := range []struct{ dst, want string }{{"cpx:/link/", "/berth-test-cp"}, {"cpx:/ld", "/d/berth-test-cp"}} {
			d.MustBerth("cp", host, tc.dst)
			if _, _, code := d.Berth("exec", "cpx", "test", "-L", strings.TrimSuffix(strings.TrimPrefix(tc.dst, "cpx:"), "/")); code != 0 {
				t.Errorf("cp %s replaced the symbolic link", tc.dst)
			}
			if out, _, code := d.Berth("exec", "cpx", "cat", tc.want); code != 0 || out != "from host\n" {
				t.Errorf("cp %s: %s has %q", tc.dst, tc.want, out)
			}
		}
	})
}
