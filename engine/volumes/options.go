package volumes

import (
	"fmt"
	"maps"
	"slices"
)

// Driver options of the local driver: the three fields of a mount(8) call.
const (
	optType   = "type"   // filesystem type: tmpfs, none (with o=bind), ext4, ...
	optDevice = "device" // what is mounted: "tmpfs", a host path, a block device
	optO      = "o"      // comma-separated mount options: size=10m, bind, ro, uid=1000
)

// validateOptions checks driver options as dockerd's local driver does:
// only type, device and o, and type and device are required once any is
// given. Like validateName, it leaves the category to the caller.
func validateOptions(opts map[string]string) error {
	if len(opts) == 0 {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if k != optType && k != optDevice && k != optO {
			return fmt.Errorf("invalid option: %q", k)
		}
	}
	for _, k := range []string{optDevice, optType} {
		if _, ok := opts[k]; !ok {
			return fmt.Errorf("missing required option: %q", k)
		}
	}
	return nil
}
