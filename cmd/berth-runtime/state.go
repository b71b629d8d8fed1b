package main

import (
	"os"

	"berth.dev/runtime"

	json "github.com/go-json-experiment/json/v1"
)

func runState(g *globals, args []string) error {
	pos, err := parseArgs(newFlags("state", "<container-id>"), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := runtime.Load(g.root, pos[0])
	if err != nil {
		return err
	}
	return printJSON(c.State())
}

func printJSON(v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(data, '\n'))
	return err
}
