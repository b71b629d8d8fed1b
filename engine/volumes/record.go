package volumes

import (
	"slices"
	"time"
)

// AnonymousLabel marks a volume made for a container without a name (-v
// /path, an image's VOLUME): `docker rm -v` and a prune without all=true
// remove only volumes that carry it. Its value is empty.
const AnonymousLabel = "com.docker.volume.anonymous"

// localDriver is the only driver.
const localDriver = "local"

// record is what the database keeps of a volume, as JSON keyed by name.
type record struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	// Users are the IDs of the containers that use the volume, sorted.
	Users []string `json:"users,omitempty"`
	// Populated is set once Populate copied content into the volume.
	Populated bool `json:"populated,omitempty"`
}

func (r *record) anonymous() bool {
	_, ok := r.Labels[AnonymousLabel]
	return ok
}

// addUser records that container id uses the volume; it reports whether
// the record changed.
func (r *record) addUser(id string) bool {
	i, found := slices.BinarySearch(r.Users, id)
	if found {
		return false
	}
	r.Users = slices.Insert(r.Users, i, id)
	return true
}

// removeUser drops container id; it reports whether the record changed.
func (r *record) removeUser(id string) bool {
	i, found := slices.BinarySearch(r.Users, id)
	if !found {
		return false
	}
	r.Users = slices.Delete(r.Users, i, i+1)
	return true
}

// mounts reports whether the volume is a filesystem of its own (driver
// options type and device) rather than a plain directory.
func (r *record) mounts() bool { return needsMount(r.Options) }
