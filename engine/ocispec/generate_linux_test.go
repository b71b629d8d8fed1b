package ocispec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/image"
	"berth.dev/internal/errdefs"
	runtimespec "berth.dev/runtime/spec"
)

const testID = "0123456789abcdef0123456789abcdef"

// fakeRootfs is a container rootfs with the account files of a small
// image: root, daemon, an "app" user (uid 1000) in groups app and
// wheel and audio.
func fakeRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write(t, root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"+
		"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"+
		"# a comment\n\n"+
		"app:x:1000:1000:App:/home/app:/bin/sh\n"+
		"broken:x:notanumber:0::/:/bin/sh\n")
	write(t, root, "etc/group", "root:x:0:\n"+
		"wheel:x:10:root,app\n"+
		"audio:x:29:app\n"+
		"app:x:1000:\n"+
		"staff:x:50:\n")
	return root
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func testImage() image.Config {
	var img image.Config
	img.Config.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	img.Config.Cmd = []string{"sh"}
	img.Config.WorkingDir = "/srv"
	return img
}

func generate(t *testing.T, img image.Config, o RunOptions) *specs.Spec {
	t.Helper()
	if o.ID == "" {
		o.ID = testID
	}
	s, err := Generate(img, fakeRootfs(t), o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if err := runtimespec.Validate(s, true); err != nil {
		t.Fatalf("generated spec does not validate: %v", err)
	}
	return s
}

func findMount(s *specs.Spec, dst string) (specs.Mount, bool) {
	for _, m := range s.Mounts {
		if m.Destination == dst {
			return m, true
		}
	}
	return specs.Mount{}, false
}

func TestGenerateDefaults(t *testing.T) {
	s := generate(t, testImage(), RunOptions{})
	p := s.Process
	if !reflect.DeepEqual(p.Args, []string{"sh"}) || p.Cwd != "/srv" || p.Terminal {
		t.Errorf("process args %q cwd %q terminal %v", p.Args, p.Cwd, p.Terminal)
	}
	wantEnv := []string{"PATH=/usr/bin:/bin", "HOSTNAME=0123456789ab", "LANG=C.UTF-8", "HOME=/root"}
	if !reflect.DeepEqual(p.Env, wantEnv) {
		t.Errorf("env = %q, want %q", p.Env, wantEnv)
	}
	if p.User.UID != 0 || p.User.GID != 0 || !reflect.DeepEqual(p.User.AdditionalGids, []uint32{10}) {
		t.Errorf("user = %+v, want root with wheel", p.User)
	}
	if !reflect.DeepEqual(p.Capabilities.Bounding, DefaultCapabilities()) ||
		!reflect.DeepEqual(p.Capabilities.Effective, DefaultCapabilities()) ||
		!reflect.DeepEqual(p.Capabilities.Permitted, DefaultCapabilities()) {
		t.Errorf("capabilities = %+v", p.Capabilities)
	}
	if p.NoNewPrivileges || p.Rlimits != nil || p.OOMScoreAdj == nil || *p.OOMScoreAdj != 0 {
		t.Errorf("noNewPrivileges %v rlimits %v oomScoreAdj %v", p.NoNewPrivileges, p.Rlimits, p.OOMScoreAdj)
	}
	if s.Hostname != "0123456789ab" || s.Linux.CgroupsPath != "/berth/"+testID || s.Root.Readonly {
		t.Errorf("hostname %q cgroupsPath %q readonly %v", s.Hostname, s.Linux.CgroupsPath, s.Root.Readonly)
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	for dst, opt := range map[string]string{"/proc": "nosuid", "/dev": "mode=755", "/dev/pts": "newinstance",
		"/sys": "ro", "/sys/fs/cgroup": "ro", "/dev/mqueue": "nodev", "/dev/shm": "size=67108864"} {
		m, ok := findMount(s, dst)
		if !ok || !slices.Contains(m.Options, opt) {
			t.Errorf("mount %s = %+v (found %v), want option %s", dst, m, ok, opt)
		}
	}
	var types []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		if n.Path != "" {
			t.Errorf("namespace %s joins %s", n.Type, n.Path)
		}
		types = append(types, n.Type)
	}
	want := []specs.LinuxNamespaceType{specs.MountNamespace, specs.NetworkNamespace, specs.UTSNamespace, specs.PIDNamespace, specs.IPCNamespace}
	if readHostFacts().cgroup2 {
		want = append(want, specs.CgroupNamespace)
	}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("namespaces %v, want %v", types, want)
	}
	if d := s.Linux.Resources.Devices; len(d) == 0 || d[0].Allow || d[0].Access != "rwm" {
		t.Errorf("device rules do not start by denying all: %+v", d)
	}
	if s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" || s.Linux.Sysctl["net.ipv4.ping_group_range"] != "0 2147483647" {
		t.Errorf("sysctls = %v, want docker's unprivileged ports and ping", s.Linux.Sysctl)
	}
	if s.Annotations[StopSignalAnnotation] != "SIGTERM" {
		t.Errorf("stop signal annotation %q", s.Annotations[StopSignalAnnotation])
	}
}

func TestGenerateSeccompDefault(t *testing.T) {
	s := generate(t, testImage(), RunOptions{})
	sc := s.Linux.Seccomp
	if sc == nil || sc.DefaultAction != specs.ActErrno {
		t.Fatalf("seccomp = %+v, want default action SCMP_ACT_ERRNO", sc)
	}
	want, err := seccomp.GetDefaultProfile(s)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sc, want) {
		t.Error("seccomp profile differs from moby's default profile for these capabilities")
	}
	names := map[string]bool{}
	for _, sys := range sc.Syscalls {
		if sys.Action == specs.ActAllow {
			for _, n := range sys.Names {
				names[n] = true
			}
		}
	}
	// read is always allowed; ptrace only on new kernels; mount needs
	// CAP_SYS_ADMIN, which the default set lacks.
	if !names["read"] || !names["execve"] || names["mount"] || names["kexec_load"] {
		t.Errorf("allowed syscalls: read %v execve %v mount %v kexec_load %v", names["read"], names["execve"], names["mount"], names["kexec_load"])
	}
	s = generate(t, testImage(), RunOptions{CapAdd: []string{"SYS_ADMIN"}})
	if !allows(s.Linux.Seccomp, "mount") {
		t.Error("with CAP_SYS_ADMIN the profile does not allow mount")
	}
}

func allows(sc *specs.LinuxSeccomp, name string) bool {
	for _, sys := range sc.Syscalls {
		if sys.Action == specs.ActAllow && slices.Contains(sys.Names, name) {
			return true
		}
	}
	return false
}

func TestGeneratePrivileged(t *testing.T) {
	s := generate(t, testImage(), RunOptions{Privileged: true})
	all := readHostFacts().allCaps
	if len(all) < 30 || !reflect.DeepEqual(s.Process.Capabilities.Bounding, all) {
		t.Errorf("privileged caps = %v, want all %d", s.Process.Capabilities.Bounding, len(all))
	}
	if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("privileged: seccomp %v masked %v readonly %v", s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	want := []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	if !reflect.DeepEqual(s.Linux.Resources.Devices, want) {
		t.Errorf("privileged device rules %+v", s.Linux.Resources.Devices)
	}
	if !slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/null" }) {
		t.Error("privileged container does not get the host's /dev/null")
	}
	if m, _ := findMount(s, "/sys"); slices.Contains(m.Options, "ro") {
		t.Errorf("privileged /sys is read-only: %v", m.Options)
	}
}

func ptr[T any](v T) *T { return &v }

// TestGenerateOptions maps each run flag into the configuration.
func TestGenerateOptions(t *testing.T) {
	tests := []struct {
		name  string
		img   func(*image.Config)
		opts  RunOptions
		check func(t *testing.T, s *specs.Spec)
	}{
		{"env replaces image's", nil, RunOptions{Env: []string{"LANG=fr", "X=1", "HOME=/h", "NOVALUE", "HOSTNAME", "E="}}, func(t *testing.T, s *specs.Spec) {
			want := []string{"PATH=/usr/bin:/bin", "LANG=fr", "X=1", "HOME=/h", "E="}
			eq(t, "env", s.Process.Env, want)
		}},
		{"image without PATH", func(c *image.Config) { c.Config.Env = nil }, RunOptions{}, func(t *testing.T, s *specs.Spec) {
			eq(t, "env[0]", s.Process.Env[0], "PATH="+defaultPath)
		}},
		{"tty sets TERM", nil, RunOptions{Tty: true, OpenStdin: true}, func(t *testing.T, s *specs.Spec) {
			eq(t, "terminal", s.Process.Terminal, true)
			eq(t, "has TERM", slices.Contains(s.Process.Env, "TERM=xterm"), true)
		}},
		{"tty console size", nil, RunOptions{Tty: true, ConsoleSize: [2]uint{45, 123}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "console size", *s.Process.ConsoleSize, specs.Box{Height: 45, Width: 123})
		}},
		{"console size needs a tty", nil, RunOptions{ConsoleSize: [2]uint{45, 123}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "console size", s.Process.ConsoleSize, (*specs.Box)(nil))
		}},
		{"cmd", nil, RunOptions{Cmd: []string{"echo", "hi"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "args", s.Process.Args, []string{"/entry", "echo", "hi"})
		}},
		{"entrypoint drops image cmd", nil, RunOptions{Entrypoint: []string{"/bin/true"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "args", s.Process.Args, []string{"/bin/true"})
		}},
		{"empty entrypoint clears", nil, RunOptions{Entrypoint: []string{""}, Cmd: []string{"ls"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "args", s.Process.Args, []string{"ls"})
		}},
		{"workdir", nil, RunOptions{WorkingDir: "/tmp/../var"}, func(t *testing.T, s *specs.Spec) {
			eq(t, "cwd", s.Process.Cwd, "/var")
		}},
		{"hostname", nil, RunOptions{Hostname: "web", Domainname: "example.org"}, func(t *testing.T, s *specs.Spec) {
			eq(t, "hostname", s.Hostname, "web")
			eq(t, "domainname", s.Domainname, "example.org")
			eq(t, "HOSTNAME", s.Process.Env[1], "HOSTNAME=web")
		}},
		{"labels", nil, RunOptions{Labels: map[string]string{"a.b": "c"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "annotation", s.Annotations["a.b"], "c")
		}},
		{"memory", nil, RunOptions{Memory: 64 << 20}, func(t *testing.T, s *specs.Spec) {
			eq(t, "limit", *s.Linux.Resources.Memory.Limit, int64(64<<20))
			eq(t, "swap", *s.Linux.Resources.Memory.Swap, int64(128<<20))
		}},
		{"memory swap unlimited", nil, RunOptions{Memory: 64 << 20, MemorySwap: -1}, func(t *testing.T, s *specs.Spec) {
			eq(t, "swap", *s.Linux.Resources.Memory.Swap, int64(-1))
		}},
		{"memory swap", nil, RunOptions{Memory: 64 << 20, MemorySwap: 100 << 20}, func(t *testing.T, s *specs.Spec) {
			eq(t, "swap", *s.Linux.Resources.Memory.Swap, int64(100<<20))
		}},
		{"cpus", nil, RunOptions{NanoCPUs: 5e8}, func(t *testing.T, s *specs.Spec) {
			eq(t, "quota", *s.Linux.Resources.CPU.Quota, int64(50000))
			eq(t, "period", *s.Linux.Resources.CPU.Period, uint64(100000))
		}},
		{"cpu shares", nil, RunOptions{CPUShares: 512, CpusetCpus: "0"}, func(t *testing.T, s *specs.Spec) {
			eq(t, "shares", *s.Linux.Resources.CPU.Shares, uint64(512))
			eq(t, "cpus", s.Linux.Resources.CPU.Cpus, "0")
		}},
		{"cpu shares clamped", nil, RunOptions{CPUShares: 1}, func(t *testing.T, s *specs.Spec) {
			eq(t, "shares", *s.Linux.Resources.CPU.Shares, uint64(2))
		}},
		{"pids limit", nil, RunOptions{PidsLimit: ptr(int64(100))}, func(t *testing.T, s *specs.Spec) {
			eq(t, "pids", *s.Linux.Resources.Pids.Limit, int64(100))
		}},
		{"pids unlimited", nil, RunOptions{PidsLimit: ptr(int64(-1))}, func(t *testing.T, s *specs.Spec) {
			eq(t, "pids", s.Linux.Resources.Pids == nil, true)
		}},
		{"blkio weight", nil, RunOptions{BlkioWeight: 300}, func(t *testing.T, s *specs.Spec) {
			eq(t, "weight", *s.Linux.Resources.BlockIO.Weight, uint16(300))
		}},
		{"ulimit", nil, RunOptions{Ulimits: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "rlimits", s.Process.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}})
		}},
		{"oom score", nil, RunOptions{OomScoreAdj: 500}, func(t *testing.T, s *specs.Spec) {
			eq(t, "oom", *s.Process.OOMScoreAdj, 500)
		}},
		{"device", nil, RunOptions{Devices: []Device{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rw"}}}, func(t *testing.T, s *specs.Spec) {
			d := s.Linux.Devices[0]
			eq(t, "device", [4]any{d.Path, d.Type, d.Major, d.Minor}, [4]any{"/dev/mynull", "c", int64(1), int64(3)})
			last := s.Linux.Resources.Devices[len(s.Linux.Resources.Devices)-1]
			eq(t, "rule", [3]any{last.Allow, last.Access, *last.Major}, [3]any{true, "rw", int64(1)})
		}},
		{"read-only", nil, RunOptions{ReadOnly: true, HostsPath: "/h/hosts"}, func(t *testing.T, s *specs.Spec) {
			eq(t, "readonly", s.Root.Readonly, true)
			m, _ := findMount(s, "/etc/hosts")
			eq(t, "hosts ro", slices.Contains(m.Options, "ro"), true)
		}},
		{"engine files", nil, RunOptions{HostsPath: "/h/hosts", ResolvConfPath: "/h/resolv.conf", HostnamePath: "/h/hostname"}, func(t *testing.T, s *specs.Spec) {
			for src, dst := range map[string]string{"/h/hosts": "/etc/hosts", "/h/resolv.conf": "/etc/resolv.conf", "/h/hostname": "/etc/hostname"} {
				m, ok := findMount(s, dst)
				eq(t, dst, [3]any{ok, m.Source, slices.Contains(m.Options, "ro")}, [3]any{true, src, false})
			}
		}},
		{"tmpfs", nil, RunOptions{Tmpfs: map[string]string{"/run": "size=1m,exec"}}, func(t *testing.T, s *specs.Spec) {
			m, _ := findMount(s, "/run")
			eq(t, "tmpfs", [2]any{m.Type, m.Options}, [2]any{"tmpfs", []string{"nosuid", "nodev", "size=1m", "exec"}})
		}},
		{"tmpfs over /dev/shm", nil, RunOptions{Tmpfs: map[string]string{"/dev/shm": ""}}, func(t *testing.T, s *specs.Spec) {
			m, _ := findMount(s, "/dev/shm")
			eq(t, "shm", m.Options, []string{"noexec", "nosuid", "nodev"})
		}},
		{"shm size", nil, RunOptions{ShmSize: 1 << 20}, func(t *testing.T, s *specs.Spec) {
			m, _ := findMount(s, "/dev/shm")
			eq(t, "shm size", slices.Contains(m.Options, "size=1048576"), true)
		}},
		{"bind and volume", nil, RunOptions{Mounts: []Mount{
			{Source: "/srv/data", Destination: "/data/sub", ReadOnly: true},
			{Source: "/var/lib/berth/volumes/v/_data", Destination: "/data", Propagation: "rslave"},
		}}, func(t *testing.T, s *specs.Spec) {
			var dsts []string
			for _, m := range s.Mounts {
				dsts = append(dsts, m.Destination)
			}
			if slices.Index(dsts, "/data") > slices.Index(dsts, "/data/sub") {
				t.Errorf("/data mounted after /data/sub: %v", dsts)
			}
			m, _ := findMount(s, "/data/sub")
			eq(t, "bind", [2]any{m.Source, m.Options}, [2]any{"/srv/data", []string{"rbind", "rprivate", "ro"}})
			eq(t, "rootfs propagation", s.Linux.RootfsPropagation, "rslave")
		}},
		{"cap add and drop", nil, RunOptions{CapAdd: []string{"net_admin", "CAP_SYS_TIME"}, CapDrop: []string{"MKNOD", "cap_chown"}}, func(t *testing.T, s *specs.Spec) {
			c := s.Process.Capabilities.Bounding
			eq(t, "caps", [4]bool{slices.Contains(c, "CAP_NET_ADMIN"), slices.Contains(c, "CAP_SYS_TIME"), slices.Contains(c, "CAP_MKNOD"), slices.Contains(c, "CAP_CHOWN")}, [4]bool{true, true, false, false})
			eq(t, "count", len(c), len(DefaultCapabilities()))
		}},
		{"cap drop all", nil, RunOptions{CapDrop: []string{"ALL"}, CapAdd: []string{"KILL"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "caps", s.Process.Capabilities.Bounding, []string{"CAP_KILL"})
		}},
		{"cap add all", nil, RunOptions{CapAdd: []string{"all"}, CapDrop: []string{"SYS_ADMIN"}}, func(t *testing.T, s *specs.Spec) {
			c := s.Process.Capabilities.Bounding
			eq(t, "caps", [2]bool{slices.Contains(c, "CAP_SYS_MODULE"), slices.Contains(c, "CAP_SYS_ADMIN")}, [2]bool{true, false})
			eq(t, "count", len(c), len(readHostFacts().allCaps)-1)
		}},
		{"no-new-privileges", nil, RunOptions{SecurityOpt: []string{"no-new-privileges"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "nnp", s.Process.NoNewPrivileges, true)
		}},
		{"no-new-privileges=false", nil, RunOptions{SecurityOpt: []string{"no-new-privileges:true", "no-new-privileges=false"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "nnp", s.Process.NoNewPrivileges, false)
		}},
		{"seccomp unconfined", nil, RunOptions{SecurityOpt: []string{"seccomp=unconfined"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "seccomp", s.Linux.Seccomp == nil, true)
		}},
		{"seccomp profile", nil, RunOptions{SecurityOpt: []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "action", s.Linux.Seccomp.DefaultAction, specs.ActAllow)
			eq(t, "syscalls", s.Linux.Seccomp.Syscalls[0].Names, []string{"chmod"})
		}},
		{"systempaths unconfined", nil, RunOptions{SecurityOpt: []string{"systempaths=unconfined"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "masked", s.Linux.MaskedPaths == nil && s.Linux.ReadonlyPaths == nil, true)
		}},
		{"label disable", nil, RunOptions{SecurityOpt: []string{"label=disable"}}, func(t *testing.T, s *specs.Spec) {}},
		{"init", nil, RunOptions{Init: true, InitPath: "/usr/bin/docker-init"}, func(t *testing.T, s *specs.Spec) {
			eq(t, "args", s.Process.Args, []string{InitDestination, "--", "/entry", "sh"})
			m, ok := findMount(s, InitDestination)
			eq(t, "init mount", [2]any{ok, m.Source}, [2]any{true, "/usr/bin/docker-init"})
		}},
		{"stop signal", nil, RunOptions{StopSignal: "SIGQUIT"}, func(t *testing.T, s *specs.Spec) {
			eq(t, "annotation", s.Annotations[StopSignalAnnotation], "SIGQUIT")
		}},
		{"image stop signal", func(c *image.Config) { c.Config.StopSignal = "SIGINT" }, RunOptions{}, func(t *testing.T, s *specs.Spec) {
			eq(t, "annotation", s.Annotations[StopSignalAnnotation], "SIGINT")
		}},
		{"sysctls", nil, RunOptions{Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "sysctl", s.Linux.Sysctl, map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000",
				"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"})
		}},
		{"sysctl overrides docker's", nil, RunOptions{Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "1024"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "port start", s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"], "1024")
		}},
		{"network host", nil, RunOptions{NetworkMode: "host"}, func(t *testing.T, s *specs.Spec) {
			_, ok := namespaceOf(s, specs.NetworkNamespace)
			eq(t, "has netns", ok, false)
			eq(t, "sysctls", s.Linux.Sysctl, map[string]string(nil))
		}},
		{"network none", nil, RunOptions{NetworkMode: "none"}, func(t *testing.T, s *specs.Spec) {
			n, ok := namespaceOf(s, specs.NetworkNamespace)
			eq(t, "netns", [2]any{ok, n.Path}, [2]any{true, ""})
		}},
		{"network container", nil, RunOptions{NetworkMode: "container:abc", NetNSPath: "/proc/self/ns/net"}, func(t *testing.T, s *specs.Spec) {
			n, _ := namespaceOf(s, specs.NetworkNamespace)
			eq(t, "netns path", n.Path, "/proc/self/ns/net")
			eq(t, "sysctls", s.Linux.Sysctl, map[string]string(nil))
		}},
		{"cgroupns host", nil, RunOptions{CgroupnsMode: "host"}, func(t *testing.T, s *specs.Spec) {
			_, ok := namespaceOf(s, specs.CgroupNamespace)
			eq(t, "cgroupns", ok, false)
		}},
		{"cgroupns private", nil, RunOptions{CgroupnsMode: "private"}, func(t *testing.T, s *specs.Spec) {
			_, ok := namespaceOf(s, specs.CgroupNamespace)
			eq(t, "cgroupns", ok, true)
		}},
		{"cgroup parent", nil, RunOptions{CgroupParent: "mygroup"}, func(t *testing.T, s *specs.Spec) {
			eq(t, "cgroupsPath", s.Linux.CgroupsPath, "/mygroup/"+testID)
		}},
		{"user from image", func(c *image.Config) { c.Config.User = "app" }, RunOptions{}, func(t *testing.T, s *specs.Spec) {
			eq(t, "user", s.Process.User, specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 29}})
			eq(t, "HOME", slices.Contains(s.Process.Env, "HOME=/home/app"), true)
			c := s.Process.Capabilities
			eq(t, "caps", [3]int{len(c.Bounding), len(c.Effective), len(c.Permitted)}, [3]int{len(DefaultCapabilities()), 0, 0})
		}},
		{"-u overrides image", func(c *image.Config) { c.Config.User = "app" }, RunOptions{User: "daemon:staff", GroupAdd: []string{"audio", "4242"}}, func(t *testing.T, s *specs.Spec) {
			eq(t, "user", s.Process.User, specs.User{UID: 1, GID: 50, AdditionalGids: []uint32{29, 4242}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := testImage()
			img.Config.Entrypoint = []string{"/entry"}
			if tt.img != nil {
				tt.img(&img)
			}
			tt.check(t, generate(t, img, tt.opts))
		})
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestGenerateErrors(t *testing.T) {
	facts := readHostFacts()
	tests := []struct {
		name string
		opts RunOptions
		img  func(*image.Config)
		want error
		msg  string
	}{
		{"unknown user", RunOptions{User: "nobody"}, nil, errdefs.ErrInvalidArgument, "unable to find user nobody: no matching entries in passwd file"},
		{"unknown group", RunOptions{User: "app:nogroup"}, nil, errdefs.ErrInvalidArgument, "unable to find group nogroup: no matching entries in group file"},
		{"unknown group-add", RunOptions{GroupAdd: []string{"nogroup"}}, nil, errdefs.ErrInvalidArgument, "unable to find group nogroup"},
		{"no command", RunOptions{Entrypoint: []string{""}}, nil, errdefs.ErrInvalidArgument, "no command specified"},
		{"relative workdir", RunOptions{WorkingDir: "srv"}, nil, errdefs.ErrInvalidArgument, "needs to be an absolute path"},
		{"unknown capability", RunOptions{CapAdd: []string{"CAP_FLY"}}, nil, errdefs.ErrInvalidArgument, "unknown capability"},
		{"memory too small", RunOptions{Memory: 1 << 20}, nil, errdefs.ErrInvalidArgument, "6MB"},
		{"swap without memory", RunOptions{MemorySwap: 1 << 30}, nil, errdefs.ErrInvalidArgument, "memory limit"},
		{"swap below memory", RunOptions{Memory: 64 << 20, MemorySwap: 32 << 20}, nil, errdefs.ErrInvalidArgument, "larger than memory"},
		{"too many cpus", RunOptions{NanoCPUs: int64(runtime.NumCPU()+1) * 1e9}, nil, errdefs.ErrInvalidArgument, "range of CPUs"},
		{"bad cpuset", RunOptions{CpusetCpus: "3-1"}, nil, errdefs.ErrInvalidArgument, "cpuset"},
		{"blkio weight", RunOptions{BlkioWeight: 5}, nil, errdefs.ErrInvalidArgument, "10 to 1000"},
		{"ulimit name", RunOptions{Ulimits: []Ulimit{{Name: "files", Soft: 1, Hard: 1}}}, nil, errdefs.ErrInvalidArgument, "invalid ulimit type"},
		{"ulimit soft above hard", RunOptions{Ulimits: []Ulimit{{Name: "nofile", Soft: 10, Hard: 5}}}, nil, errdefs.ErrInvalidArgument, "greater than hard"},
		{"oom score", RunOptions{OomScoreAdj: 2000}, nil, errdefs.ErrInvalidArgument, "oom score"},
		{"not a device", RunOptions{Devices: []Device{{PathOnHost: "/etc/hostname"}}}, nil, errdefs.ErrInvalidArgument, "not a device"},
		{"missing device", RunOptions{Devices: []Device{{PathOnHost: "/dev/berth-nonexistent"}}}, nil, errdefs.ErrInvalidArgument, "gathering device information"},
		{"device perms", RunOptions{Devices: []Device{{PathOnHost: "/dev/null", CgroupPermissions: "rx"}}}, nil, errdefs.ErrInvalidArgument, "permissions"},
		{"relative tmpfs", RunOptions{Tmpfs: map[string]string{"run": ""}}, nil, errdefs.ErrInvalidArgument, "absolute"},
		{"relative bind", RunOptions{Mounts: []Mount{{Source: "data", Destination: "/data"}}}, nil, errdefs.ErrInvalidArgument, "absolute host path"},
		{"bind over root", RunOptions{Mounts: []Mount{{Source: "/data", Destination: "/"}}}, nil, errdefs.ErrInvalidArgument, "destination"},
		{"bad propagation", RunOptions{Mounts: []Mount{{Source: "/data", Destination: "/d", Propagation: "weird"}}}, nil, errdefs.ErrInvalidArgument, "propagation"},
		{"init without path", RunOptions{Init: true}, nil, errdefs.ErrInvalidArgument, "--init"},
		{"security opt", RunOptions{SecurityOpt: []string{"nonsense=1"}}, nil, errdefs.ErrInvalidArgument, "security-opt"},
		{"seccomp path", RunOptions{SecurityOpt: []string{"seccomp=/etc/profile.json"}}, nil, errdefs.ErrInvalidArgument, "JSON"},
		{"seccomp bad json", RunOptions{SecurityOpt: []string{"seccomp={bad"}}, nil, errdefs.ErrInvalidArgument, "seccomp profile"},
		{"nnp not bool", RunOptions{SecurityOpt: []string{"no-new-privileges=maybe"}}, nil, errdefs.ErrInvalidArgument, "boolean"},
		{"net sysctl on host network", RunOptions{NetworkMode: "host", Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}, nil, errdefs.ErrInvalidArgument, "host network"},
		{"host sysctl", RunOptions{Sysctls: map[string]string{"kernel.panic": "1"}}, nil, errdefs.ErrInvalidArgument, "not allowed"},
		{"container network without path", RunOptions{NetworkMode: "container:x"}, nil, errdefs.ErrInvalidArgument, "network namespace"},
		{"cgroupns mode", RunOptions{CgroupnsMode: "shared"}, nil, errdefs.ErrInvalidArgument, "cgroup namespace"},
		{"stop signal", RunOptions{StopSignal: "SIGNOPE"}, nil, errdefs.ErrInvalidArgument, "invalid signal"},
		{"empty label key", RunOptions{Labels: map[string]string{"": "x"}}, nil, errdefs.ErrInvalidArgument, "empty key"},
		{"image user unknown", RunOptions{}, func(c *image.Config) { c.Config.User = "ghost" }, errdefs.ErrInvalidArgument, "unable to find user ghost"},
	}
	if !facts.apparmor {
		tests = append(tests, struct {
			name string
			opts RunOptions
			img  func(*image.Config)
			want error
			msg  string
		}{"apparmor absent", RunOptions{SecurityOpt: []string{"apparmor=docker-default"}}, nil, errdefs.ErrInvalidArgument, "AppArmor is not enabled"})
	}
	if !facts.selinux {
		tests = append(tests, struct {
			name string
			opts RunOptions
			img  func(*image.Config)
			want error
			msg  string
		}{"selinux absent", RunOptions{SecurityOpt: []string{"label=type:svirt_t"}}, nil, errdefs.ErrInvalidArgument, "SELinux is not enabled"})
	}
	for _, id := range []string{"", "../etc", "a/b", ".hidden"} {
		if _, err := Generate(testImage(), fakeRootfs(t), RunOptions{ID: id}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Generate with ID %q = %v, want ErrInvalidArgument", id, err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := testImage()
			if tt.img != nil {
				tt.img(&img)
			}
			tt.opts.ID = testID
			_, err := Generate(img, fakeRootfs(t), tt.opts)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Generate = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}
