package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"berth.dev/runtime"

	json "github.com/go-json-experiment/json/v1"
)

func runPs(g *globals, args []string) error {
	fs := newFlags("ps", "<container-id> [ps options]")
	format := fs.String("format", "table", "select one of: table or json")
	fs.StringVar(format, "f", "table", "select one of: table or json")
	pos, err := parseArgs(fs, args, 1, -1)
	if err != nil {
		return err
	}
	c, err := runtime.Load(g.root, pos[0])
	if err != nil {
		return err
	}
	pids, err := c.Processes()
	if err != nil {
		return err
	}
	switch *format {
	case "json":
		if pids == nil {
			pids = []int{}
		}
		return json.NewEncoder(os.Stdout).Encode(pids)
	case "table":
	default:
		return fmt.Errorf("invalid format option %q: use table or json", *format)
	}
	psArgs := pos[1:]
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
	}
	lines := strings.Split(string(bytes.TrimRight(out, "\n")), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("couldn't find PID field in ps output")
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	fmt.Println(lines[0])
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= col {
			continue
		}
		if pid, err := strconv.Atoi(f[col]); err == nil && in[pid] {
			fmt.Println(line)
		}
	}
	return nil
}
