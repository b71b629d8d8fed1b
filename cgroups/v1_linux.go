package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The v1 driver: one directory per mounted hierarchy. Controllers that
// share a mount (cpu,cpuacct) share the directory. Each controller's
// resource logic lives in its own v1_<controller>_linux.go file.

// v1Controller drives one v1 controller inside the container's cgroup.
type v1Controller interface {
	// Name is the controller's name as the kernel spells it in
	// /proc/cgroups and in mount options ("cpu", "net_cls").
	Name() string
	// Wants reports whether r asks for anything this controller sets.
	// Set fails with ErrUnsupported if it does and the controller is not
	// mounted.
	Wants(r *specs.LinuxResources) bool
	// Set writes the parts of r this controller handles into dir, the
	// cgroup's directory in the controller's hierarchy. r is validated.
	Set(dir string, r *specs.LinuxResources) error
	// Stat adds the controller's usage figures to s. Files a kernel does
	// not have are skipped.
	Stat(dir string, s *Stats) error
}

// v1Controllers lists every controller the driver knows, in the order Set
// applies them.
func v1Controllers() []v1Controller {
	return []v1Controller{
		v1Cpuset{}, v1Devices{}, v1Memory{}, v1CPU{}, v1Cpuacct{}, v1Pids{},
		v1Blkio{}, v1Hugetlb{}, v1NetCls{}, v1NetPrio{}, v1Rdma{},
		v1Freezer{}, joinOnly("perf_event"), joinOnly("misc"),
	}
}

// joinOnly is a controller the container joins but whose settings the
// spec does not cover.
type joinOnly string

func (j joinOnly) Name() string                          { return string(j) }
func (joinOnly) Wants(*specs.LinuxResources) bool        { return false }
func (joinOnly) Set(string, *specs.LinuxResources) error { return nil }
func (joinOnly) Stat(string, *Stats) error               { return nil }

// v1Hierarchy is one mounted hierarchy and where the cgroup sits in it.
type v1Hierarchy struct {
	controllers []string
	// mountPoint is where the hierarchy is mounted.
	mountPoint string
	// mountRoot is the cgroup that appears at mountPoint ("/" unless the
	// mount is a bind of a sub-cgroup, as in some containers).
	mountRoot string
	// path is the cgroup's path in the hierarchy (as in /proc/pid/cgroup).
	path string
}

// dir is the cgroup's directory.
func (h v1Hierarchy) dir() string {
	return filepath.Join(h.mountPoint, h.relToMount(h.path))
}

// relToMount turns a hierarchy path into one relative to the mount point.
func (h v1Hierarchy) relToMount(p string) string {
	if h.mountRoot == "/" {
		return p
	}
	return strings.TrimPrefix(p, h.mountRoot)
}

type v1Manager struct {
	path string
	// byController maps each mounted controller to its hierarchy.
	byController map[string]v1Hierarchy
	// hierarchies holds each distinct hierarchy once, sorted by directory.
	hierarchies []v1Hierarchy
	controllers []v1Controller
}

func newV1(path string, cfg config) (*v1Manager, error) {
	mounts, err := v1Mounts(cfg)
	if err != nil {
		return nil, err
	}
	var self map[string]string
	if !filepath.IsAbs(path) {
		if self, err = readProcSelfCgroup(cfg); err != nil {
			return nil, fmt.Errorf("resolve relative cgroup path %q: %w", path, err)
		}
	}
	m := &v1Manager{path: path, byController: make(map[string]v1Hierarchy), controllers: v1Controllers()}
	for _, h := range mounts {
		if h.path, err = v1CgroupPath(path, h, self); err != nil {
			return nil, err
		}
		m.hierarchies = append(m.hierarchies, h)
		for _, c := range h.controllers {
			m.byController[c] = h
		}
	}
	sort.Slice(m.hierarchies, func(i, j int) bool { return m.hierarchies[i].dir() < m.hierarchies[j].dir() })
	return m, nil
}

// v1CgroupPath resolves the spec path within hierarchy h: absolute paths
// as they are, relative ones under the process's own cgroup in h.
func v1CgroupPath(path string, h v1Hierarchy, self map[string]string) (string, error) {
	p := path
	if !filepath.IsAbs(path) {
		base, ok := self[h.controllers[0]]
		if !ok {
			return "", fmt.Errorf("resolve relative cgroup path %q: /proc/self/cgroup has no %s entry", path, h.controllers[0])
		}
		p = filepath.Join(base, path)
	}
	if !underRoot(p, h.mountRoot) {
		return "", fmt.Errorf("%w: cgroup %s is outside the part of the %s hierarchy mounted at %s (%s)",
			ErrInvalid, p, strings.Join(h.controllers, ","), h.mountPoint, h.mountRoot)
	}
	return p, nil
}

// v1Mounts finds the v1 hierarchies mounted under cfg.mountRoot, one entry
// per mount, listing the known controllers it carries. Named hierarchies
// (name=systemd) are not joined.
func v1Mounts(cfg config) ([]v1Hierarchy, error) {
	f, err := os.Open(cfg.mountinfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	infos, err := parseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", cfg.mountinfo, err)
	}
	return v1HierarchiesFrom(infos, cfg.mountRoot)
}

func v1HierarchiesFrom(infos []mountInfo, root string) ([]v1Hierarchy, error) {
	known := make(map[string]bool)
	for _, c := range v1Controllers() {
		known[c.Name()] = true
	}
	seen := make(map[string]bool)
	var out []v1Hierarchy
	for _, mi := range infos {
		if mi.FSType != "cgroup" || !underRoot(mi.MountPoint, root) {
			continue
		}
		h := v1Hierarchy{mountPoint: mi.MountPoint, mountRoot: mi.Root}
		for _, opt := range mi.SuperOptions {
			if known[opt] && !seen[opt] {
				h.controllers = append(h.controllers, opt)
				seen[opt] = true
			}
		}
		if len(h.controllers) > 0 {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no cgroup v1 controller is mounted under %s", ErrUnsupported, root)
	}
	return out, nil
}

func (m *v1Manager) dir(controller string) string {
	h, ok := m.byController[controller]
	if !ok {
		return ""
	}
	return h.dir()
}

func (m *v1Manager) Apply(pid int) error {
	if pid == 0 || pid < -1 {
		return fmt.Errorf("%w: apply cgroup %s: pid %d", ErrInvalid, m.path, pid)
	}
	var created []string
	for _, h := range m.hierarchies {
		dirs, err := mkdirPath(h.mountPoint, h.relToMount(h.path))
		created = append(created, dirs...)
		if err == nil && h.has("cpuset") {
			err = initCpuset(h, dirs)
		}
		if err != nil {
			return errors.Join(fmt.Errorf("create cgroup %s: %w", m.path, err), removeDirs(created))
		}
	}
	if pid == -1 {
		return nil
	}
	if err := m.join(pid); err != nil {
		return errors.Join(err, removeDirs(created))
	}
	return nil
}

func (h v1Hierarchy) has(controller string) bool {
	for _, c := range h.controllers {
		if c == controller {
			return true
		}
	}
	return false
}

// join moves pid into every hierarchy. If one move fails, the hierarchies
// already joined get pid back in its previous cgroup, so a failed Apply
// leaves the process where it was.
func (m *v1Manager) join(pid int) error {
	// If pid's cgroups cannot be read (it is gone, say), the first write
	// below fails too and there is nothing to move back.
	before, _ := procCgroups(pid)
	for i, h := range m.hierarchies {
		err := writePid(h.dir(), pid)
		if err == nil {
			continue
		}
		for _, done := range m.hierarchies[:i] {
			if old, ok := before[done.controllers[0]]; ok && underRoot(old, done.mountRoot) {
				_ = writePid(filepath.Join(done.mountPoint, done.relToMount(old)), pid)
			}
		}
		return fmt.Errorf("apply cgroup %s: %w", m.path, err)
	}
	return nil
}

// TaskFiles returns the "tasks" file of the cgroup in every hierarchy. A
// single-threaded process that writes "0" into each moves itself into
// the cgroup without the kernel's global threadgroup lock, which a move
// by pid through cgroup.procs takes and which may wait for an RCU grace
// period (10-25 ms seen here). The cgroup must exist (Apply(-1)).
func (m *v1Manager) TaskFiles() []string {
	files := make([]string, 0, len(m.hierarchies))
	for _, h := range m.hierarchies {
		files = append(files, filepath.Join(h.dir(), "tasks"))
	}
	return files
}

// procCgroups reads /proc/<pid>/cgroup.
func procCgroups(pid int) (map[string]string, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseProcCgroup(f)
}

func (m *v1Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := ValidateResources(r); err != nil {
		return err
	}
	if len(r.Unified) > 0 {
		return fmt.Errorf("%w: linux.resources.unified needs cgroup v2; this host runs v1 controllers", ErrUnsupported)
	}
	for _, c := range m.controllers {
		if !c.Wants(r) {
			continue
		}
		dir := m.dir(c.Name())
		if dir == "" {
			return fmt.Errorf("%w: resources for the %s controller are set, but it is not mounted", ErrUnsupported, c.Name())
		}
		if err := checkDir(dir); err != nil {
			return err
		}
	}
	for _, c := range m.controllers {
		if dir := m.dir(c.Name()); dir != "" && c.Wants(r) {
			if err := c.Set(dir, r); err != nil {
				return fmt.Errorf("cgroup %s: %s: %w", m.path, c.Name(), err)
			}
		}
	}
	return nil
}

func (m *v1Manager) Freeze(state FreezerState) error {
	dir := m.dir("freezer")
	if dir == "" {
		return fmt.Errorf("%w: the freezer controller is not mounted", ErrUnsupported)
	}
	return freezeV1(dir, state)
}

func (m *v1Manager) FreezerState() (FreezerState, error) {
	dir := m.dir("freezer")
	if dir == "" {
		return Thawed, nil
	}
	return freezerStateV1(dir)
}

// procsDir is the directory Pids and Kill list processes from: all
// hierarchies hold the same processes, so any mounted one will do.
func (m *v1Manager) procsDir() string {
	for _, c := range []string{"pids", "freezer", "memory", "cpu", "devices"} {
		if d := m.dir(c); d != "" {
			return d
		}
	}
	return m.hierarchies[0].dir()
}

func (m *v1Manager) Pids() ([]int, error) {
	return walkProcs(m.procsDir())
}

func (m *v1Manager) Kill(sig int) error {
	s := unix.Signal(sig)
	if s != unix.SIGKILL || m.dir("freezer") == "" {
		pids, err := m.Pids()
		if err != nil {
			return err
		}
		return signalAll(pids, s)
	}
	// Frozen processes cannot fork, so the list read below is complete.
	// A failed freeze thaws again itself; killing is still worth doing.
	freezeErr := m.Freeze(Frozen)
	pids, err := m.Pids()
	if err == nil {
		err = signalAll(pids, s)
	}
	// The killed processes may be gone, and their cgroup removed by
	// whoever waited for them, before the thaw: nothing is left to thaw.
	if thawErr := m.Freeze(Thawed); err == nil && !errors.Is(thawErr, fs.ErrNotExist) {
		err = thawErr
	}
	if err != nil && freezeErr != nil {
		err = errors.Join(err, freezeErr)
	}
	return err
}

func (m *v1Manager) Stats() (*Stats, error) {
	if err := checkDir(m.procsDir()); err != nil {
		return nil, err
	}
	s := &Stats{Hugetlb: make(map[string]HugetlbStats)}
	for _, c := range m.controllers {
		if dir := m.dir(c.Name()); dir != "" {
			if err := c.Stat(dir, s); err != nil {
				return nil, fmt.Errorf("cgroup %s: %s stats: %w", m.path, c.Name(), err)
			}
		}
	}
	return s, nil
}

func (m *v1Manager) OOMKillCount() (uint64, error) {
	dir := m.dir("memory")
	if dir == "" {
		return 0, fmt.Errorf("%w: the memory controller is not mounted", ErrUnsupported)
	}
	return oomKillCountV1(dir)
}

func (m *v1Manager) OOMEvents(ctx context.Context) (<-chan struct{}, error) {
	dir := m.dir("memory")
	if dir == "" {
		return nil, fmt.Errorf("%w: the memory controller is not mounted", ErrUnsupported)
	}
	return oomEventsV1(ctx, dir)
}

func (m *v1Manager) Destroy() error {
	deadline := time.Now().Add(destroyTimeout)
	// The hierarchies are independent: removed in parallel, a container's
	// nine or so rmdirs (each a cgroup taken offline) take about half as
	// long on two CPUs.
	errs := make([]error, len(m.hierarchies))
	var wg sync.WaitGroup
	for i, h := range m.hierarchies {
		wg.Go(func() {
			if err := removeCgroup(h.dir(), deadline); err != nil {
				errs[i] = fmt.Errorf("destroy cgroup %s: %w", m.path, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (m *v1Manager) Path(controller string) string {
	return m.byController[controller].path
}

func (m *v1Manager) Paths() map[string]string {
	out := make(map[string]string, len(m.byController))
	for c, h := range m.byController {
		out[c] = h.dir()
	}
	return out
}
