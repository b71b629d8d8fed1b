package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"berth.dev/runtime"

	json "github.com/go-json-experiment/json/v1"
)

func runList(g *globals, args []string) error {
	fs := newFlags("list", "")
	format := fs.String("format", "table", "select one of: table or json")
	fs.StringVar(format, "f", "table", "select one of: table or json")
	quiet := fs.Bool("quiet", false, "display only container IDs")
	fs.BoolVar(quiet, "q", false, "display only container IDs")
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return err
	}
	states, err := runtime.List(g.root)
	if err != nil {
		return err
	}
	if *quiet {
		for _, s := range states {
			fmt.Println(s.ID)
		}
		return nil
	}
	switch *format {
	case "json":
		if states == nil {
			states = []*runtime.State{}
		}
		return json.NewEncoder(os.Stdout).Encode(states)
	case "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return w.Flush()
	}
	return fmt.Errorf("invalid format option %q: use table or json", *format)
}
