package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"berth.dev/runtime/spec"
	json "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func specVersion() string { return specs.Version }

func runSpec(g *globals, args []string) error {
	fs := newFlags("spec", "")
	bundle := fs.String("bundle", "", "path to the root of the bundle directory")
	fs.StringVar(bundle, "b", "", "path to the root of the bundle directory")
	rootless := fs.Bool("rootless", false, "generate a configuration for a rootless container")
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return err
	}
	path := filepath.Join(*bundle, "config.json")
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("file %s exists: remove it first", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	data, err := json.MarshalIndent(spec.Default(*rootless), "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o666)
}
