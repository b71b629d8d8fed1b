package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const inspectScript = `
echo "== mountinfo"; cat /proc/self/mountinfo
echo "== devices"; stat -c '%n|%F|%t:%T|%a|%u:%g' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/mynull /run/fifo
echo "== links"; for l in /dev/fd /dev/stdin /dev/stdout /dev/stderr /dev/ptmx; do echo "$l -> $(readlink $l)"; done
echo "== masked"; stat -c '%n|%F|%t:%T' /proc/keys /proc/timer_list; ls -A /proc/acpi | wc -l; ls -A /sys/firmware | wc -l
echo "== write root"; touch /newfile 2>&1
echo "== write proc sys"; echo x 2>&1 > /proc/sys/kernel/domainname
echo "== write data"; touch /data/new 2>&1
echo "== read data"; cat /data/hello /etc/hostname /merged/layer
echo "== write dev"; touch /dev/newfile 2>&1 && echo ok
echo "== end"
`

// The default runc spec with binds, devices and a console: what the
// container sees, and that the host is left as it was.
func TestContainerDefaultSpec(t *testing.T) {
	c := newContainer(t)
	hostData := filepath.Join(c.dir, "data")
	if err := os.Mkdir(hostData, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostData, "hello"), []byte("hello from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostname := filepath.Join(c.dir, "hostname")
	if err := os.WriteFile(hostname, []byte("box\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"lower", "upper", "work"} {
		if err := os.Mkdir(filepath.Join(c.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.dir, "lower/layer"), []byte("from the lower layer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.spec.Mounts = append(c.spec.Mounts,
		specs.Mount{Destination: "/data", Source: hostData, Options: []string{"rbind", "ro", "nosuid", "nodev"}},
		specs.Mount{Destination: "/etc/hostname", Source: hostname, Type: "bind", Options: []string{"bind"}},
		specs.Mount{Destination: "/run", Source: "tmpfs", Type: "tmpfs", Options: []string{"nosuid", "nodev", "nosymfollow", "mode=755"}},
		// A recursive bind made read-only recursively: its submounts too.
		specs.Mount{Destination: "/hostsys", Source: "/sys", Options: []string{"rbind", "rro", "rnosuid"}},
		specs.Mount{Destination: "/merged", Source: "overlay", Type: "overlay", Options: []string{
			"lowerdir=" + filepath.Join(c.dir, "lower"), "upperdir=" + filepath.Join(c.dir, "upper"),
			"workdir=" + filepath.Join(c.dir, "work")}},
	)
	c.spec.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3, FileMode: ptr[os.FileMode](0o640), UID: ptr[uint32](1), GID: ptr[uint32](2)},
		{Path: "/run/fifo", Type: "p"},
	}
	c.req.Console = true
	out := c.mustRun(inspectScript).out

	mounts := mountsAt(t, section(out, "mountinfo"))
	checkMount := func(at, fstype string, opts ...string) {
		t.Helper()
		m, ok := mounts[at]
		if !ok {
			t.Errorf("no mount at %s", at)
			return
		}
		if m.fstype != fstype {
			t.Errorf("%s: type %s, want %s", at, m.fstype, fstype)
		}
		for _, o := range opts {
			if !hasOpt(m.options, o) && !hasOpt(m.superOptions, o) {
				t.Errorf("%s: options %s / %s lack %s", at, m.options, m.superOptions, o)
			}
		}
	}
	checkMount("/", mounts["/"].fstype, "ro")
	checkMount("/proc", "proc", "rw")
	checkMount("/dev", "tmpfs", "rw", "nosuid", "mode=755")
	checkMount("/dev/pts", "devpts", "nosuid", "noexec", "mode=620", "ptmxmode=666", "gid=5")
	checkMount("/dev/shm", "tmpfs", "nosuid", "nodev", "noexec", "size=65536k")
	checkMount("/dev/mqueue", "mqueue", "nosuid", "nodev", "noexec")
	checkMount("/dev/console", "devpts")
	checkMount("/sys", "sysfs", "ro", "nosuid", "nodev", "noexec")
	unified := hostIsCgroup2(t)
	if unified {
		checkMount("/sys/fs/cgroup", "cgroup2", "ro", "nosuid", "nodev", "noexec")
	} else {
		checkMount("/sys/fs/cgroup", "tmpfs", "ro", "mode=755")
		checkMount("/sys/fs/cgroup/cpu", "cgroup", "ro", "cpu")
		checkMount("/sys/fs/cgroup/memory", "cgroup", "ro", "memory")
		checkMount("/sys/fs/cgroup/systemd", "cgroup", "ro", "name=systemd")
	}
	checkMount("/proc/sys", "proc", "ro")
	checkMount("/proc/irq", "proc", "ro")
	checkMount("/proc/acpi", "tmpfs", "ro")
	checkMount("/sys/firmware", "tmpfs", "ro")
	checkMount("/proc/keys", "tmpfs") // the container's /dev/null, on its /dev tmpfs
	checkMount("/data", mounts["/data"].fstype, "ro", "nosuid", "nodev")
	checkMount("/etc/hostname", mounts["/etc/hostname"].fstype, "rw")
	checkMount("/run", "tmpfs", "nosuid", "nodev", "nosymfollow")
	checkMount("/hostsys", "sysfs", "ro", "nosuid")
	if unified {
		checkMount("/hostsys/fs/cgroup", "cgroup2", "ro", "nosuid")
	} else {
		checkMount("/hostsys/fs/cgroup", "tmpfs", "ro", "nosuid")
		checkMount("/hostsys/fs/cgroup/memory", "cgroup", "ro", "nosuid")
	}
	checkMount("/merged", "overlay", "rw", "lowerdir="+filepath.Join(c.dir, "lower"))
	if _, ok := mounts["/dev/null"]; ok {
		t.Error("/dev/null is a mount: want a device node made with mknod")
	}
	// Without a cgroup namespace the container sees its own cgroup as
	// the root of each hierarchy.
	at, controller := "/sys/fs/cgroup/memory", "memory"
	if unified {
		at, controller = "/sys/fs/cgroup", ""
	}
	if want := ownCgroup(t, controller); mounts[at].root != want {
		t.Errorf("%s: hierarchy root %q, want the container's cgroup %q", at, mounts[at].root, want)
	}
	for at := range mounts {
		if strings.HasPrefix(at, c.dir) || strings.HasPrefix(at, "/mnt/") {
			t.Errorf("a host mount is visible in the container: %s", at)
		}
	}

	wantDevices := strings.Join([]string{
		"/dev/null|character special file|1:3|666|0:0",
		"/dev/zero|character special file|1:5|666|0:0",
		"/dev/full|character special file|1:7|666|0:0",
		"/dev/random|character special file|1:8|666|0:0",
		"/dev/urandom|character special file|1:9|666|0:0",
		"/dev/tty|character special file|5:0|666|0:0",
		"/dev/mynull|character special file|1:3|640|1:2",
		"/run/fifo|fifo|0:0|666|0:0",
	}, "\n")
	if got := section(out, "devices"); got != wantDevices {
		t.Errorf("devices:\n%s\nwant:\n%s", got, wantDevices)
	}
	wantLinks := "/dev/fd -> /proc/self/fd\n/dev/stdin -> /proc/self/fd/0\n/dev/stdout -> /proc/self/fd/1\n" +
		"/dev/stderr -> /proc/self/fd/2\n/dev/ptmx -> pts/ptmx"
	if got := section(out, "links"); got != wantLinks {
		t.Errorf("links:\n%s\nwant:\n%s", got, wantLinks)
	}
	wantMasked := "/proc/keys|character special file|1:3\n/proc/timer_list|character special file|1:3\n0\n0"
	if got := section(out, "masked"); got != wantMasked {
		t.Errorf("masked:\n%s\nwant:\n%s", got, wantMasked)
	}
	for _, s := range []string{"write root", "write proc sys", "write data"} {
		if got := section(out, s); !strings.Contains(got, "Read-only file system") {
			t.Errorf("%s: %q, want a read-only file system error", s, got)
		}
	}
	if got := section(out, "read data"); got != "hello from the host\nbox\nfrom the lower layer" {
		t.Errorf("read data: %q", got)
	}
	if got := section(out, "write dev"); got != "ok" {
		t.Errorf("write dev: %q, want ok (/dev is not read-only)", got)
	}
}

// ownCgroup returns this process's cgroup in a v1 hierarchy; the child
// stays in it.
// hostIsCgroup2 reports whether the host mounts only cgroup v2 at
// /sys/fs/cgroup.
func hostIsCgroup2(t *testing.T) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

// ownCgroup returns the test's cgroup in the v1 hierarchy of controller,
// or with controller "" its cgroup v2 path.
func ownCgroup(t *testing.T, controller string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		_, ctrls, p, ok := splitCgroupLine(line)
		if ok && (hasOpt(ctrls, controller) || controller == "" && ctrls == "") {
			return p
		}
	}
	t.Skipf("not in a %s cgroup v1 hierarchy", controller)
	return ""
}

// Regression test (CVE-2021-30465 class): an image's symlink must not
// redirect a mount to the host.
func TestContainerSymlinkMountStaysInRootfs(t *testing.T) {
	c := newContainer(t)
	hostDir := filepath.Join(c.dir, "host-dir")
	if err := os.Mkdir(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostDir, filepath.Join(c.rootfs, "etc/evil")); err != nil {
		t.Fatal(err)
	}
	c.spec.Root.Readonly = false
	c.spec.Mounts = append(c.spec.Mounts, specs.Mount{Destination: "/etc/evil", Source: "tmpfs", Type: "tmpfs"})
	r := c.mustRun(`echo "== mountinfo"; cat /proc/self/mountinfo; echo pwned > /etc/evil/marker`)

	prepared := mountsAt(t, r.report)
	if m, ok := prepared[hostDir]; ok {
		t.Fatalf("tmpfs mounted on the host path %s: %+v", hostDir, m)
	}
	if m, ok := prepared[filepath.Join(c.rootfs, hostDir)]; !ok || m.fstype != "tmpfs" {
		t.Errorf("no tmpfs at %s inside the rootfs after Prepare", filepath.Join(c.rootfs, hostDir))
	}
	if m, ok := mountsAt(t, section(r.out, "mountinfo"))[hostDir]; !ok || m.fstype != "tmpfs" {
		t.Errorf("the container has no tmpfs at %s", hostDir)
	}
	if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
		t.Errorf("the host directory was written: %v", entries)
	}
	if fi, err := os.Lstat(filepath.Join(c.rootfs, hostDir)); err != nil || !fi.IsDir() {
		t.Errorf("the mount point was not created inside the rootfs: %v", err)
	}
}

// Regression test (CVE-2019-19921 class): /proc must be a real directory.
func TestContainerRefusesProcSymlink(t *testing.T) {
	c := newContainer(t)
	procDir := filepath.Join(c.rootfs, "proc")
	if err := os.Remove(procDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(c.rootfs, "fakeproc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/fakeproc", procDir); err != nil {
		t.Fatal(err)
	}
	_, err := c.run("echo should not run")
	if err == nil || !strings.Contains(err.Error(), "real directory") {
		t.Fatalf("got %v, want a refusal of the /proc symlink", err)
	}
}

func TestContainerTmpcopyup(t *testing.T) {
	c := newContainer(t)
	data := filepath.Join(c.rootfs, "opt/data")
	if err := os.MkdirAll(filepath.Join(data, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "a.txt"), []byte("alpha"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(data, "a.txt"), 1000, 1001); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "sub/b.txt"), []byte("beta"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	c.spec.Mounts = append(c.spec.Mounts, specs.Mount{Destination: "/opt/data", Source: "tmpfs", Type: "tmpfs", Options: []string{"tmpcopyup", "nosuid"}})
	out := c.mustRun(`
echo "== mountinfo"; cat /proc/self/mountinfo
echo "== files"; cd /opt/data && stat -c '%n|%F|%a|%u:%g' a.txt sub sub/b.txt link
echo "== content"; cat link sub/b.txt; echo; readlink link
echo "new" > /opt/data/new && echo "== wrote"`).out

	if m := mountsAt(t, section(out, "mountinfo"))["/opt/data"]; m.fstype != "tmpfs" {
		t.Errorf("/opt/data is %q, want tmpfs", m.fstype)
	}
	wantFiles := "a.txt|regular file|640|1000:1001\nsub|directory|750|0:0\nsub/b.txt|regular file|600|0:0\nlink|symbolic link|777|0:0"
	if got := section(out, "files"); got != wantFiles {
		t.Errorf("files:\n%s\nwant:\n%s", got, wantFiles)
	}
	if got := section(out, "content"); got != "alphabeta\na.txt" {
		t.Errorf("content: %q", got)
	}
	if !strings.Contains(out, "== wrote") {
		t.Error("could not write to the tmpfs")
	}
	if _, err := os.Stat(filepath.Join(data, "new")); !os.IsNotExist(err) {
		t.Errorf("a write in the container reached the image: %v", err)
	}
}

func TestContainerNoPivot(t *testing.T) {
	c := newContainer(t)
	c.req.NoPivot = true
	out := c.mustRun(`echo "== mountinfo"; cat /proc/self/mountinfo; echo "== ls"; ls /`).out
	ms, err := parseMountInfo([]byte(section(out, "mountinfo")))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if (m.fstype == "proc" || m.fstype == "sysfs") && m.root == "/" && m.mountpoint != "/proc" && m.mountpoint != "/sys" {
			t.Errorf("a full %s is still reachable at %s", m.fstype, m.mountpoint)
		}
	}
	if got := section(out, "ls"); !strings.Contains(got, "busybox") && !strings.Contains(got, "bin") {
		t.Errorf("ls /: %q, want the rootfs", got)
	}
}

func TestContainerUserNamespace(t *testing.T) {
	for _, tt := range []struct {
		name  string
		flags uintptr
	}{
		{"with netns", syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET},
		{"sysfs falls back to a bind", syscall.CLONE_NEWUSER},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newContainer(t)
			c.cloneflags = tt.flags
			c.req.UserNS = true
			out := c.mustRun(`echo "== mountinfo"; cat /proc/self/mountinfo
echo "== null"; echo hi > /dev/null && echo ok
echo "== write root"; touch /newfile 2>&1
echo "== net"; ls /sys/class/net`).out
			mounts := mountsAt(t, section(out, "mountinfo"))
			if _, ok := mounts["/dev/null"]; !ok {
				t.Error("/dev/null is not a bind mount of the host's node")
			}
			if !hasOpt(mounts["/"].options, "ro") {
				t.Errorf("/ is %s, want ro", mounts["/"].options)
			}
			if m := mounts["/sys"]; m.fstype != "sysfs" || !hasOpt(m.options, "ro") {
				t.Errorf("/sys: %+v, want read-only sysfs", m)
			}
			if got := section(out, "null"); got != "ok" {
				t.Errorf("writing /dev/null: %q", got)
			}
			if got := section(out, "write root"); !strings.Contains(got, "Read-only file system") {
				t.Errorf("write root: %q", got)
			}
			nets := strings.Fields(section(out, "net"))
			if own := tt.flags&syscall.CLONE_NEWNET != 0; own != (len(nets) == 1 && nets[0] == "lo") {
				t.Errorf("/sys/class/net = %v (own network namespace: %v)", nets, own)
			}
		})
	}
}

func TestContainerCgroupNamespace(t *testing.T) {
	c := newContainer(t)
	c.cloneflags = syscall.CLONE_NEWCGROUP
	c.req.CgroupNS = true
	own := ownCgroup(t, "memory")
	out := c.mustRun(`echo "== mountinfo"; cat /proc/self/mountinfo; echo "== cgroup"; cat /proc/self/cgroup`).out
	mounts := mountsAt(t, section(out, "mountinfo"))
	for _, h := range []string{"cpu", "cpuacct", "memory", "systemd"} {
		m := mounts["/sys/fs/cgroup/"+h]
		if m.fstype != "cgroup" || m.root != "/" || !hasOpt(m.options, "ro") {
			t.Errorf("/sys/fs/cgroup/%s: %+v, want a read-only cgroup mount of the namespace root", h, m)
		}
	}
	if m := mounts["/sys/fs/cgroup/unified"]; m.fstype != "cgroup2" {
		t.Errorf("/sys/fs/cgroup/unified: %+v, want cgroup2", m)
	}
	if strings.Contains(section(out, "cgroup"), own) && own != "/" {
		t.Errorf("the container sees its host cgroup path %s", own)
	}
}

func TestContainerRootfsPropagationShared(t *testing.T) {
	c := newContainer(t)
	c.spec.Linux.RootfsPropagation = "rshared"
	out := c.mustRun(`echo "== mountinfo"; cat /proc/self/mountinfo`).out
	root := mountsAt(t, section(out, "mountinfo"))["/"]
	if !strings.Contains(root.optional, "shared:") {
		t.Errorf("/ propagation %q, want shared", root.optional)
	}
}
