package rootfs

import (
	"fmt"
	"strconv"
	"strings"
)

// mountInfo is one line of /proc/<pid>/mountinfo (proc(5)).
type mountInfo struct {
	id, parent   int
	root         string // path of the mount's root inside its filesystem
	mountpoint   string
	options      string // per-mount options
	optional     string // optional fields (shared:N master:N ...), space-separated
	fstype       string
	source       string
	superOptions string
}

// parseMountInfo parses the contents of a mountinfo file.
func parseMountInfo(data []byte) ([]mountInfo, error) {
	var out []mountInfo
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		mi, err := parseMountInfoLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", i+1, err)
		}
		out = append(out, mi)
	}
	return out, nil
}

func parseMountInfoLine(line string) (mountInfo, error) {
	pre, post, ok := strings.Cut(line, " - ")
	f := strings.Fields(pre)
	g := strings.Fields(post)
	if !ok || len(f) < 6 || len(g) < 2 {
		return mountInfo{}, fmt.Errorf("malformed %q", line)
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return mountInfo{}, fmt.Errorf("malformed ids in %q", line)
	}
	mi := mountInfo{
		id: id, parent: parent,
		root:       unescapeMountPath(f[3]),
		mountpoint: unescapeMountPath(f[4]),
		options:    f[5],
		optional:   strings.Join(f[6:], " "),
		fstype:     g[0],
		source:     unescapeMountPath(g[1]),
	}
	if len(g) > 2 {
		mi.superOptions = g[2]
	}
	return mi, nil
}

// unescapeMountPath undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in mountinfo paths.
func unescapeMountPath(s string) string {
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
