package main

import (
	"os"
	"time"

	"berth.dev/runtime"

	json "github.com/go-json-experiment/json/v1"
)

// event is one line of `events` output, in runc's shape.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

func runEvents(g *globals, args []string) error {
	fs := newFlags("events", "<container-id>")
	interval := fs.Duration("interval", 5*time.Second, "set the stats collection interval")
	stats := fs.Bool("stats", false, "display the container's stats then exit")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *interval <= 0 {
		return errInterval
	}
	c, err := runtime.Load(g.root, pos[0])
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	if *stats {
		st, err := c.Stats()
		if err != nil {
			return err
		}
		return enc.Encode(event{Type: "stats", ID: c.ID(), Data: st})
	}
	oom, stop, err := c.OOMEvents()
	if err != nil {
		return err
	}
	defer stop()
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		select {
		case _, ok := <-oom:
			if !ok {
				oom = nil
				continue
			}
			if err := enc.Encode(event{Type: "oom", ID: c.ID()}); err != nil {
				return err
			}
		case <-tick.C:
			if c.Status() == runtime.Stopped {
				return nil
			}
			st, err := c.Stats()
			if err != nil {
				return err
			}
			if err := enc.Encode(event{Type: "stats", ID: c.ID(), Data: st}); err != nil {
				return err
			}
		}
	}
}

type constError string

func (e constError) Error() string { return string(e) }

const errInterval = constError("duration interval must be greater than 0")
