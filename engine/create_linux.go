package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"berth.dev/engine/ocispec"
	"berth.dev/image"
	"berth.dev/internal/atomicfile"
	"berth.dev/internal/errdefs"
	netdns "berth.dev/network/dns"
)

// Create makes a container from req with the given name ("" for a
// generated one). On error nothing is left: no record, name, snapshot,
// volume use or directory.
func (c *Containers) Create(ctx context.Context, name string, req container.CreateRequest) (resp container.CreateResponse, err error) {
	resp.Warnings = []string{}
	if req.Config == nil || req.Config.Image == "" {
		return resp, fmt.Errorf("%w: no image given", errdefs.ErrInvalidArgument)
	}
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	warnings, err := c.checkHostConfig(hc)
	if err != nil {
		return resp, err
	}
	resp.Warnings = append(resp.Warnings, warnings...)
	m, err := c.images.lookup(ctx, req.Config.Image)
	if err != nil {
		return resp, noSuchImage(req.Config.Image, err)
	}
	img, err := c.images.load(ctx, m.Images[0])
	if err != nil {
		return resp, err
	}
	cfg := mergeConfig(img.config, *req.Config)

	id := newID()
	if cfg.Hostname == "" {
		cfg.Hostname = id[:12]
	}
	fullName, err := c.reserveName(name, id)
	if err != nil {
		return resp, err
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	undo = append(undo, func() { c.releaseName(fullName) })
	runtime, err := c.runtimeBinary(hc.Runtime)
	if err != nil {
		return resp, err
	}
	rec := record{
		ID: id, Name: fullName, Created: time.Now().UTC(), Image: m.ID.String(), ImageRef: req.Config.Image,
		Config: &cfg, HostConfig: hc, Runtime: runtime,
		State: state{Status: container.StateCreated},
	}
	if c.nets != nil {
		if rec.Networks, err = c.createEndpoints(hc, req.NetworkingConfig); err != nil {
			return resp, err
		}
	}

	parent := ""
	if n := len(img.chainIDs); n > 0 {
		parent = img.chainIDs[n-1].String()
	}
	bg := context.WithoutCancel(ctx)
	initLayer, err := c.prepareInit(ctx, id, parent)
	if err != nil {
		return resp, err
	}
	if _, err := c.snaps.Prepare(ctx, snapshotKey(id), initLayer); err != nil {
		return resp, fmt.Errorf("container snapshot: %w", err)
	}
	undo = append(undo, func() { c.snaps.Remove(bg, snapshotKey(id)) })
	if err := os.MkdirAll(c.dataDir(id), 0o700); err != nil {
		return resp, err
	}
	undo = append(undo, func() { os.RemoveAll(c.dataDir(id)) })
	if err := c.writeEtcFiles(&rec); err != nil {
		return resp, err
	}
	mounts, err := c.createMounts(ctx, &rec, img.config)
	if c.volumes != nil {
		undo = append(undo, func() { c.volumes.Release(bg, id, true) })
	}
	if err != nil {
		return resp, err
	}
	rec.Mounts = mounts
	if err := c.save(ctx, &rec); err != nil {
		return resp, err
	}
	x := &ctr{rec: rec, changed: make(chan struct{})}
	c.mu.Lock()
	c.byID[id] = x
	c.mu.Unlock()
	c.publish(&rec, events.ActionCreate, nil)
	resp.ID = id
	return resp, nil
}

// runtimeBinary resolves the runtime of --runtime: empty for the daemon's
// default, a name of the [runtimes] table, or a path.
func (c *Containers) runtimeBinary(name string) (string, error) {
	switch name {
	case "":
		return c.cfg.Runtime, nil
	}
	if p, ok := c.cfg.Runtimes[name]; ok {
		return p, nil
	}
	switch name {
	case "berth", "berth-runtime", "runc", "crun":
		if name == "berth" {
			name = "berth-runtime" // "berth" itself is the CLI
		}
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		return "", fmt.Errorf("%w: runtime %s: not found in $PATH", errdefs.ErrInvalidArgument, name)
	}
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("%w: runtime %s: %w", errdefs.ErrInvalidArgument, name, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("%w: unknown or invalid runtime name: %s", errdefs.ErrInvalidArgument, name)
}

// checkHostConfig refuses what berth cannot do and returns warnings for
// what it does differently.
func (c *Containers) checkHostConfig(hc *container.HostConfig) ([]string, error) {
	var warnings []string
	switch p := hc.RestartPolicy; p.Name {
	case container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if p.MaximumRetryCount != 0 {
			return nil, fmt.Errorf("%w: invalid restart policy: maximum retry count can only be used with 'on-failure'", errdefs.ErrInvalidArgument)
		}
	case container.RestartPolicyOnFailure:
		if p.MaximumRetryCount < 0 {
			return nil, fmt.Errorf("%w: invalid restart policy: maximum retry count must be a positive integer", errdefs.ErrInvalidArgument)
		}
	case "":
		hc.RestartPolicy.Name = container.RestartPolicyDisabled
	default:
		return nil, fmt.Errorf("%w: invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", errdefs.ErrInvalidArgument, p.Name)
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		return nil, fmt.Errorf("%w: conflicting options: cannot specify both --restart and --rm", errdefs.ErrInvalidArgument)
	}
	mode := string(hc.NetworkMode)
	switch {
	case mode == "" || mode == "default":
		hc.NetworkMode = "bridge"
	case mode == "bridge" || mode == "none" || mode == "host":
	case strings.HasPrefix(mode, "container:"):
		if _, err := c.find(strings.TrimPrefix(mode, "container:")); err != nil {
			return nil, err
		}
	case c.nets == nil:
		return nil, fmt.Errorf("%w: network %s not found", errdefs.ErrNotFound, mode)
	default:
		if _, err := c.nets.lookupRecord(mode); err != nil {
			return nil, err
		}
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	switch hc.LogConfig.Type {
	case "json-file", "none":
	default:
		return nil, fmt.Errorf("%w: logging driver %q is not supported (json-file, none)", errdefs.ErrInvalidArgument, hc.LogConfig.Type)
	}
	for k, v := range hc.LogConfig.Config {
		switch k {
		case "max-size":
			if _, err := units.RAMInBytes(v); err != nil {
				return nil, fmt.Errorf("%w: log-opt max-size=%s: %w", errdefs.ErrInvalidArgument, v, err)
			}
		case "max-file":
			var n int
			if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
				return nil, fmt.Errorf("%w: log-opt max-file=%s: want a positive number", errdefs.ErrInvalidArgument, v)
			}
		case "compress", "labels", "env", "tag":
		default:
			return nil, fmt.Errorf("%w: unknown log opt '%s' for %s log driver", errdefs.ErrInvalidArgument, k, hc.LogConfig.Type)
		}
	}
	return warnings, nil
}

// mergeConfig is the container's config: the request's over the image's,
// as docker merges them at create.
func mergeConfig(img image.Config, req container.Config) container.Config {
	ic := img.Config
	cfg := req
	if cfg.User == "" {
		cfg.User = ic.User
	}
	env := slices.Clone(ic.Env)
	for _, e := range req.Env {
		k, _, _ := strings.Cut(e, "=")
		env = slices.DeleteFunc(env, func(o string) bool { ok, _, _ := strings.Cut(o, "="); return ok == k })
		env = append(env, e)
	}
	cfg.Env = env
	if len(cfg.Entrypoint) == 0 && req.Entrypoint == nil {
		cfg.Entrypoint = ic.Entrypoint
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = ic.Cmd
		}
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ic.WorkingDir
	}
	if len(ic.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range req.Labels {
			labels[k] = v
		}
		cfg.Labels = labels
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = ic.StopSignal
	}
	if len(ic.ExposedPorts) > 0 {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		for p := range ic.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	}
	if len(ic.Volumes) > 0 {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for v := range ic.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	}
	if cfg.Healthcheck == nil && img.Config.Healthcheck != nil {
		h := img.Config.Healthcheck
		cfg.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	return cfg
}

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf. With the host's network they are the host's (hostname
// stays the container's own file, as docker does).
func (c *Containers) writeEtcFiles(rec *record) error {
	dir := c.dataDir(rec.ID)
	hc := rec.HostConfig
	hostname := rec.Config.Hostname
	if hc.NetworkMode.IsHost() {
		if h, err := os.Hostname(); err == nil && rec.Config.Hostname == rec.ID[:12] {
			hostname = h
			rec.Config.Hostname = h
		}
	}
	fqdn := hostname
	if rec.Config.Domainname != "" {
		fqdn = hostname + "." + rec.Config.Domainname
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, "hostname"), []byte(hostname+"\n"), 0o644); err != nil {
		return err
	}
	var hosts []byte
	if hc.NetworkMode.IsHost() {
		data, err := os.ReadFile("/etc/hosts")
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		hosts = data
	} else {
		// The container's own address on its first network names it, as
		// in docker; without one, 127.0.1.1 does. host-gateway is that
		// network's gateway: the host as the container reaches it.
		addr, gw := primaryAddr(rec)
		var extra []string
		for _, h := range hc.ExtraHosts {
			name, ip, ok := strings.Cut(h, ":")
			if !ok {
				continue
			}
			if ip == "host-gateway" {
				ip = "127.0.0.1"
				if gw.IsValid() {
					ip = gw.String()
				}
			}
			extra = append(extra, ip+"\t"+name)
		}
		if addr.IsValid() {
			names := hostname
			if fqdn != hostname {
				names = fqdn + " " + hostname
			}
			extra = append(extra, addr.String()+"\t"+names)
		} else if fqdn != "" {
			extra = append(extra, "127.0.1.1\t"+fqdn)
		}
		hosts = ocispec.HostsFile(hostname, extra)
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, "hosts"), hosts, 0o644); err != nil {
		return err
	}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var dns []string
	for _, a := range hc.DNS {
		dns = append(dns, a.String())
	}
	resolv := ocispec.ResolvConf(host, dns, hc.DNSSearch, hc.DNSOptions)
	if len(rec.HostIfs) > 0 {
		// On a bridge network the embedded DNS server answers: the
		// containers' names, and for the rest the --dns servers or the
		// host's resolvers.
		resolv = netdns.ResolvConf(host, hc.DNSSearch, hc.DNSOptions)
	}
	return atomicfile.WriteBytes(filepath.Join(dir, "resolv.conf"), resolv, 0o644)
}

// createMounts resolves binds, --mount and the image's volumes into mount
// points, acquiring the named and anonymous volumes.
func (c *Containers) createMounts(ctx context.Context, rec *record, img image.Config) ([]container.MountPoint, error) {
	hc := rec.HostConfig
	var out []container.MountPoint
	taken := map[string]bool{}
	add := func(mp container.MountPoint) error {
		if !path.IsAbs(mp.Destination) {
			return fmt.Errorf("%w: invalid mount config: mount path must be absolute: %s", errdefs.ErrInvalidArgument, mp.Destination)
		}
		mp.Destination = path.Clean(mp.Destination)
		if taken[mp.Destination] {
			return fmt.Errorf("%w: Duplicate mount point: %s", errdefs.ErrInvalidArgument, mp.Destination)
		}
		taken[mp.Destination] = true
		if mp.Type == mount.TypeVolume {
			if c.volumes == nil {
				return fmt.Errorf("%w: volumes are not available", errdefs.ErrNotImplemented)
			}
			anonymous := mp.Name == ""
			if anonymous {
				mp.Name = newID()
			}
			p, err := c.volumes.Acquire(ctx, mp.Name, rec.ID, anonymous)
			if err != nil {
				return err
			}
			mp.Source, mp.Driver = p, "local"
		}
		out = append(out, mp)
		return nil
	}
	for _, b := range hc.Binds {
		mp, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	for _, m := range hc.Mounts {
		mp := container.MountPoint{Type: m.Type, Source: m.Source, Destination: m.Target, RW: !m.ReadOnly}
		switch m.Type {
		case mount.TypeBind:
			if m.Source == "" || !filepath.IsAbs(m.Source) {
				return nil, fmt.Errorf("%w: invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", errdefs.ErrInvalidArgument, m.Source)
			}
			if _, err := os.Stat(m.Source); err != nil {
				return nil, fmt.Errorf("%w: invalid mount config for type \"bind\": bind source path does not exist: %s", errdefs.ErrInvalidArgument, m.Source)
			}
			if m.BindOptions != nil {
				mp.Propagation = m.BindOptions.Propagation
			}
		case mount.TypeVolume:
			mp.Name, mp.Source = m.Source, ""
		case mount.TypeTmpfs:
			if m.Source != "" {
				return nil, fmt.Errorf("%w: invalid mount config for type \"tmpfs\": source must not be specified", errdefs.ErrInvalidArgument)
			}
			if hc.Tmpfs == nil {
				hc.Tmpfs = map[string]string{}
			}
			var opts []string
			if t := m.TmpfsOptions; t != nil {
				if t.SizeBytes > 0 {
					opts = append(opts, fmt.Sprintf("size=%d", t.SizeBytes))
				}
				if t.Mode != 0 {
					opts = append(opts, fmt.Sprintf("mode=%o", t.Mode))
				}
			}
			hc.Tmpfs[m.Target] = strings.Join(opts, ",")
			taken[path.Clean(m.Target)] = true
			continue
		default:
			return nil, fmt.Errorf("%w: mount type %q is not supported", errdefs.ErrInvalidArgument, m.Type)
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	// -v /path and the image's VOLUMEs get anonymous volumes, unless
	// something is mounted there already.
	var anon []string
	for v := range rec.Config.Volumes {
		anon = append(anon, v)
	}
	slices.Sort(anon)
	for _, v := range anon {
		if _, tmpfs := hc.Tmpfs[v]; taken[path.Clean(v)] || tmpfs {
			continue
		}
		if err := add(container.MountPoint{Type: mount.TypeVolume, Destination: v, RW: true}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseBind reads one -v: "host:ctr[:opts]" (a bind when host is a path,
// else a named volume) or "/ctr" (an anonymous volume, in Config.Volumes).
func parseBind(spec string) (container.MountPoint, error) {
	parts := strings.Split(spec, ":")
	var mp container.MountPoint
	switch len(parts) {
	case 2, 3:
		mp.Source, mp.Destination = parts[0], parts[1]
	default:
		return mp, fmt.Errorf("%w: invalid volume specification: '%s'", errdefs.ErrInvalidArgument, spec)
	}
	mp.RW = true
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				mp.RW = false
			case "rw":
			case "z", "Z", "nocopy", "":
			case "private", "rprivate", "shared", "rshared", "slave", "rslave":
				mp.Propagation = mount.Propagation(o)
			default:
				return mp, fmt.Errorf("%w: invalid mode: %s", errdefs.ErrInvalidArgument, o)
			}
		}
		mp.Mode = parts[2]
	}
	if filepath.IsAbs(mp.Source) {
		mp.Type = mount.TypeBind
		if _, err := os.Stat(mp.Source); os.IsNotExist(err) {
			// docker creates a missing bind source directory.
			if err := os.MkdirAll(mp.Source, 0o755); err != nil {
				return mp, fmt.Errorf("%w: create bind source %s: %w", errdefs.ErrInvalidArgument, mp.Source, err)
			}
		}
	} else {
		if mp.Source == "" {
			return mp, fmt.Errorf("%w: invalid volume specification: '%s'", errdefs.ErrInvalidArgument, spec)
		}
		mp.Type, mp.Name, mp.Source = mount.TypeVolume, mp.Source, ""
	}
	return mp, nil
}

// runOptions converts the container's record into the options of
// engine/ocispec.
func (c *Containers) runOptions(rec *record) (ocispec.RunOptions, error) {
	cfg, hc := rec.Config, rec.HostConfig
	o := ocispec.RunOptions{
		ID: rec.ID, Hostname: cfg.Hostname, Domainname: cfg.Domainname,
		Env: cfg.Env, User: cfg.User, GroupAdd: hc.GroupAdd, WorkingDir: cfg.WorkingDir,
		Tty: cfg.Tty, OpenStdin: cfg.OpenStdin, ConsoleSize: hc.ConsoleSize, ReadOnly: hc.ReadonlyRootfs, Privileged: hc.Privileged,
		CapAdd: hc.CapAdd, CapDrop: hc.CapDrop, SecurityOpt: hc.SecurityOpt,
		Memory: hc.Memory, MemorySwap: hc.MemorySwap, ShmSize: hc.ShmSize, NanoCPUs: hc.NanoCPUs,
		CPUShares: hc.CPUShares, CpusetCpus: hc.CpusetCpus, PidsLimit: hc.PidsLimit, BlkioWeight: hc.BlkioWeight,
		OomScoreAdj: hc.OomScoreAdj, Tmpfs: hc.Tmpfs, Sysctls: hc.Sysctls, Labels: cfg.Labels,
		NetworkMode: string(hc.NetworkMode), CgroupParent: hc.CgroupParent, CgroupnsMode: string(hc.CgroupnsMode),
		StopSignal: cfg.StopSignal,
	}
	o.Cmd = slices.Clone([]string(cfg.Cmd))
	if o.Cmd == nil {
		o.Cmd = []string{}
	}
	o.Entrypoint = slices.Clone([]string(cfg.Entrypoint))
	if len(o.Entrypoint) == 0 {
		o.Entrypoint = []string{""}
	}
	if hc.Init != nil && *hc.Init {
		o.Init = true
		o.InitPath = c.cfg.InitPath
	}
	for _, u := range hc.Ulimits {
		o.Ulimits = append(o.Ulimits, ocispec.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, d := range hc.Devices {
		o.Devices = append(o.Devices, ocispec.Device{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions})
	}
	for _, m := range rec.Mounts {
		mo := ocispec.Mount{Source: m.Source, Destination: m.Destination, ReadOnly: !m.RW, Propagation: string(m.Propagation)}
		o.Mounts = append(o.Mounts, mo)
	}
	dir := c.dataDir(rec.ID)
	o.HostnamePath = filepath.Join(dir, "hostname")
	o.HostsPath = filepath.Join(dir, "hosts")
	o.ResolvConfPath = filepath.Join(dir, "resolv.conf")
	switch mode := string(hc.NetworkMode); {
	case strings.HasPrefix(mode, "container:"):
		other, err := c.find(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return o, err
		}
		r := other.snapshotRecord()
		if r.State.Status != container.StateRunning || r.State.Pid == 0 {
			return o, fmt.Errorf("%w: cannot join network namespace of a non running container: container %s is %s", errdefs.ErrConflict, strings.TrimPrefix(r.Name, "/"), r.State.Status)
		}
		o.NetNSPath = fmt.Sprintf("/proc/%d/ns/net", r.State.Pid)
		o.NetworkMode = "container:" + r.ID
	case mode == "host":
	default:
		// berthd made and pinned the namespace (none, bridge and user
		// networks); without the network service the runtime makes one.
		o.NetworkMode = "none"
		o.NetNSPath = rec.NetNS
	}
	return o, nil
}
