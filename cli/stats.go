package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"berth.dev/cli/format"
)

// statsOptions are the flags of "berth stats".
type statsOptions struct {
	all, noStream, noTrunc bool
	format                 string
}

func (c *CLI) statsCommand() *cobra.Command {
	var o statsOptions
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.stats(cmd.Context(), o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	f.StringVar(&o.format, "format", "", formatHelp)
	f.BoolVar(&o.noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

// statsRow is one line of "berth stats". Fields are in alphabetical order
// so that --format json prints them in docker's order.
type statsRow struct {
	BlockIO   string
	CPUPerc   string
	Container string
	ID        string
	MemPerc   string
	MemUsage  string
	Name      string
	NetIO     string
	PIDs      string
}

var statsHeaders = map[string]string{
	"BlockIO":   "BLOCK I/O",
	"CPUPerc":   "CPU %",
	"Container": "CONTAINER",
	"ID":        "CONTAINER ID",
	"MemPerc":   "MEM %",
	"MemUsage":  "MEM USAGE / LIMIT",
	"Name":      "NAME",
	"NetIO":     "NET I/O",
	"PIDs":      "PIDS",
}

const statsDefaultTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

// statsTarget is one container being watched: what the user called it
// and its latest sample.
type statsTarget struct {
	ref    string
	sample *container.StatsResponse
	err    error
}

func (c *CLI) stats(ctx context.Context, o statsOptions, names []string) error {
	f := format.Parse(o.format, statsDefaultTable)
	if _, err := format.NewTemplate(f.Template); err != nil {
		return err
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		res, err := api.ContainerList(ctx, client.ContainerListOptions{All: o.all})
		if err != nil {
			return err
		}
		for _, s := range res.Items {
			names = append(names, s.ID)
		}
	}
	targets := make([]*statsTarget, len(names))
	for i, n := range names {
		targets[i] = &statsTarget{ref: n}
	}
	if o.noStream {
		var wg sync.WaitGroup
		for _, t := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.sample, t.err = oneSample(ctx, api, t.ref)
			}()
		}
		wg.Wait()
		var failures []string
		var rows []format.Row
		for _, t := range targets {
			if t.err != nil {
				failures = append(failures, t.err.Error())
				continue
			}
			rows = append(rows, statsRowOf(t.ref, t.sample, !o.noTrunc))
		}
		if len(failures) > 0 {
			return &StatusError{Status: strings.Join(failures, "\n"), Code: 1}
		}
		return format.Write(c.out, f, statsHeaders, rows)
	}
	return c.streamStats(ctx, api, f, targets, !o.noTrunc)
}

// oneSample asks for a single sample (the daemon includes the previous
// one, so CPU use can be computed).
func oneSample(ctx context.Context, api *client.Client, ref string) (*container.StatsResponse, error) {
	res, err := api.ContainerStats(ctx, ref, client.ContainerStatsOptions{Stream: false, IncludePreviousSample: true})
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("decode stats of %s: %w", ref, err)
	}
	return &s, nil
}

// streamStats redraws the table each second from each container's
// stream, until the context ends or every stream has.
func (c *CLI) streamStats(ctx context.Context, api *client.Client, f format.Format, targets []*statsTarget, trunc bool) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := api.ContainerStats(ctx, t.ref, client.ContainerStatsOptions{Stream: true})
			if err != nil {
				mu.Lock()
				t.err = err
				mu.Unlock()
				return
			}
			defer res.Body.Close()
			dec := json.NewDecoder(res.Body)
			for {
				var s container.StatsResponse
				if err := dec.Decode(&s); err != nil {
					if !errors.Is(err, io.EOF) && ctx.Err() == nil {
						mu.Lock()
						t.err = err
						mu.Unlock()
					}
					return
				}
				mu.Lock()
				t.sample = &s
				mu.Unlock()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	clear := isTerminal(c.out)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	draw := func() error {
		mu.Lock()
		var rows []format.Row
		for _, t := range targets {
			if t.sample != nil {
				rows = append(rows, statsRowOf(t.ref, t.sample, trunc))
			}
		}
		mu.Unlock()
		if clear {
			io.WriteString(c.out, "\033[2J\033[H")
		}
		return format.Write(c.out, f, statsHeaders, rows)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-finished:
			var failures []string
			for _, t := range targets {
				if t.err != nil {
					failures = append(failures, t.err.Error())
				}
			}
			if len(failures) > 0 {
				return &StatusError{Status: strings.Join(failures, "\n"), Code: 1}
			}
			return draw()
		case <-tick.C:
			if err := draw(); err != nil {
				return err
			}
		}
	}
}

// statsRowOf computes docker's figures from one sample: CPU use since the
// previous sample across all online CPUs, memory without the page cache
// the kernel can drop, and network and block I/O totals.
func statsRowOf(ref string, s *container.StatsResponse, trunc bool) statsRow {
	id := s.ID
	if trunc {
		id = format.TruncateID(id)
	}
	mem := memoryUsage(s.MemoryStats)
	memPerc := 0.0
	if s.MemoryStats.Limit != 0 {
		memPerc = float64(mem) / float64(s.MemoryStats.Limit) * 100
	}
	var rx, tx uint64
	for _, n := range s.Networks {
		rx += n.RxBytes
		tx += n.TxBytes
	}
	var read, write uint64
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			read += e.Value
		case "write":
			write += e.Value
		}
	}
	return statsRow{
		BlockIO:   units.HumanSizeWithPrecision(float64(read), 3) + " / " + units.HumanSizeWithPrecision(float64(write), 3),
		CPUPerc:   fmt.Sprintf("%.2f%%", cpuPercent(s)),
		Container: ref,
		ID:        id,
		MemPerc:   fmt.Sprintf("%.2f%%", memPerc),
		MemUsage:  units.BytesSize(float64(mem)) + " / " + units.BytesSize(float64(s.MemoryStats.Limit)),
		Name:      strings.TrimPrefix(s.Name, "/"),
		NetIO:     units.HumanSizeWithPrecision(float64(rx), 3) + " / " + units.HumanSizeWithPrecision(float64(tx), 3),
		PIDs:      fmt.Sprint(s.PidsStats.Current),
	}
}

// cpuPercent is the container's share of the host's CPU time between the
// two samples, scaled by the number of CPUs (two busy CPUs are 200%).
func cpuPercent(s *container.StatsResponse) float64 {
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	cpus := float64(s.CPUStats.OnlineCPUs)
	if cpus == 0 {
		cpus = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if cpuDelta <= 0 || sysDelta <= 0 {
		return 0
	}
	return cpuDelta / sysDelta * cpus * 100
}

// memoryUsage leaves out inactive page cache: "inactive_file" on cgroup
// v2, "total_inactive_file" on v1.
func memoryUsage(m container.MemoryStats) uint64 {
	for _, key := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := m.Stats[key]; ok && v < m.Usage {
			return m.Usage - v
		}
	}
	return m.Usage
}
