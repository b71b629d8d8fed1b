package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, opts := range [][]Option{nil, {Durable()}} {
		if err := WriteBytes(path, []byte("one"), 0o600, opts...); err != nil {
			t.Fatal(err)
		}
		if err := WriteBytes(path, []byte("two"), 0o640, opts...); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		st, _ := os.Stat(path)
		if string(data) != "two" || st.Mode().Perm() != 0o640 {
			t.Errorf("%q %v", data, st.Mode())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("broken source") }

// A failed write leaves the old file as it was and no temp file.
func TestWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteBytes(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, io.MultiReader(failingReader{}), 0o644, Durable()); err == nil {
		t.Fatal("a failing reader was written")
	}
	if data, _ := os.ReadFile(path); string(data) != "old" {
		t.Errorf("old file changed: %q", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
	if err := WriteBytes(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}
