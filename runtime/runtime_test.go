package runtime

import (
	"bytes"
	"errors"
	"golang.org/x/sys/unix"
	"os"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "c1", "my-container_1.2+x"} {
		if err := ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "a b", "x\n", "é", "a:b"} {
		if err := ValidateID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestBootstrapJoinsUserFirst(t *testing.T) {
	s := &specs.Spec{Linux: &specs.Linux{
		Namespaces: []specs.LinuxNamespace{
			{Type: specs.NetworkNamespace, Path: "/run/netns/x"},
			{Type: specs.PIDNamespace},
			{Type: specs.UserNamespace, Path: "/proc/1/ns/user"},
			{Type: specs.MountNamespace},
			{Type: specs.TimeNamespace},
		},
		TimeOffsets: map[string]specs.LinuxTimeOffset{"boottime": {Secs: 5, Nanosecs: 7}},
	}}
	b := bootstrapFor(s)
	got := b.encode()
	want := "join user /proc/1/ns/user\njoin network /run/netns/x\nclone 537002112\ntimens boottime 5 7\nend\n"
	if got != want {
		t.Errorf("bootstrap:\n%s\nwant:\n%s", got, want)
	}
}

func TestCgroupResourcesAllowDevices(t *testing.T) {
	deny := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	s := &specs.Spec{Linux: &specs.Linux{
		Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{deny}},
		Devices: []specs.LinuxDevice{
			{Path: "/dev/fifo", Type: "p"},
			{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229},
		},
	}}
	r := cgroupResources(s)
	if len(r.Devices) != 1+len(defaultDeviceRules)+1 || r.Devices[0] != deny {
		t.Fatalf("rules: %+v", r.Devices)
	}
	last := r.Devices[len(r.Devices)-1]
	if !last.Allow || *last.Major != 10 || *last.Minor != 229 || last.Access != "rwm" {
		t.Errorf("linux.devices rule: %+v", last)
	}
	if len(s.Linux.Resources.Devices) != 1 {
		t.Error("the spec's own rules were modified")
	}
}

func TestReadProcStat(t *testing.T) {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.State != 'R' && st.State != 'S' || st.StartTime == 0 {
		t.Errorf("own stat: %+v", st)
	}
	if !alive(os.Getpid(), st.StartTime) || alive(os.Getpid(), st.StartTime+1) {
		t.Error("alive does not tell a reused pid apart")
	}
}

func TestProcessEnvAddsHome(t *testing.T) {
	p := &specs.Process{Env: []string{"PATH=/bin"}, User: specs.User{UID: 4242}}
	env := processEnv(p)
	if strings.Join(env, " ") != "PATH=/bin HOME=/" {
		t.Errorf("env %v", env)
	}
	p.Env = append(p.Env, "HOME=/x")
	if env := processEnv(p); strings.Join(env, " ") != "PATH=/bin HOME=/x" {
		t.Errorf("env %v", env)
	}
}

// Both ways of sealing the runtime binary give a file with the binary's
// content that cannot be written.
func TestSealedExeIsReadOnly(t *testing.T) {
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	for name, seal := range map[string]func() (*os.File, error){"overlay": overlayExe, "memfd": memfdExe} {
		t.Run(name, func(t *testing.T) {
			f, err := seal()
			if err != nil {
				if name == "overlay" && os.Geteuid() != 0 {
					t.Skip("overlay mounts need privilege:", err)
				}
				// Older kernels (Debian's 6.1) refuse a detached mount as
				// an overlay layer; sealedExe then falls back to memfd.
				if name == "overlay" && errors.Is(err, unix.EINVAL) {
					t.Skip("this kernel refuses the detached overlay:", err)
				}
				t.Fatal(err)
			}
			defer f.Close()
			got, err := os.ReadFile("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
			if err != nil || !bytes.Equal(got, self) {
				t.Fatalf("content differs from the binary (%v)", err)
			}
			// The overlay refuses the open (EROFS); the memfd's seals
			// refuse the write.
			if w, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_WRONLY, 0); err == nil {
				_, werr := w.Write([]byte("x"))
				w.Close()
				if werr == nil {
					t.Fatal("wrote to the sealed binary")
				}
			}
		})
	}
}

func BenchmarkSealedExe(b *testing.B) {
	for name, seal := range map[string]func() (*os.File, error){"overlay": overlayExe, "memfd": memfdExe} {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				f, err := seal()
				if err != nil {
					b.Skip(err)
				}
				f.Close()
			}
		})
	}
}

func TestStateKeepsConfigApart(t *testing.T) {
	dir := t.TempDir()
	hooks := &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}}}
	limit := int64(7)
	spec := &specs.Spec{Hooks: hooks, Linux: &specs.Linux{
		Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}},
		Resources:  &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}},
	}}
	s := newSaved(spec)
	s.ID = "c1"
	if err := s.save(dir, true); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(dir + "/" + stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("resources")) {
		t.Errorf("state.json holds the config: %s", data)
	}
	got, err := loadSaved(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.SharedPIDNS || got.Hooks == nil || len(got.Hooks.Poststop) != 1 {
		t.Errorf("loaded state: shared pid ns %v, hooks %+v", got.SharedPIDNS, got.Hooks)
	}
	cfg, err := got.loadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Linux.Resources == nil || *cfg.Linux.Resources.Pids.Limit != 7 {
		t.Errorf("config read back: %+v", cfg.Linux)
	}
}

// A state file written before the config had its own file holds it as
// "config"; such a container is still started, deleted and updated.
func TestStateReadsLegacyConfig(t *testing.T) {
	dir := t.TempDir()
	legacy := `{"id":"c1","pid":1,"config":{"hooks":{"poststart":[{"path":"/bin/true"}]},` +
		`"linux":{"namespaces":[{"type":"mount"}],"resources":{"pids":{"limit":3}}}}}`
	if err := os.WriteFile(dir+"/"+stateFile, []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := loadSaved(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !s.SharedPIDNS || s.Hooks == nil || len(s.Hooks.Poststart) != 1 {
		t.Errorf("legacy state: shared pid ns %v, hooks %+v", s.SharedPIDNS, s.Hooks)
	}
	// The next save moves the config to its own file.
	if err := s.save(dir, false); err != nil {
		t.Fatal(err)
	}
	s, err = loadSaved(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.legacy || s.spec != nil {
		t.Error("state.json still holds the config after a save")
	}
	cfg, err := s.loadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Linux.Resources == nil || *cfg.Linux.Resources.Pids.Limit != 3 {
		t.Errorf("config moved to its own file: %+v", cfg.Linux.Resources)
	}
}

func TestUserName(t *testing.T) {
	passwd := t.TempDir() + "/passwd"
	data := "root:x:0:0:root:/root:/bin/sh\n#x:x:5:5::/:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n"
	if err := os.WriteFile(passwd, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for uid, want := range map[string]string{"0": "root", "1000": "bob", "5": "", "7": ""} {
		if got := userName(passwd, uid); got != want {
			t.Errorf("userName(%s) = %q, want %q", uid, got, want)
		}
	}
}

func TestInitSpecKeepsWhatTheInitUses(t *testing.T) {
	s := &specs.Spec{
		Process:  &specs.Process{Args: []string{"sh"}},
		Hostname: "h",
		Linux: &specs.Linux{
			Resources:   &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			MaskedPaths: []string{"/proc/kcore"},
			Seccomp: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno,
				Flags:         []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_LOG"},
				ListenerPath:  "/run/agent.sock",
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read"}, Action: specs.ActAllow},
					{Names: []string{"mkdir"}, Action: specs.ActNotify},
				},
			},
		},
	}
	got := initSpec(s, true)
	if got.Process != nil || got.Linux.Resources != nil {
		t.Errorf("process %v, resources %v: want neither", got.Process, got.Linux.Resources)
	}
	if got.Hostname != "h" || len(got.Linux.MaskedPaths) != 1 {
		t.Errorf("lost what the init uses: %+v", got)
	}
	sc := got.Linux.Seccomp
	if sc.ListenerPath != "/run/agent.sock" || len(sc.Flags) != 1 || len(sc.Syscalls) != 1 || sc.Syscalls[0].Action != specs.ActNotify {
		t.Errorf("seccomp for the init: %+v", sc)
	}
	if s.Process == nil || s.Linux.Resources == nil || len(s.Linux.Seccomp.Syscalls) != 2 {
		t.Error("initSpec changed the spec it was given")
	}
	// Without a built program the init builds the filter: all rules go.
	if n := len(initSpec(s, false).Linux.Seccomp.Syscalls); n != 2 {
		t.Errorf("without a program: %d rules, want 2", n)
	}
}
