package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/pflag"

	"berth.dev/internal/errdefs"
)

// runOptions are the flags of "berth run" and "berth create", kept as
// typed; containerConfig turns them into the API's create request the way
// the docker CLI does.
type runOptions struct {
	flags *pflag.FlagSet

	// Client-side behaviour of run, create and start.
	detach     bool
	rm         bool
	name       string
	pull       string
	platform   string
	detachKeys string
	attach     []string
	sigProxy   bool
	quiet      bool
	cidFile    string

	// Process.
	interactive, tty bool
	env, envFiles    []string
	workdir, user    string
	entrypoint       string
	hostname         string
	domainname       string
	labels           []string
	labelFiles       []string
	stopSignal       string
	stopTimeout      int
	init             bool
	groupAdd         []string
	expose           []string

	// Storage.
	volumes     []string
	mounts      []string
	tmpfs       []string
	readOnly    bool
	shmSize     string
	volumesFrom []string

	// Resources.
	memory, memorySwap, memoryReservation string
	memorySwappiness                      int64
	oomKillDisable                        bool
	cpus                                  string
	cpuShares, cpuPeriod, cpuQuota        int64
	cpusetCpus, cpusetMems                string
	pidsLimit                             int64
	blkioWeight                           uint16
	ulimits                               []string
	devices                               []string
	deviceCgroupRules                     []string
	cgroupParent                          string
	oomScoreAdj                           int

	// Security and namespaces.
	capAdd, capDrop []string
	privileged      bool
	securityOpt     []string
	sysctls         []string
	cgroupns        string
	ipc, pid, uts   string
	userns          string

	// Engine.
	restart   string
	runtime   string
	logDriver string
	logOpts   []string

	// Network.
	network    string
	ipv4, ipv6 string
	aliases    []string
	macAddress string
	publish    []string
	publishAll bool
	addHosts   []string
	dns        []string
	dnsSearch  []string
	dnsOptions []string
}

// addRunFlags defines the flags that run and create share (and, for the
// resource flags, update). withRunOnly adds run's own (-d, --rm, ...).
func addRunFlags(fs *pflag.FlagSet, o *runOptions, withRunOnly bool) {
	o.flags = fs
	// -h is --hostname, as in docker, so --help is defined here without
	// the shorthand cobra would give it.
	fs.Bool("help", false, "Print usage")
	if withRunOnly {
		fs.BoolVarP(&o.detach, "detach", "d", false, "Run container in background and print container ID")
		fs.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	}
	fs.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fs.BoolVar(&o.rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	fs.StringVar(&o.pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
	fs.StringVar(&o.platform, "platform", "", "Set platform if server is multi-platform capable")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the pull output")
	fs.StringVar(&o.cidFile, "cidfile", "", "Write the container ID to the file")
	listVarP(fs, &o.attach, "list", "attach", "a", "Attach to STDIN, STDOUT or STDERR")

	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	listVarP(fs, &o.env, "list", "env", "e", "Set environment variables")
	listVarP(fs, &o.envFiles, "list", "env-file", "", "Read in a file of environment variables")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	listVarP(fs, &o.labels, "list", "label", "l", "Set meta data on a container")
	listVarP(fs, &o.labelFiles, "list", "label-file", "", "Read in a line delimited file of labels")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	listVarP(fs, &o.groupAdd, "list", "group-add", "", "Add additional groups to join")
	listVarP(fs, &o.expose, "list", "expose", "", "Expose a port or a range of ports")

	listVarP(fs, &o.volumes, "list", "volume", "v", "Bind mount a volume")
	listVarP(fs, &o.mounts, "mount", "mount", "", "Attach a filesystem mount to the container")
	listVarP(fs, &o.tmpfs, "list", "tmpfs", "", "Mount a tmpfs directory")
	listVarP(fs, &o.volumesFrom, "list", "volumes-from", "", "Mount volumes from the specified container(s)")
	fs.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.Var(checkedString(&o.shmSize, "bytes", checkBytes), "shm-size", "Size of /dev/shm")

	addResourceFlags(fs, o)
	listVarP(fs, &o.devices, "list", "device", "", "Add a host device to the container")
	listVarP(fs, &o.deviceCgroupRules, "list", "device-cgroup-rule", "", "Add a rule to the cgroup allowed devices list")
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fs.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.Int64Var(&o.memorySwappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fs.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fs.Var(&checkedValue{p: &o.ulimits, kind: "ulimit", check: checkUlimit, list: true}, "ulimit", "Ulimit options")

	listVarP(fs, &o.capAdd, "list", "cap-add", "", "Add Linux capabilities")
	listVarP(fs, &o.capDrop, "list", "cap-drop", "", "Drop Linux capabilities")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	listVarP(fs, &o.securityOpt, "list", "security-opt", "", "Security Options")
	listVarP(fs, &o.sysctls, "map", "sysctl", "", "Sysctl options")
	fs.StringVar(&o.cgroupns, "cgroupns", "", "Cgroup namespace to use (host|private)")
	fs.StringVar(&o.ipc, "ipc", "", "IPC mode to use")
	fs.StringVar(&o.pid, "pid", "", "PID namespace to use")
	fs.StringVar(&o.uts, "uts", "", "UTS namespace to use")
	fs.StringVar(&o.userns, "userns", "", "User namespace to use")

	fs.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	fs.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	listVarP(fs, &o.logOpts, "list", "log-opt", "", "Log driver options")

	fs.StringVar(&o.network, "network", "", "Connect a container to a network")
	fs.StringVar(&o.network, "net", "", "Connect a container to a network")
	fs.MarkHidden("net")
	fs.StringVar(&o.ipv4, "ip", "", `IPv4 address (e.g., "172.30.100.104")`)
	fs.StringVar(&o.ipv6, "ip6", "", `IPv6 address (e.g., "2001:db8::33")`)
	listVarP(fs, &o.aliases, "list", "network-alias", "", "Add network-scoped alias for the container")
	fs.StringVar(&o.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	listVarP(fs, &o.publish, "list", "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	listVarP(fs, &o.addHosts, "list", "add-host", "", "Add a custom host-to-IP mapping (host:ip)")
	listVarP(fs, &o.dns, "list", "dns", "", "Set custom DNS servers")
	listVarP(fs, &o.dnsSearch, "list", "dns-search", "", "Set custom DNS search domains")
	listVarP(fs, &o.dnsOptions, "list", "dns-option", "", "Set DNS options")
}

// addResourceFlags defines the cgroup resource flags of run, create and
// update, and --restart.
func addResourceFlags(fs *pflag.FlagSet, o *runOptions) {
	fs.VarP(checkedString(&o.memory, "bytes", checkBytes), "memory", "m", "Memory limit")
	fs.Var(checkedString(&o.memorySwap, "bytes", checkSwap), "memory-swap", `Swap limit equal to memory plus swap: '-1' to enable unlimited swap`)
	fs.Var(checkedString(&o.memoryReservation, "bytes", checkBytes), "memory-reservation", "Memory soft limit")
	fs.Var(checkedString(&o.cpus, "decimal", checkCPUs), "cpus", "Number of CPUs")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.Uint16Var(&o.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fs.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits")
}

// checkedValue is a string flag (or, with list, a repeatable one) whose
// values are checked as they are parsed, so that a bad one fails like any
// flag that does not parse (status 125 and the usage), as with docker.
type checkedValue struct {
	p     any // *string or *[]string
	kind  string
	check func(string) error
	list  bool
}

func checkedString(p *string, kind string, check func(string) error) *checkedValue {
	return &checkedValue{p: p, kind: kind, check: check}
}

func (v *checkedValue) Set(s string) error {
	if err := v.check(s); err != nil {
		return err
	}
	if v.list {
		l := v.p.(*[]string)
		*l = append(*l, s)
		return nil
	}
	*v.p.(*string) = s
	return nil
}

func (v *checkedValue) String() string {
	if v.list {
		return strings.Join(*v.p.(*[]string), ",")
	}
	return *v.p.(*string)
}

func (v *checkedValue) Type() string { return v.kind }

func checkBytes(s string) error {
	_, err := units.RAMInBytes(s)
	return err
}

func checkSwap(s string) error {
	if s == "-1" {
		return nil
	}
	return checkBytes(s)
}

func checkCPUs(s string) error {
	_, err := parseCPUs(s)
	return err
}

func checkUlimit(s string) error {
	_, err := units.ParseUlimit(s)
	return err
}

// createRequest is what one run or create sends to the daemon.
type createRequest struct {
	Config     *container.Config
	HostConfig *container.HostConfig
	// Networking holds the endpoint settings of --ip, --ip6,
	// --network-alias and --mac-address.
	Networking *network.NetworkingConfig
	Platform   *ocispec.Platform
	Name       string
}

// invalidError is a value the CLI refuses before asking the daemon. Its
// message is docker's, without a category prefix; errors.Is finds
// errdefs.ErrInvalidArgument in it.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return errdefs.ErrInvalidArgument }

func invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// containerConfig builds the create request for image and command args
// from the flags, as the docker CLI does; getenv answers "-e VAR" and
// --env-file lines without a value.
func (o *runOptions) containerConfig(imageName string, args []string, getenv func(string) string) (*createRequest, error) {
	env, err := readEnv(o.envFiles, o.env, getenv)
	if err != nil {
		return nil, err
	}
	labels, err := readLabels(o.labelFiles, o.labels)
	if err != nil {
		return nil, err
	}
	resources, err := o.resources()
	if err != nil {
		return nil, err
	}
	restart, err := parseRestartPolicy(o.restart)
	if err != nil {
		return nil, err
	}
	if o.rm && restart.Name != "" && restart.Name != container.RestartPolicyDisabled {
		return nil, invalid("conflicting options: cannot specify both --restart and --rm")
	}

	attachIn, attachOut, attachErr := false, false, false
	for _, a := range o.attach {
		switch strings.ToLower(a) {
		case "stdin":
			attachIn = true
		case "stdout":
			attachOut = true
		case "stderr":
			attachErr = true
		default:
			return nil, invalid("valid streams are STDIN, STDOUT and STDERR")
		}
	}
	if o.interactive {
		attachIn = true
	}
	if len(o.attach) == 0 {
		attachOut, attachErr = true, true
	}

	cfg := &container.Config{
		Hostname:     o.hostname,
		Domainname:   o.domainname,
		User:         o.user,
		AttachStdin:  attachIn,
		AttachStdout: attachOut,
		AttachStderr: attachErr,
		Tty:          o.tty,
		OpenStdin:    o.interactive,
		StdinOnce:    o.interactive && attachIn,
		Env:          env,
		Cmd:          args,
		Image:        imageName,
		WorkingDir:   o.workdir,
		Labels:       labels,
		StopSignal:   o.stopSignal,
	}
	if o.flags.Changed("stop-timeout") {
		t := o.stopTimeout
		cfg.StopTimeout = &t
	}
	switch {
	case o.entrypoint != "":
		cfg.Entrypoint = []string{o.entrypoint}
	case o.flags.Changed("entrypoint"):
		// An empty --entrypoint clears the image's.
		cfg.Entrypoint = []string{""}
	}
	if len(args) == 0 {
		cfg.Cmd = nil
	}

	hc := &container.HostConfig{
		AutoRemove:      o.rm,
		RestartPolicy:   restart,
		Privileged:      o.privileged,
		ReadonlyRootfs:  o.readOnly,
		CapAdd:          o.capAdd,
		CapDrop:         o.capDrop,
		GroupAdd:        o.groupAdd,
		OomScoreAdj:     o.oomScoreAdj,
		Runtime:         o.runtime,
		LogConfig:       container.LogConfig{Type: o.logDriver},
		Resources:       resources,
		IpcMode:         container.IpcMode(o.ipc),
		PidMode:         container.PidMode(o.pid),
		UTSMode:         container.UTSMode(o.uts),
		UsernsMode:      container.UsernsMode(o.userns),
		VolumesFrom:     o.volumesFrom,
		DNSOptions:      o.dnsOptions,
		DNSSearch:       o.dnsSearch,
		PublishAllPorts: o.publishAll,
	}
	if o.flags.Changed("init") {
		v := o.init
		hc.Init = &v
	}
	if err := o.storage(cfg, hc); err != nil {
		return nil, err
	}
	if err := o.security(hc); err != nil {
		return nil, err
	}
	if err := o.networking(cfg, hc); err != nil {
		return nil, err
	}
	networking, err := o.endpoint()
	if err != nil {
		return nil, err
	}
	if len(o.logOpts) > 0 {
		hc.LogConfig.Config, err = keyValueMap(o.logOpts, "log-opt")
		if err != nil {
			return nil, err
		}
	}
	req := &createRequest{Config: cfg, HostConfig: hc, Networking: networking, Name: o.name}
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return nil, err
		}
		req.Platform = &p
	}
	return req, nil
}

// resources reads the cgroup flags; update uses it too.
func (o *runOptions) resources() (container.Resources, error) {
	var r container.Resources
	var err error
	if r.Memory, err = ramFlag("memory", o.memory); err != nil {
		return r, err
	}
	if r.MemoryReservation, err = ramFlag("memory-reservation", o.memoryReservation); err != nil {
		return r, err
	}
	if o.memorySwap == "-1" {
		r.MemorySwap = -1
	} else if r.MemorySwap, err = ramFlag("memory-swap", o.memorySwap); err != nil {
		return r, err
	}
	if o.cpus != "" {
		if r.NanoCPUs, err = parseCPUs(o.cpus); err != nil {
			return r, invalid("invalid argument %q for \"--cpus\" flag: %v", o.cpus, err)
		}
	}
	r.CPUShares, r.CPUPeriod, r.CPUQuota = o.cpuShares, o.cpuPeriod, o.cpuQuota
	r.CpusetCpus, r.CpusetMems = o.cpusetCpus, o.cpusetMems
	r.BlkioWeight = o.blkioWeight
	r.CgroupParent = o.cgroupParent
	r.DeviceCgroupRules = o.deviceCgroupRules
	if o.flags.Changed("pids-limit") {
		v := o.pidsLimit
		r.PidsLimit = &v
	}
	if f := o.flags.Lookup("memory-swappiness"); f != nil && f.Changed {
		v := o.memorySwappiness
		r.MemorySwappiness = &v
	}
	if f := o.flags.Lookup("oom-kill-disable"); f != nil && f.Changed {
		v := o.oomKillDisable
		r.OomKillDisable = &v
	}
	for _, u := range o.ulimits {
		ul, err := units.ParseUlimit(u)
		if err != nil {
			return r, invalid("invalid argument %q for \"--ulimit\" flag: %v", u, err)
		}
		r.Ulimits = append(r.Ulimits, ul)
	}
	for _, d := range o.devices {
		dm, err := parseDevice(d)
		if err != nil {
			return r, err
		}
		r.Devices = append(r.Devices, dm)
	}
	return r, nil
}

// ramFlag reads a memory size ("512m", "1g"); empty is zero.
func ramFlag(name, value string) (int64, error) {
	if value == "" {
		return 0, nil
	}
	n, err := units.RAMInBytes(value)
	if err != nil {
		return 0, invalid("invalid argument %q for \"--%s\" flag: %v", value, name, err)
	}
	return n, nil
}

// parseCPUs turns a decimal CPU count into billionths of a CPU, refusing
// values finer than that.
func parseCPUs(value string) (int64, error) {
	cpu, ok := new(big.Rat).SetString(value)
	if !ok {
		return 0, fmt.Errorf("failed to parse %v as a rational number", value)
	}
	nano := cpu.Mul(cpu, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, fmt.Errorf("value is too precise")
	}
	return nano.Num().Int64(), nil
}

// parseDevice reads --device HOST[:CONTAINER][:PERMISSIONS].
func parseDevice(s string) (container.DeviceMapping, error) {
	parts := strings.Split(s, ":")
	d := container.DeviceMapping{PathOnHost: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
		d.PathInContainer = parts[0]
	case 2:
		if validDeviceMode(parts[1]) {
			d.PathInContainer, d.CgroupPermissions = parts[0], parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 3:
		if !validDeviceMode(parts[2]) {
			return d, invalid("invalid device mode: %s", parts[2])
		}
		d.PathInContainer, d.CgroupPermissions = parts[1], parts[2]
	default:
		return d, invalid("invalid device specification: %s", s)
	}
	if !strings.HasPrefix(d.PathInContainer, "/") {
		return d, invalid("%s is not an absolute path", d.PathInContainer)
	}
	return d, nil
}

func validDeviceMode(mode string) bool {
	if mode == "" || len(mode) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range mode {
		if !strings.ContainsRune("rwm", c) || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// parseRestartPolicy reads --restart NAME[:COUNT] (no, always,
// unless-stopped, on-failure[:N]).
func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	var p container.RestartPolicy
	if s == "" {
		return p, nil
	}
	// Like docker's CLI, only the form is checked here: the daemon
	// judges the policy's name and whether it takes a count.
	name, count, hasCount := strings.Cut(s, ":")
	p.Name = container.RestartPolicyMode(name)
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil {
			return p, invalid("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}

// storage fills in -v, --mount, --tmpfs and --shm-size.
func (o *runOptions) storage(cfg *container.Config, hc *container.HostConfig) error {
	var err error
	if hc.ShmSize, err = ramFlag("shm-size", o.shmSize); err != nil {
		return err
	}
	for _, v := range o.volumes {
		bind, anonymous, err := parseVolume(v)
		if err != nil {
			return err
		}
		if anonymous != "" {
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[anonymous] = struct{}{}
			continue
		}
		hc.Binds = append(hc.Binds, bind)
	}
	for _, m := range o.mounts {
		mt, err := parseMount(m)
		if err != nil {
			return err
		}
		hc.Mounts = append(hc.Mounts, mt)
	}
	for _, t := range o.tmpfs {
		path, opts, _ := strings.Cut(t, ":")
		if !strings.HasPrefix(path, "/") {
			return invalid("invalid tmpfs path %q: must be absolute", path)
		}
		if hc.Tmpfs == nil {
			hc.Tmpfs = map[string]string{}
		}
		hc.Tmpfs[path] = opts
	}
	return nil
}

// parseVolume reads one -v value: "/ctr" is an anonymous volume (returned
// as anonymous); "name:/ctr[:mode]" a named volume and "/host:/ctr[:mode]"
// a bind (returned as bind, with a relative "./host" made absolute).
func parseVolume(v string) (bind, anonymous string, err error) {
	parts := strings.Split(v, ":")
	switch len(parts) {
	case 1:
		if !strings.HasPrefix(v, "/") {
			return "", "", invalid("invalid volume specification: '%s': invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", v, v)
		}
		return "", v, nil
	case 2, 3:
	default:
		return "", "", invalid("invalid volume specification: '%s'", v)
	}
	src, dst := parts[0], parts[1]
	if src == "" {
		return "", "", invalid("invalid volume specification: '%s'", v)
	}
	if !strings.HasPrefix(dst, "/") {
		return "", "", invalid("invalid volume specification: '%s': invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", v, dst)
	}
	if len(parts) == 3 {
		for _, m := range strings.Split(parts[2], ",") {
			switch m {
			case "ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "shared", "rshared", "slave", "rslave", "consistent", "cached", "delegated":
			default:
				return "", "", invalid("invalid volume specification: '%s': invalid mode: %s", v, parts[2])
			}
		}
	}
	if strings.HasPrefix(src, ".") {
		if abs, err := filepath.Abs(src); err == nil {
			parts[0] = abs
		}
	}
	return strings.Join(parts, ":"), "", nil
}

// parseMount reads one --mount value, a comma-separated list of key=value
// fields (type=bind|volume|tmpfs, source, target, readonly, ...).
func parseMount(s string) (mount.Mount, error) {
	m := mount.Mount{Type: mount.TypeVolume}
	fields := strings.Split(s, ",")
	// The type decides which options apply, so it is read first.
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok && strings.ToLower(k) == "type" {
			m.Type = mount.Type(strings.ToLower(v))
		}
	}
	switch m.Type {
	case mount.TypeBind, mount.TypeVolume, mount.TypeTmpfs:
	default:
		return m, invalid("invalid argument %q for \"--mount\" flag: invalid mount type %q", s, m.Type)
	}
	boolValue := func(k, v string, ok bool) (bool, error) {
		if !ok {
			return true, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, invalid("invalid argument %q for \"--mount\" flag: invalid value for %s: %s", s, k, v)
		}
		return b, nil
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		var err error
		switch k {
		case "type":
		case "source", "src":
			m.Source = v
		case "target", "dst", "destination":
			m.Target = v
		case "readonly", "ro":
			m.ReadOnly, err = boolValue(k, v, ok)
		case "consistency":
			m.Consistency = mount.Consistency(v)
		case "bind-propagation":
			if m.BindOptions == nil {
				m.BindOptions = &mount.BindOptions{}
			}
			m.BindOptions.Propagation = mount.Propagation(v)
		case "bind-recursive":
			if m.BindOptions == nil {
				m.BindOptions = &mount.BindOptions{}
			}
			m.BindOptions.NonRecursive = v == "disabled"
		case "volume-nocopy":
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			m.VolumeOptions.NoCopy, err = boolValue(k, v, ok)
		case "volume-subpath":
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			m.VolumeOptions.Subpath = v
		case "volume-label":
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			if m.VolumeOptions.Labels == nil {
				m.VolumeOptions.Labels = map[string]string{}
			}
			lk, lv, _ := strings.Cut(v, "=")
			m.VolumeOptions.Labels[lk] = lv
		case "volume-driver", "volume-opt":
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			if m.VolumeOptions.DriverConfig == nil {
				m.VolumeOptions.DriverConfig = &mount.Driver{}
			}
			if k == "volume-driver" {
				m.VolumeOptions.DriverConfig.Name = v
				break
			}
			ok, ov, _ := strings.Cut(v, "=")
			if m.VolumeOptions.DriverConfig.Options == nil {
				m.VolumeOptions.DriverConfig.Options = map[string]string{}
			}
			m.VolumeOptions.DriverConfig.Options[ok] = ov
		case "tmpfs-size":
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			m.TmpfsOptions.SizeBytes, err = units.RAMInBytes(v)
		case "tmpfs-mode":
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			var mode uint64
			mode, err = strconv.ParseUint(v, 8, 32)
			m.TmpfsOptions.Mode = os.FileMode(mode)
		default:
			return m, invalid("invalid argument %q for \"--mount\" flag: unexpected key '%s' in '%s'", s, k, f)
		}
		if err != nil {
			return m, invalid("invalid argument %q for \"--mount\" flag: %v", s, err)
		}
	}
	if m.Target == "" {
		return m, invalid("invalid argument %q for \"--mount\" flag: target is required", s)
	}
	if m.Type == mount.TypeBind && m.Source == "" {
		return m, invalid("invalid argument %q for \"--mount\" flag: source is required when specifying bind mount", s)
	}
	return m, nil
}

// security fills in --security-opt, --sysctl and --cgroupns.
func (o *runOptions) security(hc *container.HostConfig) error {
	for _, opt := range o.securityOpt {
		k, v, _ := strings.Cut(opt, "=")
		if k == "seccomp" && v != "unconfined" && v != "builtin" && v != "" {
			// Like docker, the CLI sends the profile's content, since
			// the file is on the client's machine.
			b, err := os.ReadFile(v)
			if err != nil {
				return invalid("opening seccomp profile (%s) failed: %v", v, err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return invalid("compacting json for seccomp profile (%s) failed: %v", v, err)
			}
			opt = "seccomp=" + buf.String()
		}
		hc.SecurityOpt = append(hc.SecurityOpt, opt)
	}
	if len(o.sysctls) > 0 {
		m, err := keyValueMap(o.sysctls, "sysctl")
		if err != nil {
			return err
		}
		hc.Sysctls = m
	}
	switch o.cgroupns {
	case "", "host", "private":
		hc.CgroupnsMode = container.CgroupnsMode(o.cgroupns)
	default:
		return invalid("--cgroupns: invalid CGROUP mode")
	}
	return nil
}

// endpoint reads --ip, --ip6, --network-alias and --mac-address into the
// endpoint settings of the container's network, as docker's CLI sends
// them: an endpoint keyed by the --network value when one of the flags is
// given, and an empty "default" endpoint without --network. Aliases on a
// network that is not user-defined are refused as docker's CLI refuses
// them; static addresses there, which dockerd refuses, are refused here
// too, with dockerd's words.
func (o *runOptions) endpoint() (*network.NetworkingConfig, error) {
	target := o.network
	if target == "" {
		target = "default"
	}
	userDefined := container.NetworkMode(target).IsUserDefined()
	if len(o.aliases) > 0 && !userDefined {
		return nil, invalid("network-scoped aliases are only supported for user-defined networks")
	}
	var ep network.EndpointSettings
	if o.macAddress != "" {
		mac, err := net.ParseMAC(o.macAddress)
		if err != nil || len(mac) != 6 {
			return nil, invalid("%s is not a valid mac address", o.macAddress)
		}
		ep.MacAddress = network.HardwareAddr(mac)
	}
	if o.ipv4 != "" || o.ipv6 != "" {
		if !userDefined {
			return nil, invalid("user specified IP address is supported on user defined networks only")
		}
		ipam := &network.EndpointIPAMConfig{}
		var err error
		if ipam.IPv4Address, err = optionalAddr(o.ipv4, "IPv4"); err != nil {
			return nil, err
		}
		if ipam.IPv6Address, err = optionalAddr(o.ipv6, "IPv6"); err != nil {
			return nil, err
		}
		ep.IPAMConfig = ipam
	}
	ep.Aliases = o.aliases
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	if o.network == "" || ep.MacAddress != nil || ep.IPAMConfig != nil || len(ep.Aliases) > 0 {
		nc.EndpointsConfig[target] = &ep
	}
	return nc, nil
}

// networking fills in --network, -p, --expose, --add-host and --dns.
func (o *runOptions) networking(cfg *container.Config, hc *container.HostConfig) error {
	hc.NetworkMode = container.NetworkMode(o.network)
	if o.network == "" {
		hc.NetworkMode = "default"
	}
	for _, e := range o.expose {
		pr, err := network.ParsePortRange(withProto(e))
		if err != nil {
			return invalid("invalid range format for --expose: %s, error: %v", e, err)
		}
		for p := range pr.All() {
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = network.PortSet{}
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	for _, spec := range o.publish {
		if err := parsePublish(spec, cfg, hc); err != nil {
			return err
		}
	}
	for _, h := range o.addHosts {
		// Docker accepts host=ip as well as host:ip and sends the latter.
		if name, ip, ok := strings.Cut(h, "="); ok {
			h = name + ":" + ip
		}
		if _, _, ok := strings.Cut(h, ":"); !ok {
			return invalid("invalid argument %q for \"--add-host\" flag: bad format for add-host: %q", h, h)
		}
		hc.ExtraHosts = append(hc.ExtraHosts, h)
	}
	for _, d := range o.dns {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return invalid("invalid argument %q for \"--dns\" flag: %s is not an ip address", d, d)
		}
		hc.DNS = append(hc.DNS, a)
	}
	return nil
}

func withProto(p string) string {
	if strings.Contains(p, "/") {
		return p
	}
	return p + "/tcp"
}

// parsePublish reads one -p value: [[IP:]HOSTPORT:]CONTAINERPORT[/PROTO],
// where either port may be a range.
func parsePublish(spec string, cfg *container.Config, hc *container.HostConfig) error {
	rest, proto, _ := strings.Cut(spec, "/")
	if proto == "" {
		proto = "tcp"
	}
	var ip, hostPart, ctrPart string
	// An IPv6 host address is bracketed: [::1]:8080:80.
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return invalid("invalid IP address: %s", rest)
		}
		ip, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
	}
	parts := strings.Split(rest, ":")
	switch {
	case len(parts) == 1:
		ctrPart = parts[0]
	case len(parts) == 2:
		hostPart, ctrPart = parts[0], parts[1]
	case len(parts) == 3 && ip == "":
		ip, hostPart, ctrPart = parts[0], parts[1], parts[2]
	default:
		return invalid("invalid publish spec: %s", spec)
	}
	if ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return invalid("invalid IP address: %s", ip)
		}
	}
	ctr, err := network.ParsePortRange(ctrPart + "/" + proto)
	if err != nil {
		return invalid("invalid containerPort: %s", ctrPart)
	}
	var hostStart, hostEnd uint64
	if hostPart != "" {
		lo, hi, isRange := strings.Cut(hostPart, "-")
		if hostStart, err = strconv.ParseUint(lo, 10, 16); err != nil {
			return invalid("invalid hostPort: %s", hostPart)
		}
		hostEnd = hostStart
		if isRange {
			if hostEnd, err = strconv.ParseUint(hi, 10, 16); err != nil || hostEnd < hostStart {
				return invalid("invalid hostPort: %s", hostPart)
			}
		}
	}
	ctrCount := uint64(ctr.End()) - uint64(ctr.Start())
	if hostPart != "" && hostEnd-hostStart != ctrCount && hostStart != hostEnd {
		return invalid("invalid ranges specified for container and host Ports: %s and %s", ctrPart, hostPart)
	}
	if cfg.ExposedPorts == nil {
		cfg.ExposedPorts = network.PortSet{}
	}
	if hc.PortBindings == nil {
		hc.PortBindings = network.PortMap{}
	}
	i := uint64(0)
	for p := range ctr.All() {
		cfg.ExposedPorts[p] = struct{}{}
		b := network.PortBinding{}
		if ip != "" {
			b.HostIP, _ = netip.ParseAddr(ip)
		}
		switch {
		case hostPart == "":
		case hostStart == hostEnd && ctrCount > 0:
			b.HostPort = strconv.FormatUint(hostStart, 10)
		case hostStart == hostEnd:
			b.HostPort = hostPart
		default:
			b.HostPort = strconv.FormatUint(hostStart+i, 10)
		}
		hc.PortBindings[p] = append(hc.PortBindings[p], b)
		i++
	}
	return nil
}

// keyValueMap reads key=value flag values into a map.
func keyValueMap(values []string, flag string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, invalid("invalid argument %q for \"--%s\" flag: invalid key value pair format: %s", kv, flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// readEnv reads the environment: --env-file lines first, then -e values,
// a later value of a variable replacing an earlier one in its place. A
// name without "=" takes its value from getenv, or stays bare when unset
// (the daemon then leaves it out).
func readEnv(files, values []string, getenv func(string) string) ([]string, error) {
	var env []string
	for _, f := range files {
		lines, err := readKeyValueFile(f, getenv)
		if err != nil {
			return nil, err
		}
		env = append(env, lines...)
	}
	for _, v := range values {
		k, _, hasValue := strings.Cut(v, "=")
		if k == "" {
			return nil, invalid("invalid argument %q for \"-e, --env\" flag: invalid environment variable: %s", v, v)
		}
		if !hasValue {
			if val := getenv(k); val != "" {
				v = k + "=" + val
			}
		}
		env = append(env, v)
	}
	return dedupeEnv(env), nil
}

// dedupeEnv keeps one entry per variable: the last value, at the place of
// the first.
func dedupeEnv(env []string) []string {
	index := map[string]int{}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// readLabels reads --label-file lines, then -l values, into a map.
func readLabels(files, values []string) (map[string]string, error) {
	all := []string{}
	for _, f := range files {
		lines, err := readKeyValueFile(f, func(string) string { return "" })
		if err != nil {
			return nil, err
		}
		all = append(all, lines...)
	}
	all = append(all, values...)
	labels := map[string]string{}
	for _, l := range all {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	return labels, nil
}

// readKeyValueFile reads an env file: one VAR=value per line, blank lines
// and "#" comments skipped, a bare VAR taken from getenv (or kept bare).
func readKeyValueFile(path string, getenv func(string) string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, hasValue := strings.Cut(line, "=")
		if k == "" {
			return nil, invalid("invalid env file (%s): no variable name on line '%s'", path, line)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, invalid("variable '%s' contains whitespaces", k)
		}
		if !hasValue {
			if v := getenv(k); v != "" {
				line = k + "=" + v
			}
		}
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return lines, nil
}
