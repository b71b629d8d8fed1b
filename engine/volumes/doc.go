// Package volumes is the engine's volume service: docker's named and
// anonymous volumes with the "local" driver.
//
// A volume is a directory, root/<name>/_data, and a record in the metadata
// database (metadata.BucketVolumes) that holds its labels, driver options,
// creation time, the containers that use it and whether an image's content
// was copied into it. The record is the truth: the directory is made before
// the record and removed after it, so a crash leaves at worst a directory
// without a record, which New removes.
//
// A volume created with driver options (type, device, o) is a filesystem
// mounted on its _data directory, as `mount -t type -o o device _data`: a
// tmpfs, or a bind mount with type=none o=bind. It is mounted when a
// container first acquires it and unmounted when the last one releases it.
//
// Containers reach the store through Acquire (at create), Populate (before
// each start) and Release (at remove); the Docker API's /volumes routes
// through the VolumeBackend methods (Create, List, Inspect, Remove, Prune).
package volumes
