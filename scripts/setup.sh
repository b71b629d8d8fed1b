#!/usr/bin/env bash
# Installs what berth needs to build and test on Debian 12 (as root).
set -euo pipefail
packages=(busybox-static libseccomp-dev pkg-config gcc make procps iproute2 runc crun time)
missing=()
for p in "${packages[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
