// Package mountinfo parses /proc/<pid>/mountinfo (proc(5)), for the
// packages that need to know what is mounted where: cgroups (where each
// hierarchy is) and the runtime's root filesystem setup.
package mountinfo

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Info is one mountinfo line.
type Info struct {
	ID, Parent int
	// Root is the path inside the filesystem that is mounted (for a cgroup
	// mount: the cgroup that appears at Mountpoint).
	Root       string
	Mountpoint string
	// Options are the per-mount options, comma-separated.
	Options string
	// Optional are the optional fields (shared:N master:N ...),
	// space-separated.
	Optional string
	FSType   string
	Source   string
	// SuperOptions are the per-superblock options, comma-separated; for a
	// v1 cgroup mount they name its controllers.
	SuperOptions string
}

// Parse parses the contents of a mountinfo file.
func Parse(data []byte) ([]Info, error) {
	out := make([]Info, 0, bytes.Count(data, []byte{'\n'})+1)
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		mi, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", i+1, err)
		}
		out = append(out, mi)
	}
	return out, nil
}

func parseLine(line string) (Info, error) {
	// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
	pre, post, ok := strings.Cut(line, " - ")
	f := strings.Fields(pre)
	g := strings.Fields(post)
	if !ok || len(f) < 6 || len(g) < 2 {
		return Info{}, fmt.Errorf("malformed %q", line)
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return Info{}, fmt.Errorf("malformed ids in %q", line)
	}
	mi := Info{
		ID: id, Parent: parent,
		Root:       Unescape(f[3]),
		Mountpoint: Unescape(f[4]),
		Options:    f[5],
		Optional:   strings.Join(f[6:], " "),
		FSType:     g[0],
		Source:     Unescape(g[1]),
	}
	if len(g) > 2 {
		mi.SuperOptions = g[2]
	}
	return mi, nil
}

// Unescape undoes the kernel's octal escapes (\040 for a space, \011,
// \012, \134) in mountinfo paths.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
