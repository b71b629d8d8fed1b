package engine

import (
	"berth.dev/internal/atomicfile"
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"berth.dev/api/docker/backend"
	"berth.dev/cgroups"
	"berth.dev/internal/errdefs"
)

// System answers the engine-wide questions of the API: docker info,
// docker version, the event stream.
type System struct {
	cfg     *Config
	events  *Events
	version string
	commit  string
	id      string
	// apiVersion and minAPIVersion are the API server's, for the Engine
	// component of Version (the docker CLI prints them from there).
	apiVersion, minAPIVersion string
	// counts reports image and container numbers for Info; nil reports 0.
	counts func(ctx context.Context) (images, containers, running, paused int)
	usage  func(ctx context.Context, opts backend.DiskUsageOptions) (backend.DiskUsage, error)
	// login checks registry credentials for AuthLogin.
	login func(ctx context.Context, auth registry.AuthConfig) (string, error)
}

// SetAPIVersions records the API versions the server speaks.
func (s *System) SetAPIVersions(max, min string) { s.apiVersion, s.minAPIVersion = max, min }

// SetDiskUsage sets where DiskUsage takes its figures from (the image,
// container and volume services).
func (s *System) SetDiskUsage(f func(ctx context.Context, opts backend.DiskUsageOptions) (backend.DiskUsage, error)) {
	s.usage = f
}

// DiskUsage reports what docker system df shows.
func (s *System) DiskUsage(ctx context.Context, opts backend.DiskUsageOptions) (backend.DiskUsage, error) {
	if s.usage == nil {
		return backend.DiskUsage{}, nil
	}
	return s.usage(ctx, opts)
}

// SetLogin sets the registry credential check AuthLogin uses.
func (s *System) SetLogin(f func(ctx context.Context, auth registry.AuthConfig) (string, error)) {
	s.login = f
}

// AuthLogin checks credentials against a registry (docker login).
func (s *System) AuthLogin(ctx context.Context, auth registry.AuthConfig) (string, error) {
	if s.login == nil {
		return "", fmt.Errorf("%w: no registry client configured", errdefs.ErrUnavailable)
	}
	return s.login(ctx, auth)
}

// NewSystem returns the system service. It reads (or creates) the
// engine's persistent ID under cfg.Root.
func NewSystem(cfg *Config, ev *Events, version, commit string) (*System, error) {
	id, err := engineID(filepath.Join(cfg.Root, "engine-id"))
	if err != nil {
		return nil, err
	}
	return &System{cfg: cfg, events: ev, version: version, commit: commit, id: id}, nil
}

// SetCounts sets the function Info takes its image and container counts
// from (the image and container services, once they exist).
func (s *System) SetCounts(f func(ctx context.Context) (images, containers, running, paused int)) {
	s.counts = f
}

// engineID returns the ID stored at path, creating a random one first.
func engineID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
	id = fmt.Sprintf("%s-%s-%s-%s-%s", id[0:8], id[8:12], id[12:16], id[16:20], id[20:32])
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return "", err
	}
	return id, atomicfile.WriteBytes(path, []byte(id+"\n"), 0o644, atomicfile.Durable())
}

// Info describes the engine and its host.
func (s *System) Info(ctx context.Context) (system.Info, error) {
	var uts unix.Utsname
	unix.Uname(&uts)
	var si unix.Sysinfo_t
	unix.Sysinfo(&si)
	hostname, _ := os.Hostname()
	cgVersion, cgDriver := "1", "cgroupfs"
	if mode, err := cgroups.DetectMode(cgroups.DefaultMountRoot); err == nil && mode == cgroups.Unified {
		cgVersion = "2"
	}
	info := system.Info{
		ID:                 s.id,
		Driver:             "overlay2",
		DriverStatus:       [][2]string{{"Backing Filesystem", backingFS(s.cfg.Root)}, {"Supports d_type", "true"}},
		MemoryLimit:        true,
		SwapLimit:          true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		OomKillDisable:     cgVersion == "1",
		IPv4Forwarding:     readTrim("/proc/sys/net/ipv4/ip_forward") == "1",
		NFd:                countDir("/proc/self/fd"),
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       cgDriver,
		CgroupVersion:      cgVersion,
		KernelVersion:      unix.ByteSliceToString(uts.Release[:]),
		OperatingSystem:    osRelease("PRETTY_NAME"),
		OSVersion:          osRelease("VERSION_ID"),
		OSType:             "linux",
		Architecture:       unix.ByteSliceToString(uts.Machine[:]),
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               runtime.NumCPU(),
		MemTotal:           int64(si.Totalram) * int64(si.Unit),
		DockerRootDir:      s.cfg.Root,
		Name:               hostname,
		ServerVersion:      s.version,
		Runtimes: map[string]system.RuntimeWithStatus{
			"berth-runtime": {Runtime: system.Runtime{Path: "berth-runtime"}},
			"runc":          {Runtime: system.Runtime{Path: "runc"}},
			"crun":          {Runtime: system.Runtime{Path: "crun"}},
		},
		DefaultRuntime:  filepath.Base(s.cfg.Runtime),
		Isolation:       "",
		SecurityOptions: []string{"name=seccomp,profile=builtin", "name=cgroupns"},
		CDISpecDirs:     []string{},
		Swarm:           swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		Plugins: system.PluginsInfo{
			Volume: []string{"local"},
			Log:    []string{"json-file"},
		},
	}
	if s.counts != nil {
		info.Images, info.Containers, info.ContainersRunning, info.ContainersPaused = s.counts(ctx)
		info.ContainersStopped = info.Containers - info.ContainersRunning - info.ContainersPaused
	}
	return info, nil
}

// Version describes this build of the engine.
func (s *System) Version(ctx context.Context) (system.VersionResponse, error) {
	var uts unix.Utsname
	unix.Uname(&uts)
	return system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth"},
		Version:       s.version,
		GitCommit:     s.commit,
		GoVersion:     runtime.Version(),
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		KernelVersion: unix.ByteSliceToString(uts.Release[:]),
		Components: []system.ComponentVersion{
			{Name: "Engine", Version: s.version, Details: map[string]string{
				"GitCommit":     s.commit,
				"GoVersion":     runtime.Version(),
				"ApiVersion":    s.apiVersion,
				"MinAPIVersion": s.minAPIVersion,
				"Os":            runtime.GOOS,
				"Arch":          runtime.GOARCH,
				"KernelVersion": unix.ByteSliceToString(uts.Release[:]),
				"Experimental":  "false",
			}},
		},
	}, nil
}

// SubscribeEvents returns the kept events since since (none for the zero
// time) and the live ones after them.
func (s *System) SubscribeEvents(ctx context.Context, since time.Time) ([]events.Message, <-chan events.Message, error) {
	past, live := s.events.Subscribe(ctx, since, !since.IsZero())
	return past, live, nil
}

func backingFS(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func countDir(path string) int {
	entries, _ := os.ReadDir(path)
	return len(entries)
}

// osRelease returns a field of /etc/os-release, unquoted.
func osRelease(key string) string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && k == key {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}
