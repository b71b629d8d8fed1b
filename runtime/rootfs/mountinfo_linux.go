package rootfs

import "berth.dev/internal/mountinfo"

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
	infos, err := mountinfo.Parse(data)
	if err != nil {
		return nil, err
	}
	out := make([]mountInfo, len(infos))
	for i, mi := range infos {
		out[i] = mountInfo{
			id: mi.ID, parent: mi.Parent,
			root: mi.Root, mountpoint: mi.Mountpoint,
			options: mi.Options, optional: mi.Optional,
			fstype: mi.FSType, source: mi.Source, superOptions: mi.SuperOptions,
		}
	}
	return out, nil
}
