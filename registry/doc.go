// Package registry is berth's client of the OCI distribution API (the
// "registry v2" protocol that Docker Hub, distribution and every OCI registry
// speak). It only talks HTTP: it resolves references to descriptors, fetches
// manifests and blobs (verifying their digests while they stream, resuming
// interrupted downloads with Range requests), pushes blobs and manifests, and
// handles the authentication dance (Basic and Bearer-token challenges with a
// token cache). Storing content and unpacking layers is the engine's job.
//
// Where a request goes is decided by Hosts, the [registry] table of
// /etc/berth/berth.toml: mirrors are tried first for pulls, and insecure hosts
// (all of localhost and 127.0.0.0/8 by default, as in Docker) may answer over
// TLS without a verified certificate or over plain HTTP. Credentials come from
// a docker CLI compatible config.json (DockerConfig), so `docker login` and
// `berth login` share them.
package registry
