package ocispec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/internal/errdefs"
)

func TestResolveUser(t *testing.T) {
	tests := []struct {
		spec     string
		groupAdd []string
		want     specs.User
		home     string
	}{
		{"", nil, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{10}}, "/root"},
		{"root", nil, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{10}}, "/root"},
		{"app", nil, specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 29}}, "/home/app"},
		{"1000", nil, specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 29}}, "/home/app"},
		{"app:wheel", nil, specs.User{UID: 1000, GID: 10, AdditionalGids: []uint32{29}}, "/home/app"},
		{"app:4000", nil, specs.User{UID: 1000, GID: 4000, AdditionalGids: []uint32{10, 29}}, "/home/app"},
		{"1:staff", nil, specs.User{UID: 1, GID: 50}, "/usr/sbin"},
		{"4242", nil, specs.User{UID: 4242, GID: 0}, "/"},
		{"4242:4243", []string{"staff"}, specs.User{UID: 4242, GID: 4243, AdditionalGids: []uint32{50}}, "/"},
	}
	root := fakeRootfs(t)
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := resolveUser(root, tt.spec, tt.groupAdd)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.user, tt.want) || got.home != tt.home {
				t.Errorf("resolveUser(%q) = %+v home %q, want %+v home %q", tt.spec, got.user, got.home, tt.want, tt.home)
			}
		})
	}
}

// TestResolveUserNoAccountFiles: an image without /etc/passwd (scratch)
// runs numeric users, and names fail as in docker.
func TestResolveUserNoAccountFiles(t *testing.T) {
	root := t.TempDir()
	got, err := resolveUser(root, "1000:1000", nil)
	if err != nil || got.user.UID != 1000 || got.user.GID != 1000 || got.home != "/" {
		t.Errorf("resolveUser = %+v, %v", got, err)
	}
	_, err = resolveUser(root, "root", nil)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "no matching entries in passwd file") {
		t.Errorf("named user without passwd: %v", err)
	}
}

// TestResolveUserSymlinkStaysInRoot: account files that are symlinks are
// followed as if the rootfs were /; they never reach the host's files.
func TestResolveUserSymlinkStaysInRoot(t *testing.T) {
	hostPasswd, err := os.ReadFile("/etc/passwd")
	if err != nil || !strings.Contains(string(hostPasswd), "\nbin:") && !strings.HasPrefix(string(hostPasswd), "bin:") {
		t.Skip("the host's /etc/passwd has no bin user to tell it apart")
	}
	links := map[string]string{
		"absolute": "/etc/passwd",
		"dotdot":   "../../../../../../../../etc/passwd",
		"via-dir":  "/hostetc/passwd", // /hostetc is itself a link to the host's /etc
	}
	for name, target := range links {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/etc", filepath.Join(root, "hostetc")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(root, "etc/passwd")); err != nil {
				t.Fatal(err)
			}
			got, err := resolveUser(root, "bin", nil)
			if err == nil {
				t.Fatalf("resolveUser(bin) = %+v: read the host's /etc/passwd through %s", got, target)
			}
		})
	}
	// A link that stays inside the rootfs is followed there.
	root := t.TempDir()
	write(t, root, "data/passwd", "bin:x:77:78::/bin:/bin/false\n")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../data/passwd", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	got, err := resolveUser(root, "bin", nil)
	if err != nil || got.user.UID != 77 || got.user.GID != 78 {
		t.Errorf("resolveUser through an in-root link = %+v, %v; want 77:78", got, err)
	}
}

func TestResolveUserNotRegular(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/passwd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveUser(root, "app", nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("passwd directory: %v, want ErrInvalidArgument", err)
	}
}
