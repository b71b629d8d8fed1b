package spec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigName), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadMakesRootAbsolute(t *testing.T) {
	dir := writeConfig(t, `{"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "windows": {"layerFolders": ["x"]}, "somethingNew": 1}`)
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "rootfs"); s.Root.Path != want {
		t.Errorf("root.path = %q, want %q", s.Root.Path, want)
	}
	if s.Version != "1.3.0" {
		t.Errorf("ociVersion = %q", s.Version)
	}
}

func TestLoadRelativeBundle(t *testing.T) {
	dir := writeConfig(t, `{"ociVersion": "1.3.0", "root": {"path": "rootfs"}}`)
	t.Chdir(filepath.Dir(dir))
	s, err := Load(filepath.Base(dir))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "rootfs"); s.Root.Path != want {
		t.Errorf("root.path = %q, want %q", s.Root.Path, want)
	}
}

func TestLoadKeepsAbsoluteRoot(t *testing.T) {
	dir := writeConfig(t, `{"ociVersion": "1.3.0", "root": {"path": "/somewhere/else"}}`)
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.Path != "/somewhere/else" {
		t.Errorf("root.path = %q, want it unchanged", s.Root.Path)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // in the message, after the config path
	}{
		{"syntax", "{\n  \"ociVersion\": \"1.3.0\",\n  \"root\": {\"path\": \"rootfs\",}\n}", ":3:29: invalid character '}'"},
		{"type", "{\n  \"ociVersion\": \"1.3.0\",\n  \"process\": {\"args\": \"sh\"}\n}", ":3:26: field process.args: cannot use JSON string"},
		{"truncated", "{\"ociVersion\": \"1.3.0\"", ":1:22: unexpected end of JSON input"},
		{"trailing", "{}\n{}", ":2:1: invalid character '{' after top-level value"},
		{"empty", " \n", ": file is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeConfig(t, tt.content)
			_, err := Load(dir)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Load = %v, want an error wrapping ErrInvalid", err)
			}
			want := filepath.Join(dir, ConfigName) + tt.want
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Load = %q, want it to contain %q", err, want)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a bundle without config.json = %v, want fs.ErrNotExist", err)
	}
}
