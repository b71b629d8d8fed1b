package rootfs

import (
	"sort"

	"berth.dev/internal/mountopt"
)

// MountOptions lists the mount option strings the package understands,
// sorted, for the runtime's features document. idmap and ridmap are left
// out: they are refused.
func MountOptions() []string {
	var out []string
	for name, o := range mountopt.Table() {
		if o.Kind != mountopt.IDMap {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
