#!/usr/bin/env bash
# Runs berth's cgroup tests on a cgroup v2 kernel: boots Debian's kernel
# under qemu (software emulation) with only the unified hierarchy mounted,
# runs statically linked test binaries built here from an initramfs, and
# reports their results like go test. See tests/vm/README.md.
#
# Environment:
#   BERTH_VM_PACKAGES  packages to test (default: see packages below)
#   BERTH_VM_RUN       -test.run pattern for every package (default: all)
#   BERTH_VM_NO_SKIP   if set, also run the tests in known-failures
#   BERTH_VM_SCRIPT    a shell script to run in the guest after the tests,
#                      reported like a package (exit status 0 passes)
#   BERTH_VM_TIMEOUT   seconds before qemu is killed (default 900)
#   BERTH_VM_STALL     seconds without test output after which the guest
#                      counts as hung and is booted once more (default 300)
#   BERTH_VM_MEMORY    guest memory (default 2G)
#   BERTH_VM_KEEP      if set, keep the work directory and print its path
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin

# The packages whose tests touch cgroups: the driver itself, the runtime
# library (cgroup namespace and cgroup mounts in containers), the runtime
# binary driven from outside, and this directory's v2 checks of it.
read -ra packages <<<"${BERTH_VM_PACKAGES:-berth.dev/cgroups berth.dev/runtime/rootfs berth.dev/runtime berth.dev/tests/runtime berth.dev/tests/vm berth.dev/snapshot berth.dev/snapshot/overlay berth.dev/shim berth.dev/engine berth.dev/content berth.dev/archive}"
run_pattern=${BERTH_VM_RUN:-.}
timeout_s=${BERTH_VM_TIMEOUT:-900}
stall_s=${BERTH_VM_STALL:-300}
memory=${BERTH_VM_MEMORY:-2G}
# Modules the guest loads (with their dependencies): overlayfs, which the
# runtime uses to open its own binary read-only; a virtio disk, so that the
# io controller has a device to throttle; dummy, for a network interface
# other than lo (no traffic: the guest has no network device); veth,
# bridge and nftables (NAT, masquerade, fib, conntrack; crc32c_generic is
# libcrc32c's soft dependency, which modinfo does not list), for the engine's
# network tests, whose traffic stays inside the guest's namespaces.
modules=(overlay virtio_pci virtio_blk dummy veth bridge br_netfilter crc32c_generic nf_tables nft_chain_nat nft_nat nft_masq nft_fib_inet nft_ct)

install_missing() {
	local packages=(linux-image-amd64 qemu-system-x86 busybox-static cpio kmod libseccomp-dev gcc)
	local missing=() p
	for p in "${packages[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		apt-get update -q
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
}

# kernel_version prints the version (as in /lib/modules) of the newest
# Debian kernel in /boot.
kernel_version() {
	local v
	v=$(find /boot -maxdepth 1 -name 'vmlinuz-*-amd64' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
	if [ -z "$v" ] || [ ! -d "/lib/modules/$v" ]; then
		echo "no Debian kernel with modules in /boot (is linux-image-amd64 installed?)" >&2
		return 1
	fi
	echo "$v"
}

# add_module copies a module and, first, its dependencies into the guest's
# /lib/modules, listing each once in load order in /lib/modules/order.
add_module() {
	local dir=$1 kver=$2 name=$3 file dep
	file=$(modinfo -k "$kver" -n "$name")
	if [ "$file" = "(builtin)" ] || grep -qx "$(basename "$file")" "$dir/lib/modules/order" 2>/dev/null; then
		return 0
	fi
	for dep in $(modinfo -k "$kver" -F depends "$name" | tr ',' ' '); do
		add_module "$dir" "$kver" "$dep"
	done
	case "$file" in
	*.ko) cp "$file" "$dir/lib/modules/" ;;
	*.ko.xz) xz -dc "$file" >"$dir/lib/modules/$(basename "$file" .xz)" ;;
	*.ko.zst) zstd -qdc "$file" >"$dir/lib/modules/$(basename "$file" .zst)" ;;
	*) echo "module $name: cannot load $file" >&2 && return 1 ;;
	esac
	basename "${file%.xz}" | sed 's/\.zst$//' >>"$dir/lib/modules/order"
}

# uses_cgo reports whether a package's test binary needs cgo.
# (The standard library's net and os/user have pure Go fallbacks.)
uses_cgo() {
	local cgo
	cgo=$(go list -test -deps -f '{{if .CgoFiles}}{{.ImportPath}}{{end}}' "$1" |
		grep -v -e '^$' -e '^runtime/cgo$' -e '^net$' -e '^os/user$' || true)
	[ -n "$cgo" ]
}

# build_static runs go "$@" (build, or test -c) for pkg into out, linked
# statically: pure Go without cgo, cgo code (nsenter, libseccomp) against
# glibc's and libseccomp's static archives.
build_static() {
	local pkg=$1 out=$2
	shift 2
	if uses_cgo "$pkg"; then
		CGO_ENABLED=1 go "$@" -trimpath -tags osusergo,netgo \
			-ldflags '-linkmode external -extldflags -static' -o "$out" "$pkg"
	else
		CGO_ENABLED=0 go "$@" -trimpath -o "$out" "$pkg"
	fi
}

# skip_args prints the -test.skip argument for a package's known failures.
skip_args() {
	local names
	[ -z "${BERTH_VM_NO_SKIP:-}" ] || return 0
	names=$(awk -v pkg="$1" '$1 == pkg { printf "%s%s", sep, $2; sep = "|" }' tests/vm/known-failures)
	[ -z "$names" ] || echo "-test.skip ^($names)\$"
}

# known_failures lists the tests skip_args skipped.
known_failures() {
	[ -z "${BERTH_VM_NO_SKIP:-}" ] || return 0
	echo "cgroup v2 VM: skipped as known failures (tests/vm/known-failures):"
	awk -v pkgs=" ${packages[*]} " '!/^#/ && index(pkgs, " " $1 " ") { print "    " $0 }' tests/vm/known-failures
}

# build_tests builds the runtime and each package's test binary, and
# writes /tests/list: package, binary, arguments.
build_tests() {
	local dir=$1 pkg bin
	build_static berth.dev/cmd/berth-runtime "$dir/usr/local/bin/berth-runtime" build
	# The engine's container tests run each container under a berth-shim,
	# linked statically: the guest has no libc of its own.
	shim/c/build.sh "$dir/usr/local/bin/berth-shim" static
	for pkg in "${packages[@]}"; do
		bin=$(echo "$pkg" | tr '/.' '__').test
		build_static "$pkg" "$dir/tests/$bin" test -c
		echo "$pkg $bin -test.v -test.count=1 -test.timeout=3m -test.run $run_pattern $(skip_args "$pkg")" >>"$dir/tests/list"
	done
	if [ -n "${BERTH_VM_SCRIPT:-}" ]; then
		cp "$BERTH_VM_SCRIPT" "$dir/tests/script"
		chmod 755 "$dir/tests/script"
		echo "script:$(basename "$BERTH_VM_SCRIPT") script" >>"$dir/tests/list"
	fi
}

# build_initramfs lays out the guest's root in dir and packs it into an
# uncompressed cpio archive (decompressing costs seconds under emulation).
build_initramfs() {
	local dir=$1 kver=$2 out=$3 m
	mkdir -p "$dir"/{bin,dev,proc,sys,tmp,run,root,etc,lib/modules,tests,usr/local/bin}
	ln -s bin "$dir/sbin"
	ln -s ../bin "$dir/usr/bin"
	ln -s ../bin "$dir/usr/sbin"
	mknod -m 600 "$dir/dev/console" c 5 1
	cp /bin/busybox "$dir/bin/busybox"
	cp tests/vm/init "$dir/init"
	chmod 755 "$dir/init"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
	echo 'root:x:0:' >"$dir/etc/group"
	touch "$dir/lib/modules/order"
	for m in "${modules[@]}"; do
		add_module "$dir" "$kver" "$m"
	done
	build_tests "$dir"
	(cd "$dir" && find . -print0 | cpio --null --quiet -o -H newc) >"$out"
}

# boot runs the guest, test results on its second serial port, and kills
# it after the timeout. It returns qemu's (or timeout's) exit status, or
# 125 if the guest stalled: no test output for stall_s seconds, while every
# test binary runs with -test.timeout=3m and reports its own hang. The
# emulated guest has been seen to freeze outright (its clock stopped, both
# vCPUs spinning) in the middle of a test that had passed many times.
boot() {
	local kver=$1 work=$2 qemu size last=-1 quiet=0 status=0
	rm -f "$work/console.log" "$work/results.log" "$work/stalled"
	truncate -s 0 "$work/disk.img"
	truncate -s 64M "$work/disk.img"
	timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 \
		-machine q35 -accel tcg -cpu max -smp 2 -m "$memory" \
		-nographic -monitor none -nic none -no-reboot \
		-serial "file:$work/console.log" -serial "file:$work/results.log" \
		-drive "file=$work/disk.img,if=virtio,format=raw" \
		-kernel "/boot/vmlinuz-$kver" -initrd "$work/initrd.cpio" \
		-append "console=ttyS0 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 panic=-1 rdinit=/init" \
		</dev/null &
	qemu=$!
	while kill -0 "$qemu" 2>/dev/null; do
		sleep 5
		size=$(stat -c %s "$work/results.log" 2>/dev/null || echo 0)
		if [ "$size" != "$last" ]; then
			last=$size quiet=0
			continue
		fi
		quiet=$((quiet + 5))
		if [ "$quiet" -ge "$stall_s" ]; then
			touch "$work/stalled"
			kill "$qemu" 2>/dev/null || true
			break
		fi
	done
	wait "$qemu" || status=$?
	[ -e "$work/stalled" ] && return 125
	return "$status"
}

# report prints the guest's test output and go test's summary line for
# each package, and fails unless every package ran and passed.
report() {
	tr -d '\r' <"$1" | awk '
		/^BERTH-VM-BEGIN / { pkg = $2; next }
		/^BERTH-VM-END / {
			if ($3 == 0) { printf "ok  \t%s\t%ss (cgroup v2 VM)\n", $2, $4 }
			else { printf "FAIL\t%s\t%ss (cgroup v2 VM, exit status %s)\n", $2, $4, $3; failed = 1 }
			pkg = ""
			next
		}
		/^BERTH-VM-FATAL / { print; failed = 1; next }
		/^BERTH-VM-DONE$/ { done = 1; next }
		{ print }
		END {
			if (pkg != "") { printf "FAIL\t%s\t(cgroup v2 VM: the guest stopped in its tests)\n", pkg; failed = 1 }
			if (!done) { print "cgroup v2 VM: the guest did not finish its tests"; failed = 1 }
			exit failed
		}'
}

main() {
	if [ "$(id -u)" != 0 ]; then
		echo "tests/vm/run.sh needs root (apt-get, a device node in the initramfs)" >&2
		exit 1
	fi
	install_missing
	local kver work status=0 start
	kver=$(kernel_version)
	work=$(mktemp -d /tmp/berth-vm-XXXXXX)
	if [ -n "${BERTH_VM_KEEP:-}" ]; then
		echo "cgroup v2 VM: work directory $work"
	else
		# shellcheck disable=SC2064 # work is local: expand it now
		trap "rm -rf '$work'" EXIT
	fi
	echo "cgroup v2 VM: building the initramfs (kernel $kver): ${packages[*]}"
	build_initramfs "$work/root" "$kver" "$work/initrd.cpio"
	echo "cgroup v2 VM: booting (software emulation, 2 vCPUs, $memory, timeout ${timeout_s}s)"
	start=$SECONDS
	boot "$kver" "$work" || status=$?
	if [ "$status" = 125 ]; then
		echo "cgroup v2 VM: no test output for ${stall_s}s after $((SECONDS - start))s: the guest hung; last lines of its console:"
		tr -d '\r' <"$work/console.log" | tail -n 5
		echo "cgroup v2 VM: booting it once more"
		start=$SECONDS status=0
		boot "$kver" "$work" || status=$?
	fi
	echo "cgroup v2 VM: qemu ran $((SECONDS - start))s, exit status $status"
	if [ "$status" = 124 ] || [ "$status" = 137 ]; then
		echo "cgroup v2 VM: killed after ${timeout_s}s"
	elif [ "$status" = 125 ]; then
		echo "cgroup v2 VM: hung again (no test output for ${stall_s}s)"
	fi
	known_failures
	if ! report "$work/results.log"; then
		echo "--- guest console (last 60 lines) ---"
		tr -d '\r' <"$work/console.log" | tail -n 60
		exit 1
	fi
}

main "$@"
