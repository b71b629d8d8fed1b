package main

import (
	"errors"
	"os"
	"path/filepath"

	"berth.dev/runtime"
)

func runDelete(g *globals, args []string) error {
	fs := newFlags("delete", "<container-id>")
	force := fs.Bool("force", false, "forcibly deletes the container if it is still running (uses SIGKILL)")
	fs.BoolVar(force, "f", false, "forcibly deletes the container if it is still running (uses SIGKILL)")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := runtime.Load(g.root, pos[0])
	if err != nil {
		if errors.Is(err, runtime.ErrNotExist) {
			// A container whose create died before writing its state
			// leaves only a directory: delete --force clears it.
			if runtime.ValidateID(pos[0]) == nil {
				if rerr := os.RemoveAll(filepath.Join(g.root, pos[0])); rerr != nil {
					return rerr
				}
			}
			if *force {
				return nil
			}
		}
		return err
	}
	return c.Delete(*force)
}
