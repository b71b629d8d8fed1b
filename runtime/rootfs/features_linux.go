package rootfs

import "sort"

// MountOptions lists the mount option strings the package understands,
// sorted, for the runtime's features document. idmap and ridmap are left
// out: they are refused.
func MountOptions() []string {
	var out []string
	for name, o := range mountOptionTable() {
		if o.kind != optIDMap {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
