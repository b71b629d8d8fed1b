package cli

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"berth.dev/internal/errdefs"
)

func TestParseCopyArgs(t *testing.T) {
	for _, tc := range []struct {
		src, dst string
		want     copyOp
		bad      bool
	}{
		{src: "web:/etc/hosts", dst: "/tmp/h", want: copyOp{container: "web", containerPath: "/etc/hosts", localPath: "/tmp/h", fromContainer: true}},
		{src: "web:/etc/hosts", dst: "-", want: copyOp{container: "web", containerPath: "/etc/hosts", localPath: "-", fromContainer: true}},
		{src: "./a:b", dst: "web:/x", want: copyOp{container: "web", containerPath: "/x", localPath: "./a:b"}},
		{src: "/abs:colon", dst: "web:/x", want: copyOp{container: "web", containerPath: "/x", localPath: "/abs:colon"}},
		{src: "-", dst: "web:/x", want: copyOp{container: "web", containerPath: "/x", localPath: "-"}},
		{src: "a", dst: "b", bad: true},
		{src: "w1:/a", dst: "w2:/b", bad: true},
		{src: "web:", dst: "/tmp", bad: true},
		{src: "/tmp/x", dst: "web:", bad: true},
	} {
		got, err := parseCopyArgs(tc.src, tc.dst)
		if tc.bad {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s %s: error %v, want an invalid argument", tc.src, tc.dst, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %s: %+v %v, want %+v", tc.src, tc.dst, got, err, tc.want)
		}
	}
}

// tree lists the files under dir with their contents.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			lines = append(lines, rel+"/")
			return nil
		}
		b, _ := os.ReadFile(p)
		lines = append(lines, rel+"="+strings.TrimSpace(string(b)))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, " ")
}

// TestCopyFromContainer checks docker's naming rules when copying out.
func TestCopyFromContainer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(dir string)
		src   string
		dst   string
		want  string
		bad   bool
	}{
		{name: "file to new name", src: "web:/etc/hostname", dst: "h", want: "h=fakehost"},
		{name: "file into dir", setup: func(d string) { os.Mkdir(filepath.Join(d, "out"), 0o755) }, src: "web:/etc/hostname", dst: "out", want: "out/ out/hostname=fakehost"},
		{name: "file over file", setup: func(d string) { os.WriteFile(filepath.Join(d, "f"), []byte("old"), 0o644) }, src: "web:/etc/hostname", dst: "f", want: "f=fakehost"},
		{name: "dir to new name", src: "web:/data", dst: "copy", want: "copy/ copy/a/ copy/a/b.txt=bee"},
		{name: "dir into dir", setup: func(d string) { os.Mkdir(filepath.Join(d, "out"), 0o755) }, src: "web:/data", dst: "out", want: "out/ out/data/ out/data/a/ out/data/a/b.txt=bee"},
		{name: "dir content into dir", setup: func(d string) { os.Mkdir(filepath.Join(d, "out"), 0o755) }, src: "web:/data/.", dst: "out", want: "out/ out/a/ out/a/b.txt=bee"},
		{name: "dir over file", setup: func(d string) { os.WriteFile(filepath.Join(d, "f"), []byte("old"), 0o644) }, src: "web:/data", dst: "f", bad: true},
		{name: "file to missing dir", src: "web:/etc/hostname", dst: "nodir/", bad: true},
		{name: "missing source", src: "web:/nosuch", dst: "x", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newContainerTestEnv(t)
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(dir)
			}
			res := e.berth("", "cp", tc.src, filepath.Join(dir, tc.dst)+map[bool]string{true: "/", false: ""}[strings.HasSuffix(tc.dst, "/")])
			if tc.bad {
				if res.code == 0 {
					t.Errorf("succeeded; tree %s", tree(t, dir))
				}
				return
			}
			if res.code != 0 {
				t.Fatalf("status %d: %s", res.code, res.stderr)
			}
			if got := tree(t, dir); got != tc.want {
				t.Errorf("tree %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCopyFromContainerToStdout(t *testing.T) {
	e, _ := newContainerTestEnv(t)
	res := e.berth("", "cp", "web:/data", "-")
	if res.code != 0 {
		t.Fatal(res.stderr)
	}
	if names := tarNames(t, []byte(res.stdout)); names != "data/ data/a/ data/a/b.txt" {
		t.Errorf("tar holds %s", names)
	}
}

func tarNames(t *testing.T, b []byte) string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	return strings.Join(names, " ")
}

// TestCopyToContainer checks where an upload goes and the names in its
// tar: into an existing directory under the source's name, as a new name
// in the parent otherwise.
func TestCopyToContainer(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f.txt"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(src, "d", "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "sub", "g"), []byte("y"), 0o644)
	for _, tc := range []struct {
		name, src, dst, wantPath, wantNames string
	}{
		{"file into dir", "f.txt", "web:/data", "/data", "f.txt"},
		{"file to new name", "f.txt", "web:/data/new.txt", "/data", "new.txt"},
		{"file over file", "f.txt", "web:/etc/hostname", "/etc", "hostname"},
		{"dir into dir", "d", "web:/data", "/data", "d/ d/sub/ d/sub/g"},
		{"dir content into dir", "d/.", "web:/data", "/data", "sub/ sub/g"},
		{"dir to new name", "d", "web:/data/copy", "/data", "copy/ copy/sub/ copy/sub/g"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, fe := newContainerTestEnv(t)
			res := e.berth("", "cp", src+"/"+tc.src, tc.dst)
			if res.code != 0 {
				t.Fatalf("status %d: %s", res.code, res.stderr)
			}
			fe.mu.Lock()
			body, ok := fe.uploads[tc.wantPath]
			fe.mu.Unlock()
			if !ok {
				t.Fatalf("nothing uploaded to %s: %v", tc.wantPath, fe.uploads)
			}
			if names := tarNames(t, body); names != tc.wantNames {
				t.Errorf("tar holds %q, want %q", names, tc.wantNames)
			}
		})
	}
	e, fe := newContainerTestEnv(t)
	if res := e.berth("tar bytes", "cp", "-", "web:/data"); res.code != 0 || string(fe.uploads["/data"]) != "tar bytes" {
		t.Errorf("stdin upload: %+v %q", res, fe.uploads["/data"])
	}
	if res := e.berth("", "cp", filepath.Join(src, "d"), "web:/etc/hostname"); res.code == 0 {
		t.Error("directory copied over a file")
	}
}
