package main

import "berth.dev/runtime"

func runPause(g *globals, args []string) error {
	pos, err := parseArgs(newFlags("pause", "<container-id>"), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := runtime.Load(g.root, pos[0])
	if err != nil {
		return err
	}
	return c.Pause()
}

func runResume(g *globals, args []string) error {
	pos, err := parseArgs(newFlags("resume", "<container-id>"), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := runtime.Load(g.root, pos[0])
	if err != nil {
		return err
	}
	return c.Resume()
}
