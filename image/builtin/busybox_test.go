package builtin

import (
	"archive/tar"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/internal/errdefs"
)

// unpackLayer writes a layer's directories, files and symlinks under dir.
// The layers here are ours, but names are still checked to stay in dir.
func unpackLayer(t *testing.T, layerTar []byte, dir string) {
	t.Helper()
	for _, m := range readTar(t, layerTar) {
		p := filepath.Join(dir, m.hdr.Name)
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("layer entry %q leaves the root", m.hdr.Name)
		}
		var err error
		switch m.hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			err = os.WriteFile(p, m.data, os.FileMode(m.hdr.Mode).Perm())
		case tar.TypeSymlink:
			err = os.Symlink(m.hdr.Linkname, p)
		default:
			t.Fatalf("layer entry %s: unexpected type %c", m.hdr.Name, m.hdr.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestBusyboxImageLayer(t *testing.T) {
	l := loadArchive(t, archiveOf(t, Busybox))
	byName := map[string]*tar.Header{}
	for _, m := range readTar(t, l.layerTar) {
		byName[m.hdr.Name] = m.hdr
	}
	host, err := os.ReadFile(DefaultBusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := layerFile(t, l.layerTar, "bin/busybox"); string(got.data) != string(host) || got.hdr.Mode != 0o755 {
		t.Errorf("bin/busybox: mode %o, %d bytes; want 755 and the host's %d bytes", got.hdr.Mode, len(got.data), len(host))
	}
	for _, tc := range []struct {
		name   string
		typ    byte
		mode   int64
		target string
	}{
		{name: "bin/sh", typ: tar.TypeSymlink, target: "busybox"},
		{name: "sbin/ip", typ: tar.TypeSymlink, target: "../bin/busybox"},
		{name: "usr/bin/wget", typ: tar.TypeSymlink, target: "../../bin/busybox"},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "root/", typ: tar.TypeDir, mode: 0o700},
		{name: "home/", typ: tar.TypeDir, mode: 0o755},
		{name: "var/", typ: tar.TypeDir, mode: 0o755},
		{name: "dev/", typ: tar.TypeDir, mode: 0o755},
		{name: "proc/", typ: tar.TypeDir, mode: 0o755},
		{name: "sys/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/passwd", typ: tar.TypeReg, mode: 0o644},
		{name: "etc/group", typ: tar.TypeReg, mode: 0o644},
	} {
		h := byName[tc.name]
		switch {
		case h == nil:
			t.Errorf("layer has no %s", tc.name)
		case h.Typeflag != tc.typ || h.Linkname != tc.target || (tc.typ != tar.TypeSymlink && h.Mode != tc.mode):
			t.Errorf("%s: type %c mode %o target %q; want %c %o %q", tc.name, h.Typeflag, h.Mode, h.Linkname, tc.typ, tc.mode, tc.target)
		}
	}
	// Every applet busybox knows has its link, where busybox puts it.
	out, err := exec.Command(DefaultBusyboxPath, "--list-full").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if h := byName[a]; a != "bin/busybox" && (h == nil || h.Typeflag != tar.TypeSymlink) {
			t.Errorf("applet %s: no symlink in the layer", a)
		}
	}

	passwd := string(layerFile(t, l.layerTar, "etc/passwd").data)
	for _, user := range []string{"root:x:0:0:", "daemon:x:1:1:", "nobody:x:65534:65534:"} {
		if !strings.Contains(passwd, "\n"+user) && !strings.HasPrefix(passwd, user) {
			t.Errorf("etc/passwd has no %s...", user)
		}
	}
}

// The real test of the busybox image: its shell runs from the unpacked
// layer through the applet symlink (busybox picks the applet from argv[0]).
func TestBusyboxImageRuns(t *testing.T) {
	l := loadArchive(t, archiveOf(t, Busybox))
	root := t.TempDir()
	unpackLayer(t, l.layerTar, root)
	for _, tc := range []struct{ applet, script, want string }{
		{"bin/sh", "echo ok", "ok\n"},
		{"usr/bin/env", "", "BERTH_TEST=1\n"},
	} {
		t.Run(tc.applet, func(t *testing.T) {
			bin := filepath.Join(root, tc.applet)
			if real, err := filepath.EvalSymlinks(bin); err != nil || real != filepath.Join(root, "bin/busybox") {
				t.Fatalf("%s resolves to %q (%v), want the layer's bin/busybox", tc.applet, real, err)
			}
			cmd := exec.Command(bin)
			if tc.script != "" {
				cmd.Args = append(cmd.Args, "-c", tc.script)
			}
			cmd.Env = []string{"BERTH_TEST=1"}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v", tc.applet, err)
			}
			if string(out) != tc.want {
				t.Errorf("%s printed %q, want %q", tc.applet, out, tc.want)
			}
		})
	}
}

func TestBusyboxUnavailable(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "busybox.sh")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dynamic := ""
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		if f, err := elf.Open(p); err == nil {
			for _, prog := range f.Progs {
				if prog.Type == elf.PT_INTERP {
					dynamic = p
				}
			}
			f.Close()
		}
	}
	cases := map[string]string{
		"missing":   filepath.Join(dir, "no-busybox"),
		"not ELF":   notELF,
		"directory": dir,
	}
	if dynamic != "" {
		cases["dynamically linked"] = dynamic
	}
	for name, bin := range cases {
		t.Run(name, func(t *testing.T) {
			err := Archive(context.Background(), "busybox", &strings.Builder{}, WithBusybox(bin))
			if !errors.Is(err, errdefs.ErrUnavailable) {
				t.Fatalf("busybox from %s: %v, want ErrUnavailable", bin, err)
			}
			if !strings.Contains(err.Error(), "apt-get install busybox-static") {
				t.Errorf("error %q does not tell the user what to install", err)
			}
		})
	}
}

func TestRelTarget(t *testing.T) {
	for _, tc := range []struct{ link, want string }{
		{"bin/sh", "busybox"},
		{"sbin/ip", "../bin/busybox"},
		{"usr/bin/wget", "../../bin/busybox"},
		{"linuxrc", "bin/busybox"},
	} {
		if got := relTarget(tc.link, "bin/busybox"); got != tc.want {
			t.Errorf("relTarget(%s) = %q, want %q", tc.link, got, tc.want)
		}
	}
}
