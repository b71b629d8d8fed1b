package caps

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"berth.dev/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The tests that change capabilities do it in a child: the test binary
// re-executed with childEnv naming what to do, since a process cannot win
// back a capability it dropped.
const (
	childEnv     = "BERTH_CAPS_TEST_CHILD"
	childSpecEnv = "BERTH_CAPS_TEST_SPEC"
	childPortEnv = "BERTH_CAPS_TEST_PORT"
	childUID     = 1000
)

// childReport is what a child prints as its first line of output.
type childReport struct {
	Err     string                   // error of DropBounding or Apply
	Before  map[string]uint64        // Cap* lines of the thread's status before
	After   map[string]uint64        // and after
	Current *specs.LinuxCapabilities // Current() after
	Bind    string                   // errno of binding a privileged port, "" if it worked
}

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "apply":
		runApplyChild(false)
	case "setuid":
		runApplyChild(true)
	case "redrop":
		runRedropChild()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

// runApplyChild applies the sets of childSpecEnv, as uid childUID if
// setuid, prints a childReport and, if setuid, execs busybox to show the
// capability sets after execve.
func runApplyChild(setuid bool) {
	runtime.LockOSThread()
	var c specs.LinuxCapabilities
	if err := json.Unmarshal([]byte(os.Getenv(childSpecEnv)), &c); err != nil {
		fatal(err)
	}
	var r childReport
	r.Before = threadCaps()
	if err := applySteps(&c, setuid); err != nil {
		r.Err = err.Error()
	}
	r.After = threadCaps()
	cur, err := Current()
	if err != nil {
		fatal(err)
	}
	r.Current = cur
	if port := os.Getenv(childPortEnv); port != "" {
		r.Bind = bindLoopback(port)
	}
	b, _ := json.Marshal(r)
	os.Stdout.Write(append(b, '\n'))
	if !setuid || r.Err != "" {
		os.Exit(0)
	}
	argv := []string{"busybox", "sh", "-c", "grep Cap /proc/self/status; id -u"}
	fatal(syscall.Exec("/bin/busybox", argv, []string{"PATH=/bin"}))
}

// runRedropChild applies the sets of childSpecEnv (whose effective set
// lacks CAP_SETPCAP), then drops the bounding set again: to the same set,
// which must work without CAP_SETPCAP (nothing is left to drop), and to
// one without CAP_KILL, which must not. The report's Err holds the two
// outcomes.
func runRedropChild() {
	runtime.LockOSThread()
	var c specs.LinuxCapabilities
	if err := json.Unmarshal([]byte(os.Getenv(childSpecEnv)), &c); err != nil {
		fatal(err)
	}
	if err := applySteps(&c, false); err != nil {
		fatal(err)
	}
	var r childReport
	same := DropBounding(c.Bounding)
	var fewer []string
	for _, n := range c.Bounding {
		if n != "CAP_KILL" {
			fewer = append(fewer, n)
		}
	}
	r.Err = fmt.Sprintf("same=%v fewer=%v", same, DropBounding(fewer) != nil)
	b, _ := json.Marshal(r)
	os.Stdout.Write(append(b, '\n'))
	os.Exit(0)
}

// Regression: DropBounding drops without reading each capability first;
// a capability already gone must still not need CAP_SETPCAP, and one
// that is there must still be refused without it.
func TestDropBoundingWithoutSetpcap(t *testing.T) {
	testutil.RequiresRoot(t)
	set := []string{"CAP_KILL", "CAP_CHOWN"}
	r, _ := runChild(t, "redrop", &specs.LinuxCapabilities{
		Bounding: set, Permitted: set, Effective: set,
	}, 0)
	if r.Err != "same=<nil> fewer=true" {
		t.Errorf("drops without CAP_SETPCAP: %s, want same=<nil> fewer=true", r.Err)
	}
}

// applySteps runs the three steps DropBounding documents.
func applySteps(c *specs.LinuxCapabilities, setuid bool) error {
	if err := DropBounding(c.Bounding); err != nil {
		return err
	}
	if setuid {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return err
		}
		if err := unix.Setgroups(nil); err != nil {
			return err
		}
		if err := unix.Setresgid(childUID, childUID, childUID); err != nil {
			return err
		}
		if err := unix.Setresuid(childUID, childUID, childUID); err != nil {
			return err
		}
	}
	return Apply(c)
}

// bindLoopback binds a TCP socket to 127.0.0.1:port and returns the errno
// name of the failure, or "" if bind worked. No connection is made.
func bindLoopback(port string) string {
	p, err := strconv.Atoi(port)
	if err != nil {
		fatal(err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fatal(err)
	}
	defer unix.Close(fd)
	err = unix.Bind(fd, &unix.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}})
	var errno unix.Errno
	switch {
	case err == nil:
		return ""
	case errors.As(err, &errno):
		// EADDRINUSE comes after the kernel's permission check: allowed.
		if errno == unix.EADDRINUSE {
			return ""
		}
		return unix.ErrnoName(errno)
	default:
		return err.Error()
	}
}

// threadCaps reads the Cap* lines of the calling thread's status: the
// sets are per thread, and /proc/self/status shows the main thread's.
func threadCaps() map[string]uint64 {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		fatal(err)
	}
	m, err := parseCapLines(b)
	if err != nil {
		fatal(err)
	}
	return m
}

// parseCapLines returns the masks of the "CapXxx:\t<hex>" lines of b.
func parseCapLines(b []byte) (map[string]uint64, error) {
	m := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(k, "Cap") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("status line %q: %w", sc.Text(), err)
		}
		m[k] = n
	}
	return m, sc.Err()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// runChild runs the test binary as a child in mode with c, and returns its
// report and the rest of its output.
func runChild(t *testing.T, mode string, c *specs.LinuxCapabilities, port int) (childReport, string) {
	t.Helper()
	spec, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childSpecEnv+"="+string(spec))
	if port > 0 {
		cmd.Env = append(cmd.Env, childPortEnv+"="+strconv.Itoa(port))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s: %v\nstdout: %s\nstderr: %s", mode, err, out, stderr.Bytes())
	}
	first, rest, _ := bytes.Cut(out, []byte("\n"))
	var r childReport
	if err := json.Unmarshal(first, &r); err != nil {
		t.Fatalf("child %s report %q: %v", mode, first, err)
	}
	return r, string(rest)
}

func names(n ...string) []string { return n }

// statusMasks are the expected Cap* lines of a status file.
type statusMasks struct{ inh, prm, eff, bnd, amb uint64 }

func (m statusMasks) check(t *testing.T, what string, got map[string]uint64) {
	t.Helper()
	want := map[string]uint64{"CapInh": m.inh, "CapPrm": m.prm, "CapEff": m.eff, "CapBnd": m.bnd, "CapAmb": m.amb}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: no %s line", what, k)
		} else if g != w {
			t.Errorf("%s: %s = %#x, want %#x", what, k, g, w)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		want int
	}{
		{"CAP_CHOWN", unix.CAP_CHOWN},
		{"CAP_DAC_OVERRIDE", unix.CAP_DAC_OVERRIDE},
		{"CAP_DAC_READ_SEARCH", unix.CAP_DAC_READ_SEARCH},
		{"CAP_FOWNER", unix.CAP_FOWNER},
		{"CAP_FSETID", unix.CAP_FSETID},
		{"CAP_KILL", unix.CAP_KILL},
		{"CAP_SETGID", unix.CAP_SETGID},
		{"CAP_SETUID", unix.CAP_SETUID},
		{"CAP_SETPCAP", unix.CAP_SETPCAP},
		{"CAP_LINUX_IMMUTABLE", unix.CAP_LINUX_IMMUTABLE},
		{"CAP_NET_BIND_SERVICE", unix.CAP_NET_BIND_SERVICE},
		{"CAP_NET_BROADCAST", unix.CAP_NET_BROADCAST},
		{"CAP_NET_ADMIN", unix.CAP_NET_ADMIN},
		{"CAP_NET_RAW", unix.CAP_NET_RAW},
		{"CAP_IPC_LOCK", unix.CAP_IPC_LOCK},
		{"CAP_IPC_OWNER", unix.CAP_IPC_OWNER},
		{"CAP_SYS_MODULE", unix.CAP_SYS_MODULE},
		{"CAP_SYS_RAWIO", unix.CAP_SYS_RAWIO},
		{"CAP_SYS_CHROOT", unix.CAP_SYS_CHROOT},
		{"CAP_SYS_PTRACE", unix.CAP_SYS_PTRACE},
		{"CAP_SYS_PACCT", unix.CAP_SYS_PACCT},
		{"CAP_SYS_ADMIN", unix.CAP_SYS_ADMIN},
		{"CAP_SYS_BOOT", unix.CAP_SYS_BOOT},
		{"CAP_SYS_NICE", unix.CAP_SYS_NICE},
		{"CAP_SYS_RESOURCE", unix.CAP_SYS_RESOURCE},
		{"CAP_SYS_TIME", unix.CAP_SYS_TIME},
		{"CAP_SYS_TTY_CONFIG", unix.CAP_SYS_TTY_CONFIG},
		{"CAP_MKNOD", unix.CAP_MKNOD},
		{"CAP_LEASE", unix.CAP_LEASE},
		{"CAP_AUDIT_WRITE", unix.CAP_AUDIT_WRITE},
		{"CAP_AUDIT_CONTROL", unix.CAP_AUDIT_CONTROL},
		{"CAP_SETFCAP", unix.CAP_SETFCAP},
		{"CAP_MAC_OVERRIDE", unix.CAP_MAC_OVERRIDE},
		{"CAP_MAC_ADMIN", unix.CAP_MAC_ADMIN},
		{"CAP_SYSLOG", unix.CAP_SYSLOG},
		{"CAP_WAKE_ALARM", unix.CAP_WAKE_ALARM},
		{"CAP_BLOCK_SUSPEND", unix.CAP_BLOCK_SUSPEND},
		{"CAP_AUDIT_READ", unix.CAP_AUDIT_READ},
		{"CAP_PERFMON", unix.CAP_PERFMON},
		{"CAP_BPF", unix.CAP_BPF},
		{"CAP_CHECKPOINT_RESTORE", unix.CAP_CHECKPOINT_RESTORE},
		{"", -1},
		{"CAP_", -1},
		{"CHOWN", -1},
		{"cap_chown", -1},
		{"CAP_chown", -1},
		{" CAP_CHOWN", -1},
		{"CAP_FLY", -1},
		{"CAP_41", -1},
	} {
		got, err := Parse(tc.name)
		if tc.want < 0 {
			if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), strconv.Quote(tc.name)) {
				t.Errorf("Parse(%q) = %v, %v; want an ErrUnknown naming it", tc.name, got, err)
			}
			continue
		}
		if err != nil || int(got) != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.name, got, err, tc.want)
		}
		if got.String() != tc.name {
			t.Errorf("Cap(%d).String() = %q, want %q", got, got.String(), tc.name)
		}
	}
	if got := Cap(63).String(); got != "CAP_63" {
		t.Errorf("Cap(63).String() = %q, want CAP_63", got)
	}
}

func TestKnownFollowsKernel(t *testing.T) {
	last, err := Last()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(b)); strconv.Itoa(int(last)) != want {
		t.Fatalf("Last() = %d, /proc says %s", last, want)
	}
	known := Known()
	if want := min(int(last), int(MaxKnown)) + 1; len(known) != want {
		t.Fatalf("Known() has %d names, want %d", len(known), want)
	}
	for i, n := range known {
		if c, err := Parse(n); err != nil || int(c) != i {
			t.Errorf("Known()[%d] = %q parses as %d, %v", i, n, c, err)
		}
	}
}

func TestCurrentMatchesStatus(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	status := threadCaps()
	for _, f := range []struct {
		line  string
		names []string
	}{
		{"CapInh", cur.Inheritable},
		{"CapPrm", cur.Permitted},
		{"CapEff", cur.Effective},
		{"CapBnd", cur.Bounding},
		{"CapAmb", cur.Ambient},
	} {
		m, err := parseSet(f.names, 63, f.line)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(m) != status[f.line] {
			t.Errorf("Current() %s = %v (%#x), status says %#x", f.line, f.names, uint64(m), status[f.line])
		}
	}
}

func TestValidate(t *testing.T) {
	two := names("CAP_CHOWN", "CAP_NET_BIND_SERVICE")
	for _, tc := range []struct {
		name    string
		c       *specs.LinuxCapabilities
		wantErr string // "" if valid
	}{
		{"nil", nil, ""},
		{"empty", &specs.LinuxCapabilities{}, ""},
		{"all sets", &specs.LinuxCapabilities{Bounding: two, Effective: two, Inheritable: two, Permitted: two, Ambient: two}, ""},
		{"unknown bounding", &specs.LinuxCapabilities{Bounding: names("CAP_CHOWN", "CAP_FLY")}, `capabilities.bounding: unknown capability "CAP_FLY"`},
		{"unknown effective", &specs.LinuxCapabilities{Effective: names("chown")}, `capabilities.effective: unknown capability "chown"`},
		{"unknown inheritable", &specs.LinuxCapabilities{Inheritable: names("")}, `capabilities.inheritable: unknown capability ""`},
		{"unknown permitted", &specs.LinuxCapabilities{Permitted: names("NET_ADMIN")}, `capabilities.permitted: unknown capability "NET_ADMIN"`},
		{"unknown ambient", &specs.LinuxCapabilities{Ambient: names("CAP_X")}, `capabilities.ambient: unknown capability "CAP_X"`},
		{"effective not permitted", &specs.LinuxCapabilities{Effective: two, Permitted: names("CAP_CHOWN")}, "capabilities.effective: CAP_NET_BIND_SERVICE not in the permitted set"},
		{"ambient not inheritable", &specs.LinuxCapabilities{Permitted: two, Ambient: names("CAP_CHOWN")}, "capabilities.ambient: CAP_CHOWN not in both"},
		{"ambient not permitted", &specs.LinuxCapabilities{Inheritable: two, Ambient: two}, "capabilities.ambient: CAP_CHOWN, CAP_NET_BIND_SERVICE not in both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.c)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestApplyAsRoot(t *testing.T) {
	testutil.RequiresRoot(t)
	two := names("CAP_CHOWN", "CAP_NET_BIND_SERVICE")
	for _, tc := range []struct {
		name string
		c    *specs.LinuxCapabilities
		want statusMasks
	}{
		{
			name: "two caps in every set",
			c:    &specs.LinuxCapabilities{Bounding: two, Effective: two, Inheritable: two, Permitted: two, Ambient: two},
			want: statusMasks{inh: 0x401, prm: 0x401, eff: 0x401, bnd: 0x401, amb: 0x401},
		},
		{
			name: "nested subsets",
			c: &specs.LinuxCapabilities{
				Bounding:    names("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
				Permitted:   names("CAP_CHOWN", "CAP_KILL"),
				Effective:   names("CAP_KILL"),
				Inheritable: names("CAP_CHOWN"),
			},
			want: statusMasks{inh: 0x1, prm: 0x21, eff: 0x20, bnd: 0x421},
		},
		{
			name: "high capabilities",
			c: &specs.LinuxCapabilities{
				Bounding:  names("CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE"),
				Permitted: names("CAP_BPF", "CAP_CHECKPOINT_RESTORE"),
				Effective: names("CAP_CHECKPOINT_RESTORE"),
			},
			want: statusMasks{prm: 1<<39 | 1<<40, eff: 1 << 40, bnd: 1<<21 | 1<<40},
		},
		{
			name: "nothing",
			c:    &specs.LinuxCapabilities{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := runChild(t, "apply", tc.c, 0)
			if r.Err != "" {
				t.Fatalf("child: %s", r.Err)
			}
			tc.want.check(t, "status", r.After)
			for _, f := range []struct {
				set       string
				got, want []string
			}{
				{"bounding", r.Current.Bounding, tc.c.Bounding},
				{"effective", r.Current.Effective, tc.c.Effective},
				{"inheritable", r.Current.Inheritable, tc.c.Inheritable},
				{"permitted", r.Current.Permitted, tc.c.Permitted},
				{"ambient", r.Current.Ambient, tc.c.Ambient},
			} {
				if len(f.got) != 0 || len(f.want) != 0 {
					if !slices.Equal(f.got, f.want) {
						t.Errorf("Current() %s = %v, want %v", f.set, f.got, f.want)
					}
				}
			}
		})
	}
}

// TestApplyBadNameChangesNothing checks that an unknown name is refused
// before any set is touched, by DropBounding and by Apply (whose bounding
// step keeps every capability here, so it changes nothing either).
func TestApplyBadNameChangesNothing(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, c := range []*specs.LinuxCapabilities{
		{Bounding: names("CAP_CHOWN", "CAP_NOPE")},
		{Bounding: Known(), Permitted: names("CAP_CHOWN"), Ambient: names("CAP_NOPE")},
		{Bounding: Known(), Effective: names("CAP_NOPE")},
	} {
		r, _ := runChild(t, "apply", c, 0)
		if !strings.Contains(r.Err, `unknown capability "CAP_NOPE"`) {
			t.Errorf("child error = %q, want one naming CAP_NOPE", r.Err)
		}
		for k, v := range r.Before {
			if r.After[k] != v {
				t.Errorf("%s changed from %#x to %#x despite the error", k, v, r.After[k])
			}
		}
	}
}

// TestSwitchUser runs the three steps as a container init does for a
// non-root user and checks what the user keeps, in the Go process and in the
// program it execs.
func TestSwitchUser(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox")
	}
	port := privilegedPort(t)
	nbs := names("CAP_NET_BIND_SERVICE")
	for _, tc := range []struct {
		name     string
		c        *specs.LinuxCapabilities
		inGo     statusMasks
		bind     string // errno of the bind, "" if allowed
		afterExe statusMasks
	}{
		{
			name:     "ambient survives execve",
			c:        &specs.LinuxCapabilities{Bounding: nbs, Effective: nbs, Permitted: nbs, Inheritable: nbs, Ambient: nbs},
			inGo:     statusMasks{inh: 0x400, prm: 0x400, eff: 0x400, bnd: 0x400, amb: 0x400},
			afterExe: statusMasks{inh: 0x400, prm: 0x400, eff: 0x400, bnd: 0x400, amb: 0x400},
		},
		{
			name:     "without ambient execve drops it",
			c:        &specs.LinuxCapabilities{Bounding: nbs, Effective: nbs, Permitted: nbs},
			inGo:     statusMasks{prm: 0x400, eff: 0x400, bnd: 0x400},
			afterExe: statusMasks{bnd: 0x400},
		},
		{
			name:     "permitted only is not effective",
			c:        &specs.LinuxCapabilities{Bounding: nbs, Permitted: nbs},
			inGo:     statusMasks{prm: 0x400, bnd: 0x400},
			bind:     "EACCES",
			afterExe: statusMasks{bnd: 0x400},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, rest := runChild(t, "setuid", tc.c, port)
			if r.Err != "" {
				t.Fatalf("child: %s", r.Err)
			}
			tc.inGo.check(t, "after setuid", r.After)
			if r.Bind != tc.bind {
				t.Errorf("bind 127.0.0.1:%d as uid %d: got %q, want %q", port, childUID, r.Bind, tc.bind)
			}
			exe, err := parseCapLines([]byte(rest))
			if err != nil {
				t.Fatal(err)
			}
			tc.afterExe.check(t, "after execve", exe)
			if !strings.HasSuffix(strings.TrimSpace(rest), "\n"+strconv.Itoa(childUID)) {
				t.Errorf("exec'd program does not run as uid %d:\n%s", childUID, rest)
			}
		})
	}
}

// privilegedPort returns a port that needs CAP_NET_BIND_SERVICE.
func privilegedPort(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Skip(err)
	}
	start, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if start < 2 {
		t.Skip("every port is unprivileged on this host")
	}
	return start - 1
}
