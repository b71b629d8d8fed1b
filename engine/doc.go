// Package engine is berthd's coordinator: the image service (pull, push,
// tag, remove, save, load, import) built on the content store, the
// registry client, the snapshotter and the layer archive code, and later
// the container, volume and network services. The Docker API front-end
// reaches it only through the narrow backend interfaces of api/docker.
package engine
