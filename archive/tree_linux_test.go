package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// WriteTree names entries below name (or at the top for ""), keeps
// symlinks as links unless asked to follow the top one, and writes a file
// linked twice once.
func TestWriteTree(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "a"), []byte("aaa"), 0o644)
	os.Link(filepath.Join(src, "sub", "a"), filepath.Join(src, "b"))
	os.Symlink("/etc/passwd", filepath.Join(src, "link"))
	os.Symlink("src", filepath.Join(dir, "top"))

	read := func(src, name string, follow bool) []string {
		var buf bytes.Buffer
		if err := WriteTree(context.Background(), &buf, src, name, follow); err != nil {
			t.Fatal(err)
		}
		var out []string
		tr := tar.NewReader(&buf)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			out = append(out, h.Name+"|"+string(h.Typeflag)+"|"+h.Linkname+"|"+string(data))
		}
	}
	got := read(src, "x", false)
	want := []string{"x/|5||", "x/b|0||aaa", "x/link|2|/etc/passwd|", "x/sub/|5||", "x/sub/a|1|x/b|"}
	if !slices.Equal(got, want) {
		t.Errorf("tree as x:\n%q\nwant\n%q", got, want)
	}
	if got := read(src, "", false); len(got) != 4 || got[0] != "b|0||aaa" {
		t.Errorf("content at the top: %q", got)
	}
	if got := read(filepath.Join(dir, "top"), "top", false); !slices.Equal(got, []string{"top|2|src|"}) {
		t.Errorf("a top symlink not followed: %q", got)
	}
	if got := read(filepath.Join(src, "link"), "pw", true); len(got) != 1 || got[0][:5] != "pw|0|" {
		t.Errorf("a followed top symlink: %q", got)
	}
}
