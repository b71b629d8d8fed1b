package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"berth.dev/engine"
)

// A daemon that cannot start (here its metadata database cannot be made)
// returns the error and closes what it opened; it used to panic closing.
func TestNewDaemonFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	cfg := engine.DefaultConfig()
	cfg.Root = filepath.Join(dir, "root")
	cfg.ExecRoot = filepath.Join(dir, "run")
	if err := os.MkdirAll(filepath.Join(cfg.MetadataPath(), "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := newDaemon(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		d.close()
		t.Fatal("newDaemon with a directory where its database goes succeeded")
	}
}
