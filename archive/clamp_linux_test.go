package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestClampTimes checks that ClampTimes writes every time later than the
// epoch as the epoch, keeps earlier ones, and that without it times are
// kept: with WriteDiff and with WriteChanges alike.
func TestClampTimes(t *testing.T) {
	epoch := time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	now := time.Now().Truncate(time.Second)
	dir := t.TempDir()
	for _, p := range []string{"d", "d/new", "old"} {
		var err error
		if p == "d" {
			err = os.Mkdir(filepath.Join(dir, p), 0o755)
		} else {
			err = os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for p, mt := range map[string]time.Time{"d/new": now, "old": old, "d": now} {
		if err := os.Chtimes(filepath.Join(dir, p), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	writers := map[string]func(w io.Writer, opts ...WriteOption) error{
		"WriteDiff": func(w io.Writer, opts ...WriteOption) error {
			return WriteDiff(context.Background(), w, dir, nil, opts...)
		},
		"WriteChanges": func(w io.Writer, opts ...WriteOption) error {
			ch := []Change{{Kind: ChangeAdd, Path: "/d/new"}, {Kind: ChangeAdd, Path: "/old"}}
			return WriteChanges(context.Background(), w, dir, ch, opts...)
		},
	}
	cases := []struct {
		name string
		opts []WriteOption
		want map[string]time.Time
	}{
		{"clamped", []WriteOption{ClampTimes(epoch)}, map[string]time.Time{"d/": epoch.Truncate(time.Second), "d/new": epoch.Truncate(time.Second), "old": old}},
		{"epoch later than every file", []WriteOption{ClampTimes(now.Add(time.Hour))}, map[string]time.Time{"d/": now, "d/new": now, "old": old}},
		{"no option", nil, map[string]time.Time{"d/": now, "d/new": now, "old": old}},
	}
	for wname, write := range writers {
		for _, c := range cases {
			t.Run(wname+"/"+c.name, func(t *testing.T) {
				var buf bytes.Buffer
				if err := write(&buf, c.opts...); err != nil {
					t.Fatal(err)
				}
				got := map[string]time.Time{}
				tr := tar.NewReader(&buf)
				for {
					hdr, err := tr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got[hdr.Name] = hdr.ModTime
				}
				if len(got) != len(c.want) {
					t.Errorf("entries %v, want %v", got, c.want)
				}
				for name, want := range c.want {
					if !got[name].Equal(want) {
						t.Errorf("%s: mtime %v, want %v", name, got[name], want)
					}
				}
			})
		}
	}
}
