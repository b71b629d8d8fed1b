// Package image knows what an image is, apart from where its bytes live:
// references and their docker-style normal and familiar forms, image IDs
// and short ID prefixes, the documents of an image (OCI index and
// manifest, Docker manifest list and schema 2 manifest, the image config),
// platforms and the choice of a manifest for one, chain IDs, the rows of
// `docker history`, the data of `docker image inspect`, and the image name
// store: the table, kept in the engine's metadata database, that maps each
// image name (docker.io/library/busybox:latest) to the manifest or index it
// points at and to the image's ID.
//
// Blobs are the content store's business and layers the snapshotter's; this
// package only reads the bytes it is handed and never does network I/O.
package image
