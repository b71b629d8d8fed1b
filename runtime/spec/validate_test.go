package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// validSpec is the default configuration with a root directory that exists.
func validSpec(t *testing.T, rootless bool) *specs.Spec {
	t.Helper()
	s := Default(rootless)
	s.Root.Path = t.TempDir()
	return s
}

func addNS(s *specs.Spec, t specs.LinuxNamespaceType, path string) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
}

func dropNS(s *specs.Spec, t specs.LinuxNamespaceType) {
	var kept []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != t {
			kept = append(kept, ns)
		}
	}
	s.Linux.Namespaces = kept
}

func setNSPath(s *specs.Spec, t specs.LinuxNamespaceType, path string) {
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == t {
			s.Linux.Namespaces[i].Path = path
		}
	}
}

func ptr[T any](v T) *T { return &v }

func manyMappings(n int) []specs.LinuxIDMapping {
	var m []specs.LinuxIDMapping
	for i := 0; i < n; i++ {
		m = append(m, specs.LinuxIDMapping{ContainerID: uint32(i), HostID: uint32(100000 + i), Size: 1})
	}
	return m
}

type validateCase struct {
	name      string
	rootless  bool
	forCreate bool
	mod       func(t *testing.T, s *specs.Spec)
	field     string // the FieldError.Field expected, "" for a valid spec
}

func TestValidate(t *testing.T) {
	userMaps := func(_ *testing.T, s *specs.Spec) {
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}
		addNS(s, specs.UserNamespace, "")
	}
	idmapMount := specs.Mount{Destination: "/data", Type: "none", Source: "/tmp", Options: []string{"rbind", "idmap"}}

	var tests []validateCase
	tests = append(tests, []validateCase{
		{name: "default", forCreate: true},
		{name: "default rootless", rootless: true, forCreate: true},
		{name: "no process, not for create", mod: func(_ *testing.T, s *specs.Spec) { s.Process = nil }},
		{name: "no process for create", forCreate: true, mod: func(_ *testing.T, s *specs.Spec) { s.Process = nil }, field: "process"},

		{name: "version missing", mod: func(_ *testing.T, s *specs.Spec) { s.Version = "" }, field: "ociVersion"},
		{name: "version major 2", mod: func(_ *testing.T, s *specs.Spec) { s.Version = "2.0.0" }, field: "ociVersion"},
		{name: "version not semver", mod: func(_ *testing.T, s *specs.Spec) { s.Version = "1.0" }, field: "ociVersion"},
		{name: "version empty prerelease", mod: func(_ *testing.T, s *specs.Spec) { s.Version = "1.0.2-" }, field: "ociVersion"},
		{name: "version prerelease", mod: func(_ *testing.T, s *specs.Spec) { s.Version = "1.0.2-dev+abc" }},

		{name: "root missing", mod: func(_ *testing.T, s *specs.Spec) { s.Root = nil }, field: "root"},
		{name: "root path missing", mod: func(_ *testing.T, s *specs.Spec) { s.Root.Path = "" }, field: "root.path"},
		{name: "root path absent", mod: func(_ *testing.T, s *specs.Spec) { s.Root.Path += "/nope" }, field: "root.path"},
		{name: "root path a file", mod: func(t *testing.T, s *specs.Spec) {
			s.Root.Path = filepath.Join(s.Root.Path, "file")
			if err := os.WriteFile(s.Root.Path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, field: "root.path"},

		{name: "args empty", mod: func(_ *testing.T, s *specs.Spec) { s.Process.Args = nil }, field: "process.args"},
		{name: "args empty program", mod: func(_ *testing.T, s *specs.Spec) { s.Process.Args = []string{""} }, field: "process.args"},
		{name: "cwd relative", mod: func(_ *testing.T, s *specs.Spec) { s.Process.Cwd = "tmp" }, field: "process.cwd"},
		{name: "env without =", mod: func(_ *testing.T, s *specs.Spec) { s.Process.Env = append(s.Process.Env, "FOO") }, field: "process.env[2]"},
		{name: "env empty name", mod: func(_ *testing.T, s *specs.Spec) { s.Process.Env = []string{"=x"} }, field: "process.env[0]"},
		{name: "env NUL", mod: func(_ *testing.T, s *specs.Spec) { s.Process.Env = []string{"A=x\x00y"} }, field: "process.env[0]"},
		{name: "rlimit unknown", mod: func(_ *testing.T, s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_FOO"})
		}, field: "process.rlimits[1].type"},
		{name: "rlimit twice", mod: func(_ *testing.T, s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, s.Process.Rlimits[0])
		}, field: "process.rlimits[1].type"},
		{name: "rlimit soft above hard", mod: func(_ *testing.T, s *specs.Spec) { s.Process.Rlimits[0].Soft = 2048 }, field: "process.rlimits[0]"},
		{name: "oomScoreAdj too high", mod: func(_ *testing.T, s *specs.Spec) { s.Process.OOMScoreAdj = ptr(1001) }, field: "process.oomScoreAdj"},
		{name: "oomScoreAdj lowest", mod: func(_ *testing.T, s *specs.Spec) { s.Process.OOMScoreAdj = ptr(-1000) }},
		{name: "ioPriority class", mod: func(_ *testing.T, s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: "IOPRIO_CLASS_FAST"}
		}, field: "process.ioPriority.class"},
		{name: "ioPriority priority", mod: func(_ *testing.T, s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 8}
		}, field: "process.ioPriority.priority"},
		{name: "ioPriority valid", mod: func(_ *testing.T, s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE, Priority: 7}
		}},
	}...)
	tests = append(tests, schedulerCases()...)
	tests = append(tests, []validateCase{
		{name: "mount destination missing", mod: func(_ *testing.T, s *specs.Spec) { s.Mounts[0].Destination = "" }, field: "mounts[0].destination"},
		{name: "mount destination relative", mod: func(_ *testing.T, s *specs.Spec) { s.Mounts[0].Destination = "proc" }},
		{name: "mount NUL", mod: func(_ *testing.T, s *specs.Spec) { s.Mounts[1].Source = "tmp\x00fs" }, field: "mounts[1].source"},
		{name: "bind mount without source", mod: func(_ *testing.T, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Options: []string{"rbind"}})
		}, field: "mounts[7].source"},
		{name: "bind type without source", mod: func(_ *testing.T, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind"})
		}, field: "mounts[7].source"},
		{name: "bind mount without type", mod: func(_ *testing.T, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: "/tmp", Options: []string{"bind"}})
		}},
		{name: "mount without type", mod: func(_ *testing.T, s *specs.Spec) { s.Mounts[0].Type = "" }, field: "mounts[0].type"},
		{name: "idmap mount not bind", mod: func(_ *testing.T, s *specs.Spec) {
			s.Mounts[0].Options = []string{"idmap"}
		}, field: "mounts[0]"},
		{name: "idmap mount uid only", mod: func(t *testing.T, s *specs.Spec) {
			userMaps(t, s)
			m := idmapMount
			m.UIDMappings = []specs.LinuxIDMapping{{Size: 1}}
			s.Mounts = append(s.Mounts, m)
		}, field: "mounts[7]"},
		{name: "idmap mount without user namespace", mod: func(_ *testing.T, s *specs.Spec) {
			s.Mounts = append(s.Mounts, idmapMount)
		}, field: "mounts[7].options"},
		{name: "idmap mount zero size", mod: func(_ *testing.T, s *specs.Spec) {
			m := idmapMount
			m.UIDMappings = []specs.LinuxIDMapping{{Size: 0}}
			m.GIDMappings = []specs.LinuxIDMapping{{Size: 1}}
			s.Mounts = append(s.Mounts, m)
		}, field: "mounts[7].uidMappings[0].size"},
		{name: "idmap mount from user namespace", mod: func(t *testing.T, s *specs.Spec) {
			userMaps(t, s)
			s.Mounts = append(s.Mounts, idmapMount)
		}},

		{name: "hook relative path", mod: func(_ *testing.T, s *specs.Spec) {
			s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "true"}}}
		}, field: "hooks.poststop[0].path"},
		{name: "hook zero timeout", mod: func(_ *testing.T, s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true", Timeout: ptr(0)}}}
		}, field: "hooks.createRuntime[0].timeout"},
		{name: "hook env", mod: func(_ *testing.T, s *specs.Spec) {
			s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true", Env: []string{"X"}}}}
		}, field: "hooks.startContainer[0].env[0]"},
		{name: "hooks valid", mod: func(_ *testing.T, s *specs.Spec) {
			s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/true", Timeout: ptr(1)}}}
		}},
		{name: "annotation empty key", mod: func(_ *testing.T, s *specs.Spec) {
			s.Annotations = map[string]string{"": "x"}
		}, field: "annotations"},
		{name: "linux missing", mod: func(_ *testing.T, s *specs.Spec) { s.Linux = nil }, field: "linux"},
	}...)
	tests = append(tests, namespaceCases()...)
	tests = append(tests, mappingCases()...)
	tests = append(tests, sysctlCases()...)
	tests = append(tests, []validateCase{
		{name: "netDevices without network namespace", mod: func(_ *testing.T, s *specs.Spec) {
			dropNS(s, specs.NetworkNamespace)
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {}}
		}, field: "linux.netDevices"},
		{name: "netDevices bad name", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {Name: "a:b"}}
		}, field: "linux.netDevices.eth1.name"},
		{name: "netDevices name too long", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"abcdefghijklmnop": {}}
		}, field: "linux.netDevices"},
		{name: "netDevices valid", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"abcdefghijklmno": {Name: "eth0"}}
		}},
		{name: "device type", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "s"}}
		}, field: "linux.devices[0].type"},
		{name: "device path relative", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "dev/x", Type: "c", Major: 1, Minor: 3}}
		}, field: "linux.devices[0].path"},
		{name: "device fifo", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fifo", Type: "p"}}
		}},
		{name: "masked path relative", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "proc/kcore")
		}, field: "linux.maskedPaths[10]"},
		{name: "readonly path relative", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "proc/sys")
		}, field: "linux.readonlyPaths[5]"},
		{name: "masked paths without mount namespace", mod: func(_ *testing.T, s *specs.Spec) {
			dropNS(s, specs.MountNamespace)
		}, field: "linux.maskedPaths"},
		{name: "rootfsPropagation unknown", mod: func(_ *testing.T, s *specs.Spec) { s.Linux.RootfsPropagation = "rshare" }, field: "linux.rootfsPropagation"},
		{name: "rootfsPropagation rslave", mod: func(_ *testing.T, s *specs.Spec) { s.Linux.RootfsPropagation = "rslave" }},
		{name: "personality domain", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: "LINUX64"}
		}, field: "linux.personality.domain"},
		{name: "personality flags", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32, Flags: []specs.LinuxPersonalityFlag{"ADDR_NO_RANDOMIZE"}}
		}, field: "linux.personality.flags"},
		{name: "personality valid", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
		}},
	}...)
	runValidateCases(t, tests)
}

func runValidateCases(t *testing.T, tests []validateCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec(t, tt.rootless)
			if tt.mod != nil {
				tt.mod(t, s)
			}
			err := Validate(s, tt.forCreate)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want a *FieldError wrapping ErrInvalid", err)
			}
			if fe.Field != tt.field {
				t.Errorf("Validate rejected field %q (%v), want field %q", fe.Field, err, tt.field)
			}
		})
	}
}

func schedulerCases() []validateCase {
	sched := func(sc specs.Scheduler) func(*testing.T, *specs.Spec) {
		return func(_ *testing.T, s *specs.Spec) { s.Process.Scheduler = &sc }
	}
	return []validateCase{
		{name: "scheduler policy missing", mod: sched(specs.Scheduler{}), field: "process.scheduler.policy"},
		{name: "scheduler policy unknown", mod: sched(specs.Scheduler{Policy: "SCHED_FAST"}), field: "process.scheduler.policy"},
		{name: "scheduler policy ISO", mod: sched(specs.Scheduler{Policy: specs.SchedISO}), field: "process.scheduler.policy"},
		{name: "scheduler nice", mod: sched(specs.Scheduler{Policy: specs.SchedBatch, Nice: 20}), field: "process.scheduler.nice"},
		{name: "scheduler priority for other", mod: sched(specs.Scheduler{Policy: specs.SchedOther, Priority: 10}), field: "process.scheduler.priority"},
		{name: "scheduler FIFO without priority", mod: sched(specs.Scheduler{Policy: specs.SchedFIFO}), field: "process.scheduler.priority"},
		{name: "scheduler deadline fields for RR", mod: sched(specs.Scheduler{Policy: specs.SchedRR, Priority: 1, Runtime: 10}), field: "process.scheduler"},
		{name: "scheduler flag", mod: sched(specs.Scheduler{Policy: specs.SchedOther, Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_X"}}), field: "process.scheduler.flags[0]"},
		{name: "scheduler FIFO", mod: sched(specs.Scheduler{Policy: specs.SchedFIFO, Priority: 99})},
		{name: "scheduler deadline", mod: sched(specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 1e6, Deadline: 2e6, Period: 3e6,
			Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}})},
	}
}

func namespaceCases() []validateCase {
	return []validateCase{
		{name: "namespace unknown", mod: func(_ *testing.T, s *specs.Spec) { addNS(s, "net", "") }, field: "linux.namespaces[5].type"},
		{name: "namespace twice", mod: func(_ *testing.T, s *specs.Spec) { addNS(s, specs.PIDNamespace, "") }, field: "linux.namespaces[5].type"},
		{name: "namespace path relative", mod: func(_ *testing.T, s *specs.Spec) {
			setNSPath(s, specs.IPCNamespace, "proc/self/ns/ipc")
		}, field: "linux.namespaces[2].path"},
		{name: "namespace path absent", mod: func(_ *testing.T, s *specs.Spec) {
			setNSPath(s, specs.IPCNamespace, "/proc/self/ns/nope")
		}, field: "linux.namespaces[2].path"},
		{name: "namespace path a regular file", mod: func(t *testing.T, s *specs.Spec) {
			p := filepath.Join(t.TempDir(), "ipc")
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			setNSPath(s, specs.IPCNamespace, p)
		}, field: "linux.namespaces[2].path"},
		{name: "namespace path of another type", mod: func(_ *testing.T, s *specs.Spec) {
			setNSPath(s, specs.IPCNamespace, "/proc/self/ns/net")
		}, field: "linux.namespaces[2].path"},
		{name: "namespace path joined", mod: func(_ *testing.T, s *specs.Spec) {
			for _, ns := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace} {
				setNSPath(s, ns, fmt.Sprintf("/proc/%d/ns/%s", os.Getpid(), procNSName(ns)))
			}
			addNS(s, specs.CgroupNamespace, "/proc/self/ns/cgroup")
			addNS(s, specs.TimeNamespace, "/proc/thread-self/ns/time")
		}},
		{name: "new cgroup and time namespaces", mod: func(_ *testing.T, s *specs.Spec) {
			addNS(s, specs.CgroupNamespace, "")
			addNS(s, specs.TimeNamespace, "")
		}},
		{name: "time offsets without time namespace", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, field: "linux.timeOffsets"},
		{name: "time offsets for a joined time namespace", mod: func(_ *testing.T, s *specs.Spec) {
			addNS(s, specs.TimeNamespace, "/proc/self/ns/time")
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, field: "linux.timeOffsets"},
		{name: "time offsets realtime clock", mod: func(_ *testing.T, s *specs.Spec) {
			addNS(s, specs.TimeNamespace, "")
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"realtime": {Secs: 10}}
		}, field: "linux.timeOffsets.realtime"},
		{name: "time offsets nanoseconds", mod: func(_ *testing.T, s *specs.Spec) {
			addNS(s, specs.TimeNamespace, "")
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Nanosecs: 1e9}}
		}, field: "linux.timeOffsets.boottime.nanosecs"},
		{name: "time offsets valid", mod: func(_ *testing.T, s *specs.Spec) {
			addNS(s, specs.TimeNamespace, "")
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: -5, Nanosecs: 999999999}, "monotonic": {Secs: 86400}}
		}},
		{name: "hostname without uts namespace", mod: func(_ *testing.T, s *specs.Spec) { dropNS(s, specs.UTSNamespace) }, field: "hostname"},
		{name: "domainname without uts namespace", mod: func(_ *testing.T, s *specs.Spec) {
			dropNS(s, specs.UTSNamespace)
			s.Hostname = ""
			s.Domainname = "example.org"
		}, field: "domainname"},
		{name: "no names without uts namespace", mod: func(_ *testing.T, s *specs.Spec) {
			dropNS(s, specs.UTSNamespace)
			s.Hostname = ""
		}},
	}
}

func mappingCases() []validateCase {
	maps := func(uid, gid []specs.LinuxIDMapping) func(*testing.T, *specs.Spec) {
		return func(_ *testing.T, s *specs.Spec) { s.Linux.UIDMappings, s.Linux.GIDMappings = uid, gid }
	}
	one := []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
	return []validateCase{
		{name: "mappings without user namespace", mod: func(_ *testing.T, s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, field: "linux.uidMappings"},
		{name: "new user namespace without uid mappings", rootless: true, mod: maps(nil, one), field: "linux.uidMappings"},
		{name: "new user namespace without gid mappings", rootless: true, mod: maps(one, nil), field: "linux.gidMappings"},
		{name: "joined user namespace without mappings", rootless: true, mod: func(_ *testing.T, s *specs.Spec) {
			maps(nil, nil)(nil, s)
			setNSPath(s, specs.UserNamespace, "/proc/self/ns/user")
		}},
		{name: "mapping zero size", rootless: true, mod: maps(one, []specs.LinuxIDMapping{{HostID: 1000}}), field: "linux.gidMappings[0].size"},
		{name: "mapping beyond 32 bits", rootless: true, mod: maps([]specs.LinuxIDMapping{{HostID: 1 << 31, ContainerID: 0, Size: 1 << 31}, {HostID: 0, ContainerID: 1 << 31, Size: 1<<31 + 1}}, one), field: "linux.uidMappings[1]"},
		{name: "mapping container overlap", rootless: true, mod: maps([]specs.LinuxIDMapping{{HostID: 1000, Size: 10}, {ContainerID: 9, HostID: 5000, Size: 1}}, one), field: "linux.uidMappings[1]"},
		{name: "mapping host overlap", rootless: true, mod: maps(one, []specs.LinuxIDMapping{{HostID: 1000, Size: 10}, {ContainerID: 100, HostID: 1005, Size: 100}}), field: "linux.gidMappings[1]"},
		{name: "mapping too many", rootless: true, mod: maps(manyMappings(maxIDMappings+1), one), field: "linux.uidMappings"},
		{name: "mapping many", rootless: true, mod: maps(manyMappings(maxIDMappings), manyMappings(2))},
	}
}

func sysctlCases() []validateCase {
	sysctl := func(key string, mods ...func(*specs.Spec)) func(*testing.T, *specs.Spec) {
		return func(_ *testing.T, s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{key: "1"}
			for _, m := range mods {
				m(s)
			}
		}
	}
	drop := func(t specs.LinuxNamespaceType) func(*specs.Spec) {
		return func(s *specs.Spec) { dropNS(s, t) }
	}
	return []validateCase{
		{name: "sysctl ipc", mod: sysctl("kernel.shmmax")},
		{name: "sysctl ipc without ipc namespace", mod: sysctl("kernel.shmmax", drop(specs.IPCNamespace)), field: "linux.sysctl.kernel.shmmax"},
		{name: "sysctl mqueue without ipc namespace", mod: sysctl("fs.mqueue.msg_max", drop(specs.IPCNamespace)), field: "linux.sysctl.fs.mqueue.msg_max"},
		{name: "sysctl net", mod: sysctl("net.ipv4.ip_forward")},
		{name: "sysctl net with slashes", mod: sysctl("net/ipv4/conf/eth0.100/rp_filter")},
		{name: "sysctl net without network namespace", mod: sysctl("net.ipv4.ip_forward", drop(specs.NetworkNamespace)), field: "linux.sysctl.net.ipv4.ip_forward"},
		{name: "sysctl net in the runtime's network namespace", mod: sysctl("net.ipv4.ip_forward", func(s *specs.Spec) {
			setNSPath(s, specs.NetworkNamespace, "/proc/self/ns/net")
		}), field: "linux.sysctl.net.ipv4.ip_forward"},
		{name: "sysctl kernel.hostname", mod: sysctl("kernel.hostname"), field: "linux.sysctl.kernel.hostname"},
		{name: "sysctl kernel.domainname", mod: sysctl("kernel.domainname")},
		{name: "sysctl kernel.domainname without uts namespace", mod: sysctl("kernel.domainname", drop(specs.UTSNamespace), func(s *specs.Spec) { s.Hostname = "" }), field: "linux.sysctl.kernel.domainname"},
		{name: "sysctl user without user namespace", mod: sysctl("user.max_user_namespaces"), field: "linux.sysctl.user.max_user_namespaces"},
		{name: "sysctl user", rootless: true, mod: sysctl("user.max_user_namespaces")},
		{name: "sysctl global", mod: sysctl("vm.swappiness"), field: "linux.sysctl.vm.swappiness"},
	}
}

func TestValidateLookupErrors(t *testing.T) {
	s := validSpec(t, false)
	s.Root.Path += "/absent"
	if err := Validate(s, true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Validate with an absent root = %v, want it to wrap fs.ErrNotExist", err)
	}
	s = validSpec(t, false)
	setNSPath(s, specs.IPCNamespace, s.Root.Path)
	if err := Validate(s, true); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("Validate with a directory as namespace path = %v, want an ErrInvalid", err)
	}
}
