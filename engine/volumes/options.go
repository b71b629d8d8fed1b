package volumes

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/docker/go-units"
)

// Driver options of the local driver: the three fields of a mount(8) call.
const (
	optType   = "type"   // filesystem type: tmpfs, none (with o=bind), ext4, ...
	optDevice = "device" // what is mounted: "tmpfs", a host path, a block device
	optO      = "o"      // comma-separated mount options: size=10m, bind, ro, uid=1000
	optSize   = "size"   // a quota (dockerd: XFS project quotas); berth has none
)

// validateOptions checks driver options as dockerd's local driver does:
// only type, device, o and size; type and device go together, and o
// needs both. A size above zero asks for a quota, which berth cannot set.
// Like validateName, it leaves the category to the caller.
func validateOptions(opts map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if k != optType && k != optDevice && k != optO && k != optSize {
			return fmt.Errorf("invalid option: %q", k)
		}
	}
	if v, ok := opts[optSize]; ok {
		size, err := units.RAMInBytes(v)
		if err != nil {
			return err
		}
		if size > 0 {
			return errors.New("quota size requested but no quota support")
		}
	}
	_, hasType := opts[optType]
	_, hasDevice := opts[optDevice]
	_, hasO := opts[optO]
	switch {
	case (hasType || hasO) && !hasDevice:
		return fmt.Errorf("missing required option: %q", optDevice)
	case (hasDevice || hasO) && !hasType:
		return fmt.Errorf("missing required option: %q", optType)
	}
	return nil
}

// needsMount reports whether driver options describe a filesystem to
// mount on the volume's _data (a size of 0 alone does not).
func needsMount(opts map[string]string) bool {
	return opts[optType] != "" || opts[optDevice] != ""
}
