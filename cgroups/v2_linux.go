package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The v2 driver: one directory in the unified hierarchy. Controllers are
// enabled top-down through cgroup.subtree_control; processes only ever go
// into the leaf (the kernel's no-internal-process rule). Device rules are
// an eBPF program, not a controller.

// v2Controller drives one v2 controller (or, for devices, one feature)
// inside the container's cgroup.
type v2Controller interface {
	// Name is the controller's name in cgroup.controllers, or "" for a
	// feature that needs no controller.
	Name() string
	// Wants reports whether r asks for anything this controller sets.
	Wants(r *specs.LinuxResources) bool
	// Set writes the parts of r this controller handles into dir. r is
	// validated and the controller is enabled.
	Set(dir string, r *specs.LinuxResources) error
	// Stat adds the controller's usage figures to s.
	Stat(dir string, s *Stats) error
}

// v2Controllers lists the controllers in the order Set applies them.
func v2Controllers() []v2Controller {
	return []v2Controller{
		v2Cpuset{}, v2CPU{}, v2Memory{}, v2IO{}, v2Pids{}, v2Hugetlb{}, v2Rdma{}, v2Devices{},
	}
}

// v2Enableable lists the controllers Apply enables along the path when
// the parent offers them.
func v2Enableable() []string {
	return []string{"cpuset", "cpu", "io", "memory", "pids", "hugetlb", "rdma", "misc"}
}

type v2Manager struct {
	// path is the cgroup's path in the hierarchy ("/a/b").
	path string
	// root is the cgroup2 mount point.
	root string
	dir  string
	// enable is false when Apply must not write cgroup.subtree_control.
	enable bool
}

func newV2(path string, cfg config) (*v2Manager, error) {
	p := path
	if !filepath.IsAbs(path) {
		self, err := readProcSelfCgroup(cfg)
		if err != nil {
			return nil, fmt.Errorf("resolve relative cgroup path %q: %w", path, err)
		}
		base, ok := self[""]
		if !ok {
			return nil, fmt.Errorf("resolve relative cgroup path %q: /proc/self/cgroup has no v2 (0::) entry", path)
		}
		p = filepath.Join(base, path)
	}
	return &v2Manager{path: p, root: cfg.mountRoot, dir: filepath.Join(cfg.mountRoot, p), enable: !cfg.skipEnable}, nil
}

func (m *v2Manager) Apply(pid int) error {
	if pid == 0 || pid < -1 {
		return fmt.Errorf("%w: apply cgroup %s: pid %d", ErrInvalid, m.path, pid)
	}
	created, err := mkdirPath(m.root, m.path)
	if err == nil && m.enable {
		err = m.enableControllers()
	}
	if err == nil && pid != -1 {
		err = writePid(m.dir, pid)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("apply cgroup %s: %w", m.path, err), removeDirs(created))
	}
	return nil
}

// Dir returns the cgroup's directory. A process started with
// clone3(CLONE_INTO_CGROUP) on a descriptor of it is born inside the
// cgroup, with no migration (and none of the global lock a migration
// takes). The cgroup must exist (Apply(-1)).
func (m *v2Manager) Dir() string { return m.dir }

// enableControllers enables, in every cgroup from the root down to the
// leaf's parent, the controllers that cgroup offers (cgroup.controllers)
// and has not enabled yet. A controller the kernel refuses to enable
// (processes in that cgroup, realtime tasks for cpu) is skipped: Set
// reports ErrUnsupported if a resource needs it.
func (m *v2Manager) enableControllers() error {
	dir := m.root
	for _, elem := range strings.Split(strings.Trim(m.path, "/"), "/") {
		if err := enableSubtree(dir); err != nil {
			return err
		}
		dir = filepath.Join(dir, elem)
	}
	return nil
}

func enableSubtree(dir string) error {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return ignoreMissing(err)
	}
	enabled, err := readFile(dir, "cgroup.subtree_control")
	if err != nil {
		return ignoreMissing(err)
	}
	offered := fieldSet(avail)
	on := fieldSet(enabled)
	var want []string
	for _, c := range v2Enableable() {
		if offered[c] && !on[c] {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if writeFile(dir, "cgroup.subtree_control", strings.Join(want, " ")) == nil {
		return nil
	}
	for _, c := range want {
		_ = writeFile(dir, "cgroup.subtree_control", c)
	}
	return nil
}

func fieldSet(s string) map[string]bool {
	out := make(map[string]bool)
	for _, f := range strings.Fields(s) {
		out[f] = true
	}
	return out
}

func (m *v2Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := ValidateResources(r); err != nil {
		return err
	}
	if err := v2Unsupported(r); err != nil {
		return err
	}
	if err := checkDir(m.dir); err != nil {
		return err
	}
	if err := m.checkControllers(r); err != nil {
		return err
	}
	for _, c := range v2Controllers() {
		if c.Wants(r) {
			if err := c.Set(m.dir, r); err != nil {
				return fmt.Errorf("cgroup %s: %s: %w", m.path, c.Name(), err)
			}
		}
	}
	return setUnified(m.dir, r.Unified)
}

// checkControllers fails with ErrUnsupported if r needs a controller the
// cgroup does not have, including those named by unified keys
// ("memory.high" needs memory; "cgroup.*" needs none).
func (m *v2Manager) checkControllers(r *specs.LinuxResources) error {
	text, err := readFile(m.dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	avail := fieldSet(text)
	for _, c := range v2Controllers() {
		if c.Wants(r) && c.Name() != "" && !avail[c.Name()] {
			return fmt.Errorf("%w: resources for the %s controller are set, but it is not enabled for cgroup %s", ErrUnsupported, c.Name(), m.path)
		}
	}
	for k := range r.Unified {
		ctrl, _, _ := strings.Cut(k, ".")
		if ctrl != "cgroup" && !avail[ctrl] {
			return fmt.Errorf("%w: unified key %q needs the %s controller, which is not enabled for cgroup %s", ErrUnsupported, k, ctrl, m.path)
		}
	}
	return nil
}

// v2Unsupported rejects v1-only resources that v2 cannot express.
func v2Unsupported(r *specs.LinuxResources) error {
	var what []string
	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		what = append(what, "network classID/priorities (no net_cls/net_prio in v2)")
	}
	if c := r.CPU; c != nil && (value(c.RealtimeRuntime) != 0 || value(c.RealtimePeriod) != 0) {
		what = append(what, "cpu realtimeRuntime/realtimePeriod")
	}
	if m := r.Memory; m != nil {
		if m.Swappiness != nil {
			what = append(what, "memory swappiness")
		}
		if value(m.DisableOOMKiller) {
			what = append(what, "memory disableOOMKiller")
		}
	}
	if b := r.BlockIO; b != nil {
		leaf := value(b.LeafWeight) != 0
		for _, d := range b.WeightDevice {
			leaf = leaf || d.LeafWeight != nil
		}
		if leaf {
			what = append(what, "blockIO leafWeight")
		}
	}
	if len(what) > 0 {
		return fmt.Errorf("%w: cgroup v2 has no equivalent of %s", ErrUnsupported, strings.Join(what, ", "))
	}
	return nil
}

// setUnified writes linux.resources.unified verbatim, in key order. Keys
// are validated file names; a file that does not exist is ErrUnsupported.
func setUnified(dir string, unified map[string]string) error {
	keys := make([]string, 0, len(unified))
	for k := range unified {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := setValue(dir, k, unified[k]); err != nil {
			return fmt.Errorf("unified: %w", err)
		}
	}
	return nil
}

func (m *v2Manager) Freeze(state FreezerState) error {
	return freezeV2(m.dir, state)
}

func (m *v2Manager) FreezerState() (FreezerState, error) {
	return freezerStateV2(m.dir)
}

func (m *v2Manager) Pids() ([]int, error) {
	return walkProcs(m.dir)
}

// Kill uses cgroup.kill (Linux 5.14) for SIGKILL: the kernel kills every
// process in the subtree at once, forks included. Otherwise, and for
// other signals, it lists the processes and signals them, with the cgroup
// frozen for SIGKILL so nothing can fork meanwhile.
func (m *v2Manager) Kill(sig int) error {
	s := unix.Signal(sig)
	if err := checkDir(m.dir); err != nil {
		return err
	}
	if s == unix.SIGKILL && fileExists(m.dir, "cgroup.kill") {
		if err := writeFile(m.dir, "cgroup.kill", "1"); err != nil {
			return fmt.Errorf("kill cgroup %s: %w", m.path, err)
		}
		return nil
	}
	frozen := s == unix.SIGKILL && m.Freeze(Frozen) == nil
	pids, err := m.Pids()
	if err == nil {
		err = signalAll(pids, s)
	}
	if frozen {
		// Gone already (the killed processes reaped, their cgroup
		// removed): nothing is left to thaw.
		if thawErr := m.Freeze(Thawed); !errors.Is(thawErr, fs.ErrNotExist) {
			err = errors.Join(err, thawErr)
		}
	}
	return err
}

func (m *v2Manager) Stats() (*Stats, error) {
	if err := checkDir(m.dir); err != nil {
		return nil, err
	}
	s := &Stats{Hugetlb: make(map[string]HugetlbStats)}
	for _, c := range v2Controllers() {
		if err := c.Stat(m.dir, s); err != nil {
			return nil, fmt.Errorf("cgroup %s: %s stats: %w", m.path, c.Name(), err)
		}
	}
	return s, nil
}

func (m *v2Manager) OOMKillCount() (uint64, error) {
	return oomKillCountV2(m.dir)
}

func (m *v2Manager) OOMEvents(ctx context.Context) (<-chan struct{}, error) {
	return oomEventsV2(ctx, m.dir)
}

func (m *v2Manager) Destroy() error {
	if err := removeCgroup(m.dir, time.Now().Add(destroyTimeout)); err != nil {
		return fmt.Errorf("destroy cgroup %s: %w", m.path, err)
	}
	return nil
}

func (m *v2Manager) Path(controller string) string {
	if controller != "" {
		return ""
	}
	return m.path
}

func (m *v2Manager) Paths() map[string]string {
	return map[string]string{"": m.dir}
}
