#!/usr/bin/env bash
# Installs what berth needs to build and test on Debian 12 (as root).
set -euo pipefail
# busybox-static: test images and bundles; libseccomp-dev: the runtime; runc, crun:
# references; docker.io: the docker CLI the API tests drive (its daemon is not
# started); docker-registry: the registry the image tests push to and pull from;
# umoci, skopeo, podman: other tools' view of the images berth writes and reads;
# debootstrap: the Debian image of the lecture's demo test (cached in
# /var/cache/berth-bench); containerd, bc, curl: bench/containers.sh;
# nftables: the network tests read and remove test tables with nft; dpkg-dev:
# dpkg-scanpackages for the apt repository of the network demo test; bzip2,
# xz-utils, zstd: build contexts in every compression the engine reads; isal:
# igzip, which berthd uses to inflate gzip layers where berth-inflate is not;
# libisal-dev: ISA-L's headers and library, to build berth-inflate.
packages=(busybox-static libseccomp-dev pkg-config gcc make procps iproute2 runc crun time
	docker.io docker-registry umoci skopeo podman debootstrap containerd bc curl nftables dpkg-dev
	bzip2 xz-utils zstd isal libisal-dev)
missing=()
for p in "${packages[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
