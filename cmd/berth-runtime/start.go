package main

import "berth.dev/runtime"

func runStart(g *globals, args []string) error {
	pos, err := parseArgs(newFlags("start", "<container-id>"), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := runtime.Load(g.root, pos[0])
	if err != nil {
		return err
	}
	return c.Start()
}
