package ocispec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/openat2"
)

// maxAccountFile bounds how much of /etc/passwd or /etc/group is read: the
// files come from an image, which may be hostile.
const maxAccountFile = 16 << 20

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// resolvedUser is the process user and the HOME it gets.
type resolvedUser struct {
	user specs.User
	home string
}

// resolveUser turns a docker user spec (name, uid, name:group, uid:gid ...)
// into ids, reading the container's account files inside rootfs. An empty
// spec is root. Supplementary groups are the groups of /etc/group that list
// the user by name, then groupAdd.
func resolveUser(rootfs, spec string, groupAdd []string) (resolvedUser, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	if hasGroup && groupPart == "" {
		return resolvedUser{}, fmt.Errorf("%w: user %q: empty group", errdefs.ErrInvalidArgument, spec)
	}
	users, err := readPasswd(rootfs)
	if err != nil {
		return resolvedUser{}, err
	}
	u, err := findUser(users, userPart)
	if err != nil {
		return resolvedUser{}, err
	}
	var groups []groupEntry
	if hasGroup || len(groupAdd) > 0 || u.name != "" {
		if groups, err = readGroup(rootfs); err != nil {
			return resolvedUser{}, err
		}
	}
	r := resolvedUser{user: specs.User{UID: u.uid, GID: u.gid}, home: u.home}
	if hasGroup {
		g, err := findGroup(groups, groupPart)
		if err != nil {
			return resolvedUser{}, err
		}
		r.user.GID = g.gid
	}
	if u.name != "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == u.name && g.gid != r.user.GID {
					r.user.AdditionalGids = append(r.user.AdditionalGids, g.gid)
					break
				}
			}
		}
	}
	for _, name := range groupAdd {
		g, err := findGroup(groups, name)
		if err != nil {
			return resolvedUser{}, err
		}
		r.user.AdditionalGids = append(r.user.AdditionalGids, g.gid)
	}
	if r.home == "" {
		r.home = "/"
	}
	return r, nil
}

// parseID reads a numeric uid or gid; ok is false for a name.
func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == math.MaxUint32 {
		return 0, false
	}
	return uint32(n), true
}

// findUser looks a name or uid up. An unknown uid is allowed, with group 0
// and no name; an unknown name is an error worded as docker's.
func findUser(users []passwdEntry, s string) (passwdEntry, error) {
	id, numeric := parseID(s)
	for _, u := range users {
		if (numeric && u.uid == id) || (!numeric && u.name == s) {
			return u, nil
		}
	}
	if numeric {
		return passwdEntry{uid: id}, nil
	}
	return passwdEntry{}, fmt.Errorf("%w: unable to find user %s: no matching entries in passwd file", errdefs.ErrInvalidArgument, s)
}

func findGroup(groups []groupEntry, s string) (groupEntry, error) {
	id, numeric := parseID(s)
	for _, g := range groups {
		if (numeric && g.gid == id) || (!numeric && g.name == s) {
			return g, nil
		}
	}
	if numeric {
		return groupEntry{gid: id}, nil
	}
	return groupEntry{}, fmt.Errorf("%w: unable to find group %s: no matching entries in group file", errdefs.ErrInvalidArgument, s)
}

func readPasswd(rootfs string) ([]passwdEntry, error) {
	var users []passwdEntry
	err := readAccountFile(rootfs, "etc/passwd", func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if !ok1 || !ok2 {
			return
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		users = append(users, e)
	})
	return users, err
}

func readGroup(rootfs string) ([]groupEntry, error) {
	var groups []groupEntry
	err := readAccountFile(rootfs, "etc/group", func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, ok := parseID(f[2])
		if !ok {
			return
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		groups = append(groups, g)
	})
	return groups, err
}

// readAccountFile calls line with the colon-separated fields of each entry
// of the file at rel in rootfs. A missing file has no entries.
func readAccountFile(rootfs, rel string, line func([]string)) error {
	f, err := openInRoot(rootfs, rel)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxAccountFile))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		line(strings.Split(text, ":"))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read /%s in the container: %w", rel, err)
	}
	return nil
}

// openInRoot opens rel for reading with every path component, symlinks
// included, resolved as if rootfs were "/": an image's /etc/passwd that is
// a symlink to /etc/passwd or ../../etc/passwd stays inside the rootfs and
// never reaches the host's file (RESOLVE_IN_ROOT, openat2(2)).
func openInRoot(rootfs, rel string) (*os.File, error) {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(root)
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	fd, err := openat2.Open(root, rel, how)
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: rootfs + "/" + rel, Err: err}
	}
	f := os.NewFile(uintptr(fd), rootfs+"/"+rel)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: /%s in the container is not a regular file", errdefs.ErrInvalidArgument, rel)
	}
	return f, nil
}
