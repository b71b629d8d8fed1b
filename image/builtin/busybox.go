package builtin

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"runtime"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// installBusybox is what to tell a user whose host has no static busybox.
const installBusybox = "install Debian's static busybox: apt-get install busybox-static"

// busyboxPath is the PATH of the busybox image, as docker.io/library/busybox has it.
const busyboxPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// The accounts of the busybox image: the system users and groups of
// docker.io/library/busybox, so that `--user nobody`, `--user daemon` or
// files owned by www-data resolve as they do there.
const (
	busyboxPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`
	busyboxGroup = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`
)

// busybox is the busybox image: bin/busybox, a copy of the static busybox
// at bin, a relative symlink to it for each applet where `busybox
// --list-full` puts it (bin/sh, sbin/ip, usr/bin/wget...), /etc/passwd and
// /etc/group, and the usual empty directories.
func busybox(ctx context.Context, bin string) (imageSpec, error) {
	exe, err := readStaticBusybox(bin)
	if err != nil {
		return imageSpec{}, err
	}
	applets, err := busyboxApplets(ctx, bin)
	if err != nil {
		return imageSpec{}, err
	}
	es := []entry{
		file("bin/busybox", 0o755, exe),
		dir("dev", 0o755),
		dir("etc", 0o755),
		file("etc/group", 0o644, []byte(busyboxGroup)),
		file("etc/passwd", 0o644, []byte(busyboxPasswd)),
		dir("home", 0o755),
		dir("proc", 0o755),
		dir("root", 0o700),
		dir("sys", 0o755),
		dir("tmp", 0o1777),
		dir("var", 0o755),
		dir("var/spool", 0o755),
		dir("var/spool/mail", 0o755),
		dir("var/www", 0o755),
	}
	dirs := map[string]bool{}
	for _, e := range es {
		if e.typ == tar.TypeDir {
			dirs[e.name] = true
		}
	}
	addDir := func(d string) {
		for ; d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			es = append(es, dir(d, 0o755))
		}
	}
	addDir("bin")
	for _, a := range applets {
		addDir(path.Dir(a))
		es = append(es, symlink(a, relTarget(a, "bin/busybox")))
	}
	return imageSpec{
		entries: es,
		config: ocispec.ImageConfig{
			Env: []string{busyboxPath},
			Cmd: []string{"sh"},
		},
		createdBy: fmt.Sprintf("ADD file:%s in / # berth built-in: the host's static busybox (%s) and its applets",
			digest.FromBytes(exe).Encoded(), bin),
	}, nil
}

// readStaticBusybox reads the busybox binary at bin and checks that it can
// run in an empty image: an ELF executable for the host's architecture
// without an interpreter (statically linked).
func readStaticBusybox(bin string) ([]byte, error) {
	data, err := os.ReadFile(bin)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist: %s", errdefs.ErrUnavailable, bin, installBusybox)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read busybox: %w: %s", errdefs.ErrUnavailable, err, installBusybox)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not an ELF executable (%v): %s", errdefs.ErrUnavailable, bin, err, installBusybox)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%w: %s is dynamically linked and would not run in an image without libraries: %s",
				errdefs.ErrUnavailable, bin, installBusybox)
		}
	}
	if want, ok := elfMachine(runtime.GOARCH); ok && f.Machine != want {
		return nil, fmt.Errorf("%w: %s is for %s, not %s: %s", errdefs.ErrUnavailable, bin, f.Machine, runtime.GOARCH, installBusybox)
	}
	return data, nil
}

// elfMachine is the ELF machine of a GOARCH, for the architectures berth
// checks busybox against.
func elfMachine(goarch string) (elf.Machine, bool) {
	switch goarch {
	case "amd64":
		return elf.EM_X86_64, true
	case "arm64":
		return elf.EM_AARCH64, true
	case "arm":
		return elf.EM_ARM, true
	case "386":
		return elf.EM_386, true
	case "ppc64le":
		return elf.EM_PPC64, true
	case "s390x":
		return elf.EM_S390, true
	case "riscv64":
		return elf.EM_RISCV, true
	}
	return 0, false
}

// busyboxApplets asks busybox where each of its applets goes
// (`busybox --list-full`: bin/sh, usr/bin/wget...). The list is sorted
// and holds neither bin/busybox nor anything that is not a clean relative
// path; bin/sh is always in it, the image's command needs it.
func busyboxApplets(ctx context.Context, bin string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--list-full")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s --list-full: %w: %s", errdefs.ErrUnavailable, bin, err, bytes.TrimSpace(stderr.Bytes()))
	}
	seen := map[string]bool{"bin/sh": true}
	for _, a := range strings.Fields(string(out)) {
		if a == "bin/busybox" {
			continue
		}
		if path.IsAbs(a) || path.Clean(a) != a || a == ".." || strings.HasPrefix(a, "../") {
			return nil, fmt.Errorf("%w: %s --list-full: unexpected applet path %q", errdefs.ErrUnavailable, bin, a)
		}
		seen[a] = true
	}
	applets := make([]string, 0, len(seen))
	for a := range seen {
		applets = append(applets, a)
	}
	slices.Sort(applets)
	return applets, nil
}

// relTarget is the relative symlink target, for a link at name, of target
// (both relative to the image root): bin/sh → busybox, usr/bin/wget →
// ../../bin/busybox. Relative links resolve inside an unpacked layer too,
// not only inside the container.
func relTarget(name, target string) string {
	if path.Dir(name) == path.Dir(target) {
		return path.Base(target)
	}
	return strings.Repeat("../", strings.Count(name, "/")) + target
}
