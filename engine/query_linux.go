package engine

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

// List returns the containers the options select, newest first.
func (c *Containers) List(ctx context.Context, opts backend.ContainerListOptions) ([]container.Summary, error) {
	match, err := c.matcher(opts.Filters)
	if err != nil {
		return nil, err
	}
	out := []container.Summary{}
	for _, x := range c.all() {
		rec := x.snapshotRecord()
		running := rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused || rec.State.Status == container.StateRestarting
		if !opts.All && opts.Limit <= 0 && !running && len(opts.Filters["status"]) == 0 && len(opts.Filters["exited"]) == 0 {
			continue
		}
		if !match(&rec) {
			continue
		}
		s := c.summary(ctx, &rec, opts.Size)
		out = append(out, s)
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
	}
	return out, nil
}

// matcher compiles the filters of docker ps and container prune.
func (c *Containers) matcher(f backend.ContainerFilters) (func(*record) bool, error) {
	var checks []func(*record) bool
	for key, values := range f {
		if len(values) == 0 {
			continue
		}
		any := func(pred func(*record, string) bool) {
			checks = append(checks, func(r *record) bool {
				return slices.ContainsFunc(values, func(v string) bool { return pred(r, v) })
			})
		}
		switch key {
		case "id":
			any(func(r *record, v string) bool { return strings.HasPrefix(r.ID, v) })
		case "name":
			var res []*regexp.Regexp
			for _, v := range values {
				re, err := regexp.Compile(v)
				if err != nil {
					return nil, fmt.Errorf("%w: invalid filter 'name=%s': %w", errdefs.ErrInvalidArgument, v, err)
				}
				res = append(res, re)
			}
			checks = append(checks, func(r *record) bool {
				return slices.ContainsFunc(res, func(re *regexp.Regexp) bool {
					return re.MatchString(r.Name) || re.MatchString(strings.TrimPrefix(r.Name, "/"))
				})
			})
		case "label":
			for _, v := range values {
				checks = append(checks, func(r *record) bool { return hasLabel(r.Config.Labels, v) })
			}
		case "label!":
			for _, v := range values {
				checks = append(checks, func(r *record) bool { return !hasLabel(r.Config.Labels, v) })
			}
		case "status":
			for _, v := range values {
				switch container.ContainerState(v) {
				case container.StateCreated, container.StateRunning, container.StatePaused, container.StateRestarting,
					container.StateRemoving, container.StateExited, container.StateDead:
				default:
					return nil, fmt.Errorf("%w: invalid filter 'status=%s'", errdefs.ErrInvalidArgument, v)
				}
			}
			any(func(r *record, v string) bool { return string(r.State.Status) == v })
		case "exited":
			var codes []int
			for _, v := range values {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("%w: invalid filter 'exited=%s'", errdefs.ErrInvalidArgument, v)
				}
				codes = append(codes, n)
			}
			checks = append(checks, func(r *record) bool {
				return r.State.Status == container.StateExited && slices.Contains(codes, r.State.ExitCode)
			})
		case "ancestor":
			var ids []string
			for _, v := range values {
				if m, err := c.images.lookup(context.Background(), v); err == nil {
					ids = append(ids, m.ID.String())
				}
			}
			checks = append(checks, func(r *record) bool {
				return slices.Contains(ids, r.Image) || slices.Contains(values, r.ImageRef)
			})
		case "before", "since":
			var ref time.Time
			for _, v := range values {
				x, err := c.find(v)
				if err != nil {
					return nil, err
				}
				ref = x.snapshotRecord().Created
			}
			if key == "before" {
				checks = append(checks, func(r *record) bool { return r.Created.Before(ref) })
			} else {
				checks = append(checks, func(r *record) bool { return r.Created.After(ref) })
			}
		case "until":
			var limit time.Time
			for _, v := range values {
				t, err := parseTimestamp(v)
				if err != nil {
					return nil, fmt.Errorf("%w: invalid filter 'until=%s': %w", errdefs.ErrInvalidArgument, v, err)
				}
				limit = t
			}
			checks = append(checks, func(r *record) bool { return r.Created.Before(limit) })
		case "volume":
			any(func(r *record, v string) bool {
				return slices.ContainsFunc(r.Mounts, func(m container.MountPoint) bool {
					return m.Name == v || m.Source == v || m.Destination == v
				})
			})
		case "network":
			// A network's name or ID, as the container is connected to it.
			any(func(r *record, v string) bool {
				if string(r.HostConfig.NetworkMode) == v {
					return true
				}
				for name, es := range r.Networks {
					if name == v || es.NetworkID == v || len(v) >= 12 && strings.HasPrefix(es.NetworkID, v) {
						return true
					}
				}
				return false
			})
		case "health":
			any(func(r *record, v string) bool { return v == "none" })
		case "isolation":
			any(func(r *record, v string) bool { return v == "default" || v == "" })
		case "publish", "expose":
			any(func(r *record, v string) bool {
				for p := range r.Config.ExposedPorts {
					if p.String() == v || strconv.Itoa(int(p.Num())) == v {
						return true
					}
				}
				return false
			})
		case "is-task":
			any(func(r *record, v string) bool { return v == "false" })
		default:
			return nil, fmt.Errorf("%w: invalid filter '%s'", errdefs.ErrInvalidArgument, key)
		}
	}
	return func(r *record) bool {
		for _, ok := range checks {
			if !ok(r) {
				return false
			}
		}
		return true
	}, nil
}

// parseTimestamp reads a filter's time: Unix seconds (with fraction),
// RFC 3339, or a duration before now ("10m").
func parseTimestamp(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Unix(0, int64(f*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp")
}

func hasLabel(labels map[string]string, sel string) bool {
	k, v, withValue := strings.Cut(sel, "=")
	have, ok := labels[k]
	return ok && (!withValue || have == v)
}

// command is the container's command line as docker ps shows it.
func command(cfg *container.Config) (string, []string) {
	args := append(slices.Clone([]string(cfg.Entrypoint)), cfg.Cmd...)
	if len(args) == 0 {
		return "", []string{}
	}
	return args[0], args[1:]
}

// statusText is docker ps's STATUS column.
func statusText(st state, now time.Time) string {
	switch st.Status {
	case container.StateRunning:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt))
	case container.StatePaused:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt)) + " (Paused)"
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case container.StateExited:
		if st.StartedAt.IsZero() {
			return "Created"
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case container.StateCreated:
		return "Created"
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	}
	return string(st.Status)
}

func (c *Containers) summary(ctx context.Context, rec *record, size bool) container.Summary {
	path, args := command(rec.Config)
	cmd := strings.Join(append([]string{path}, args...), " ")
	s := container.Summary{
		ID: rec.ID, Names: []string{rec.Name}, Image: rec.ImageRef, ImageID: rec.Image, Command: cmd,
		Created: rec.Created.Unix(), Ports: []container.PortSummary{}, Labels: rec.Config.Labels,
		State: rec.State.Status, Status: statusText(rec.State, time.Now()),
		NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}},
		Mounts:          slices.Clone(rec.Mounts),
	}
	if s.Mounts == nil {
		s.Mounts = []container.MountPoint{}
	}
	s.HostConfig.NetworkMode = string(rec.HostConfig.NetworkMode)
	for name, es := range rec.Networks {
		s.NetworkSettings.Networks[name] = es.Copy()
	}
	s.Ports = portSummary(rec.Ports)
	if size {
		s.SizeRw, s.SizeRootFs = c.sizes(ctx, rec)
	}
	return s
}

// sizes are the container's own bytes and those of its whole filesystem.
func (c *Containers) sizes(ctx context.Context, rec *record) (rw, rootfs int64) {
	if u, err := c.snaps.Usage(ctx, snapshotKey(rec.ID)); err == nil {
		rw = u.Size
	}
	rootfs = rw
	if m, err := c.images.lookup(ctx, rec.Image); err == nil {
		if r, err := c.images.load(ctx, m.Images[0]); err == nil {
			rootfs += c.images.layersSize(ctx, r)
		}
	}
	return rw, rootfs
}

// Inspect describes one container.
func (c *Containers) Inspect(ctx context.Context, name string, size bool) (container.InspectResponse, error) {
	x, err := c.find(name)
	if err != nil {
		return container.InspectResponse{}, err
	}
	rec := x.snapshotRecord()
	path, args := command(rec.Config)
	st := rec.State
	dir := c.dataDir(rec.ID)
	var execIDs []string
	c.mu.Lock()
	for id, e := range c.execs {
		if e.container == rec.ID {
			execIDs = append(execIDs, id)
		}
	}
	c.mu.Unlock()
	slices.Sort(execIDs)
	resp := container.InspectResponse{
		ID: rec.ID, Created: rec.Created.Format(time.RFC3339Nano), Path: path, Args: args,
		State: &container.State{
			Status: st.Status, Running: st.Status == container.StateRunning || st.Status == container.StatePaused,
			Paused: st.Status == container.StatePaused, Restarting: st.Status == container.StateRestarting,
			OOMKilled: st.OOMKilled, Dead: st.Status == container.StateDead, Pid: st.Pid, ExitCode: st.ExitCode,
			Error: st.Error, StartedAt: dockerTime(st.StartedAt), FinishedAt: dockerTime(st.FinishedAt),
		},
		Image: rec.Image, ResolvConfPath: dir + "/resolv.conf", HostnamePath: dir + "/hostname",
		HostsPath: dir + "/hosts", LogPath: c.logPath(rec.ID), Name: rec.Name, RestartCount: rec.RestartCount,
		Driver: "overlay2", Platform: "linux", ExecIDs: execIDs, HostConfig: rec.HostConfig,
		Mounts: slices.Clone(rec.Mounts), Config: rec.Config,
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}},
		GraphDriver:     &storage.DriverData{Name: "overlay2", Data: map[string]string{"MergedDir": c.rootfs(rec.ID)}},
	}
	if rec.HostConfig.LogConfig.Type == "none" {
		resp.LogPath = ""
	}
	for name, es := range rec.Networks {
		resp.NetworkSettings.Networks[name] = es.Copy()
	}
	resp.NetworkSettings.Ports = network.PortMap{}
	for p, bs := range rec.Ports {
		resp.NetworkSettings.Ports[p] = slices.Clone(bs)
	}
	if rec.NetNS != "" {
		resp.NetworkSettings.SandboxKey = rec.NetNS
		resp.NetworkSettings.SandboxID = rec.ID
	}
	if resp.Mounts == nil {
		resp.Mounts = []container.MountPoint{}
	}
	if size {
		rw, rootfs := c.sizes(ctx, &rec)
		resp.SizeRw, resp.SizeRootFs = &rw, &rootfs
	}
	return resp, nil
}

// dockerTime formats a state time as docker: RFC 3339 with nanoseconds,
// and the zero time as 0001-01-01T00:00:00Z.
func dockerTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// portSummary lists published and exposed ports as GET /containers/json
// does: one entry per host binding, or one without public port for an
// exposed port that is not published; sorted by private port.
func portSummary(pm network.PortMap) []container.PortSummary {
	out := []container.PortSummary{}
	for p, bs := range pm {
		if len(bs) == 0 {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
		for _, b := range bs {
			port, _ := strconv.ParseUint(b.HostPort, 10, 16)
			out = append(out, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(port), Type: string(p.Proto())})
		}
	}
	slices.SortFunc(out, func(a, b container.PortSummary) int {
		if a.PrivatePort != b.PrivatePort {
			return int(a.PrivatePort) - int(b.PrivatePort)
		}
		if a.Type != b.Type {
			return strings.Compare(a.Type, b.Type)
		}
		return int(a.PublicPort) - int(b.PublicPort)
	})
	return out
}
