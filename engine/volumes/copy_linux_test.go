package volumes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
)

// imageTree makes, under a new directory, what an image could hold at a
// volume's mount point: every file type, owners, set-ID and sticky modes,
// a read-only directory, hard and symbolic links, extended attributes and
// old times. It returns the directory.
func imageTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "mnt")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(src, 0o755))
	must(os.MkdirAll(filepath.Join(src, "etc", "deep"), 0o755))
	must(os.WriteFile(filepath.Join(src, "etc", "conf"), []byte("setting=1\n"), 0o644))
	must(os.WriteFile(filepath.Join(src, "etc", "deep", "empty"), nil, 0o644))
	must(os.Link(filepath.Join(src, "etc", "conf"), filepath.Join(src, "conf-link")))
	must(os.Symlink("etc/conf", filepath.Join(src, "rel-link")))
	must(os.Symlink("/nowhere", filepath.Join(src, "abs-link")))
	must(os.MkdirAll(filepath.Join(src, "ro"), 0o755))
	must(os.WriteFile(filepath.Join(src, "ro", "inside"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(src, "tool"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Mkdir(filepath.Join(src, "tmp"), 0o755))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Lsetxattr(filepath.Join(src, "etc", "conf"), "user.note", []byte("hello"), 0))
	must(unix.Lsetxattr(filepath.Join(src, "etc"), "trusted.berth", []byte{0, 1, 2}, 0))
	must(unix.Lchown(filepath.Join(src, "etc", "conf"), 1000, 2000))
	must(unix.Lchown(filepath.Join(src, "rel-link"), 1001, 1002))
	must(unix.Lchown(filepath.Join(src, "tool"), 0, 50))
	must(unix.Lchown(filepath.Join(src, "etc"), 1000, 1000))
	must(unix.Lchown(src, 999, 998))
	// Modes after owners: chown clears set-ID bits.
	must(os.Chmod(filepath.Join(src, "tool"), 0o755|os.ModeSetuid|os.ModeSetgid))
	must(os.Chmod(filepath.Join(src, "tmp"), 0o777|os.ModeSticky))
	must(os.Chmod(filepath.Join(src, "etc", "conf"), 0o640))
	must(os.Chmod(src, 0o711))
	old := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.Add(time.Hour).UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	must(err)
	// Last: nothing can be added to it once it is read-only.
	must(os.Chmod(filepath.Join(src, "ro"), 0o555))
	must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, "ro"), []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW))
	return src
}

// describe lists what a user sees of each path under root: type, mode,
// owner, size, device, link target, content, user/trusted attributes,
// modification time.
func describe(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		s := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d rdev=%d mtime=%d.%09d", st.Mode, st.Uid, st.Gid, st.Size, st.Rdev, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			s += " -> " + target
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += fmt.Sprintf(" content=%q", data)
		}
		names, err := listXattrs(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if strings.HasPrefix(n, "user.") || strings.HasPrefix(n, "trusted.") {
				v, _ := getXattr(p, n)
				s += fmt.Sprintf(" %s=%q", n, v)
			}
		}
		out[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPopulateCopiesEverything(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s, tr := newStore(t)
	src := imageTree(t)
	dst := mustAcquire(t, s, "data", "c1", false)
	if err := s.Populate(ctx, "data", src); err != nil {
		t.Fatal(err)
	}
	want, got := describe(t, src), describe(t, dst)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s:\n got %s\nwant %s", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: copied from nowhere", p)
		}
	}
	// The set-ID bits survived the chown (the description shows the mode;
	// make the failure obvious).
	if fi, err := os.Stat(filepath.Join(dst, "tool")); err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("tool lost its setuid bit: %v %v", fi.Mode(), err)
	}
	var a, b unix.Stat_t
	if err := unix.Stat(filepath.Join(dst, "etc", "conf"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join(dst, "conf-link"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard link not kept: inodes %d, %d, nlink %d", a.Ino, b.Ino, a.Nlink)
	}

	// Populated once: emptied and offered other content, it stays as the
	// user left it, across a restart too.
	if err := clearDir(dst); err != nil {
		t.Fatal(err)
	}
	s = tr.reopen(t, s)
	if err := s.Populate(ctx, "data", src); err != nil {
		t.Fatal(err)
	}
	if empty, _ := isEmptyDir(dst); !empty {
		t.Error("a populated volume was populated again")
	}
}

func TestPopulateOnlyEmptyVolumes(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s, _ := newStore(t)
	src := imageTree(t)

	// A volume the user already wrote to keeps its content.
	used := mustAcquire(t, s, "used", "c1", false)
	if err := os.WriteFile(filepath.Join(used, "mine"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Populate(ctx, "used", src); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(used); len(entries) != 1 || entries[0].Name() != "mine" {
		t.Errorf("non-empty volume populated: %v", entries)
	}

	// Nothing at the mount point (or a file there): nothing copied, and
	// the next container with content at its mount point still fills it.
	fresh := mustAcquire(t, s, "fresh", "c1", false)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, nothing := range []string{filepath.Join(t.TempDir(), "missing"), file} {
		if err := s.Populate(ctx, "fresh", nothing); err != nil {
			t.Fatalf("Populate(%s) = %v", nothing, err)
		}
	}
	if empty, _ := isEmptyDir(fresh); !empty {
		t.Error("volume filled from nothing")
	}
	if err := s.Populate(ctx, "fresh", src); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(fresh, "etc", "conf")); err != nil {
		t.Errorf("not populated after an empty first use: %v", err)
	}

	if err := s.Populate(ctx, "nope", src); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Populate(nope) = %v", err)
	}
	// src is never followed when it is a link.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(src, link); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, s, "linked", "c1", false)
	if err := s.Populate(ctx, "linked", link); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Inspect(ctx, "linked"); !mustBeEmpty(t, v.Mountpoint) {
		t.Error("Populate followed a symbolic link src")
	}
}

func mustBeEmpty(t *testing.T, dir string) bool {
	t.Helper()
	empty, err := isEmptyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return empty
}
