# shellcheck shell=bash
# The machinery of run.sh: packages, the runtime under test and its logging
# wrapper, the image, the engines (private roots, dockerd), a terminal driver
# (tmux), the check runner and the cleanup. Sourced by run.sh, which sets
# repo, work, name, image, created_paths and the counters.

# engine is the engine under test: podman or docker. e runs its command
# line (e_cmd: podman_cmd or docker_cmd, with our private root or socket);
# erun is `e run` with the options every container of this run gets
# (runtime, no network, cgroup parent, limits).
engine=
e_cmd=()
podman_cmd=()
docker_cmd=()
run_flags=()
rtlog=/dev/null
dockerd_pid=

e() {
	case $engine in
	podman) "${podman_cmd[@]}" "$@" ;;
	docker) "${docker_cmd[@]}" "$@" ;;
	esac
}

erun() {
	e run "${run_flags[@]}" "$@"
}

install_missing() {
	local packages=(podman docker.io containerd catatonit tmux busybox-static util-linux make)
	local missing=() p
	for p in "${packages[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing ${missing[*]}"
	if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$work/apt.log" 2>&1; then
		echo "run.sh: apt-get install ${missing[*]} failed:" >&2
		tail -n 20 "$work/apt.log" >&2
		return 1
	fi
}

# setup_runtime puts the runtime under test at $work/runtime: a copy, so
# that a rebuild of bin/ while the checks run changes nothing.
setup_runtime() {
	local src=${BERTH_COMPAT_RUNTIME:-}
	if [ -z "$src" ]; then
		if ! make -C "$repo" berth-runtime >"$work/make.log" 2>&1; then
			echo "run.sh: make berth-runtime failed:" >&2
			tail -n 30 "$work/make.log" >&2
			return 1
		fi
		src=$repo/bin/berth-runtime
	fi
	if ! cp "$src" "$work/runtime"; then
		echo "run.sh: no runtime binary at $src" >&2
		return 1
	fi
	echo "runtime: $src ($("$work/runtime" --version 2>&1 | head -n 1))"
}

# make_wrapper writes $work/<engine>-runtime, the path the engine is given
# as its runtime: it appends each command line to $work/<engine>-runtime.log
# ("<time> <pid> > args"), runs the runtime, and appends its exit status
# ("<time> <pid> < exit N").
make_wrapper() {
	local wrapper=$work/$1-runtime
	rtlog=$work/$1-runtime.log
	: >"$rtlog"
	cat >"$wrapper" <<EOF
#!/bin/sh
printf '%s %s > %s\n' "\$(date +%T.%N)" "\$\$" "\$*" >>'$rtlog'
'$work/runtime' "\$@"
rc=\$?
printf '%s %s < exit %s\n' "\$(date +%T.%N)" "\$\$" "\$rc" >>'$rtlog'
exit \$rc
EOF
	chmod 0755 "$wrapper"
}

# build_rootfs writes $work/rootfs.tar: the busybox rootfs of the tests.
build_rootfs() {
	if ! (cd "$repo" && go run ./tests/fixtures/cmd/mkbundle "$work/bundle") >"$work/mkbundle.log" 2>&1; then
		echo "run.sh: mkbundle failed:" >&2
		cat "$work/mkbundle.log" >&2
		return 1
	fi
	tar -C "$work/bundle/rootfs" -cf "$work/rootfs.tar" . || return 1
	rm -rf "$work/bundle"
}

# has_cap_sys_resource tells whether this process may raise hard rlimits.
has_cap_sys_resource() {
	local bnd
	bnd=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
	(((0x$bnd >> 24) & 1))
}

podman_setup() {
	engine=podman
	make_wrapper podman
	podman_cmd=(
		podman --root "$work/podman/root" --runroot "$work/podman/run" --tmpdir "$work/podman/tmp"
		--volumepath "$work/podman/volumes" --network-config-dir "$work/podman/net"
		--cgroup-manager cgroupfs --events-backend file --runtime "$work/podman-runtime"
	)
	e_cmd=("${podman_cmd[@]}")
	run_flags=(--network none --cgroup-parent "/$name-podman")
	# Podman asks for RLIMIT_NOFILE and RLIMIT_NPROC 1048576 in every
	# container. Raising a hard limit needs CAP_SYS_RESOURCE, which some
	# sandboxes drop from the bounding set: runc and crun fail there too.
	# Podman itself lowers its RLIMIT_NPROC to 32768, and the runtime
	# inherits that.
	if ! has_cap_sys_resource; then
		local nofile nproc
		nofile=$(ulimit -Hn)
		nproc=$(ulimit -Hu)
		if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then
			nproc=32768
		fi
		run_flags+=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
		echo "note: no CAP_SYS_RESOURCE: podman containers get --ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"
	fi
	e import --change 'CMD ["/bin/sh"]' "$work/rootfs.tar" "$image" >/dev/null
}

docker_setup() {
	engine=docker
	make_wrapper docker
	# Debian's client, of the same release as the daemon.
	local cli=/usr/bin/docker
	[ -x "$cli" ] || cli=docker
	docker_cmd=("$cli" -H "unix://$work/docker/docker.sock")
	e_cmd=("${docker_cmd[@]}")
	run_flags=(--runtime berth --network none)
	start_dockerd || return 1
	e import -c 'CMD ["/bin/sh"]' "$work/rootfs.tar" "$image" >/dev/null
}

# start_dockerd starts a dockerd of our own, with its own containerd, data
# root, exec root, socket and cgroup parent, and berth's runtime registered
# as "berth", and waits until it answers.
start_dockerd() {
	local d=$work/docker
	mkdir -p "$d" && echo '{}' >"$d/daemon.json" || return 1
	dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
		--pidfile "$d/dockerd.pid" -H "unix://$d/docker.sock" --log-level debug \
		--iptables=false --ip6tables=false --bridge=none --cgroup-parent "/$name-docker" \
		--add-runtime "berth=$work/docker-runtime" >"$d/dockerd.log" 2>&1 </dev/null &
	dockerd_pid=$!
	if ! wait_for 60 e version; then
		echo "dockerd did not answer within 60s; its log ends:"
		tail -n 20 "$d/dockerd.log"
		return 1
	fi
}

# stop_dockerd ends our dockerd (it stops its containerd) and waits for it.
stop_dockerd() {
	[ -n "$dockerd_pid" ] || return 0
	kill -TERM "$dockerd_pid" 2>/dev/null
	if ! wait_for 30 not_alive "$dockerd_pid"; then
		echo "run.sh: dockerd $dockerd_pid did not stop in 30s, killing it" >&2
		kill -KILL "$dockerd_pid" 2>/dev/null
	fi
	wait "$dockerd_pid" 2>/dev/null
	dockerd_pid=
}

not_alive() {
	! kill -0 "$1" 2>/dev/null
}

# wait_for SECONDS COMMAND... runs COMMAND every 0.1s until it succeeds
# (0) or SECONDS have passed (1). COMMAND's output is discarded.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
}

# ms prints a clock in milliseconds, for durations.
ms() {
	echo $(($(date +%s%N) / 1000000))
}

# want DESCRIPTION GOT WANT fails with a message unless GOT is WANT.
want() {
	[ "$2" = "$3" ] && return 0
	printf '%s: got %q, want %q\n' "$1" "$2" "$3"
	return 1
}

# want_line DESCRIPTION TEXT LINE fails unless a line of TEXT is LINE.
want_line() {
	grep -qxF -- "$3" <<<"$2" && return 0
	printf '%s: no line %q in:\n%s\n' "$1" "$3" "$2"
	return 1
}

# detach RUN-ARGS... starts a detached container and sets id to its ID.
# The container is removed when the check (a subshell) exits.
started=()
id=
detach() {
	local out
	if ! out=$(erun -d "$@" 2>&1); then
		printf 'run -d %s failed:\n%s\n' "$*" "$out"
		return 1
	fi
	id=$(tail -n 1 <<<"$out")
	started+=("$id")
	trap 'remove "${started[@]}"' EXIT
}

# inspect ID FORMAT prints a field of the container.
inspect() {
	e inspect -f "$2" "$1"
}

# host_cgroup ID CONTROLLER prints the directory of the container's cgroup
# of a v1 controller on the host, and fails unless it is under this
# engine's cgroup parent.
host_cgroup() {
	local pid path
	pid=$(inspect "$1" '{{.State.Pid}}') || return 1
	path=$(awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$pid/cgroup")
	case $path in
	"/$name-$engine"/*) echo "/sys/fs/cgroup/$2$path" ;;
	*)
		echo "container $1 (pid $pid) is in $2 cgroup '$path', not under /$name-$engine"
		return 1
		;;
	esac
}

# tx runs tmux on our own server.
tx() {
	tmux -S "$work/tmux.sock" -f "$work/tmux.conf" "$@"
}

# interact KEYS COMMAND... runs COMMAND in a new 120x40 terminal, waits for
# a busybox shell prompt ("/ # "), types KEYS and Enter, and waits until
# COMMAND ends. It prints the screen, whose last line is "exit status N"
# for COMMAND.
interact() {
	local keys=$1 session=s$RANDOM
	shift
	[ -e "$work/tmux.conf" ] || printf 'set -g status off\nset -g remain-on-exit on\n' >"$work/tmux.conf"
	tx new-session -d -s "$session" -x 120 -y 40 "$(printf '%q ' "$@"); echo \"exit status \$?\"" || return 1
	if ! wait_for 30 screen_matches "$session" '^/ #'; then
		echo "no shell prompt within 30s; the terminal shows:"
		tx capture-pane -p -t "$session"
		tx kill-session -t "$session"
		return 1
	fi
	tx send-keys -t "$session" -l "$keys" && tx send-keys -t "$session" Enter
	if ! wait_for 30 pane_dead "$session"; then
		echo "still running 30s after typing $keys; the terminal shows:"
		tx capture-pane -p -t "$session"
		tx kill-session -t "$session"
		return 1
	fi
	tx capture-pane -p -t "$session" | grep -v '^$'
	tx kill-session -t "$session"
}

screen_matches() {
	tx capture-pane -p -t "$1" | grep -q -- "$2"
}

pane_dead() {
	[ "$(tx display-message -p -t "$1" '#{pane_dead}')" = 1 ]
}

# check NAME FUNCTION [ARGS...] runs a check in a subshell and reports it.
# A failure shows the check's output and the runtime command lines the
# engine ran meanwhile, with their exit status. A check that returns 77
# cannot run on this host, and says why.
check() {
	local label=$engine/$1
	shift
	[[ $label =~ $run_pattern ]] || return 0
	local mark start out rc
	mark=$(wc -l <"$rtlog")
	start=$(ms)
	out=$("$@" 2>&1)
	rc=$?
	local took=$((($(ms) - start) / 100))
	took="$((took / 10)).$((took % 10))s"
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok    $label ($took)"
		return 0
	fi
	if [ $rc -eq 77 ]; then
		skipped=$((skipped + 1))
		echo "skip  $label: $out"
		return 0
	fi
	failed=$((failed + 1))
	failed_names+=("$label")
	echo "FAIL  $label ($took)"
	sed 's/^/      /' <<<"$out"
	echo "      runtime command lines meanwhile ($rtlog):"
	tail -n "+$((mark + 1))" "$rtlog" | sed 's/^/        /'
	return 1
}

# setup_check FUNCTION runs an engine's setup in this shell (it sets the
# engine's variables) and reports it like a check.
setup_check() {
	local label=$engine/setup out=$work/setup.out
	if "$1" >"$out" 2>&1; then
		passed=$((passed + 1))
		echo "ok    $label"
		grep '^note:' "$out" | sed 's/^/      /'
		return 0
	fi
	failed=$((failed + 1))
	failed_names+=("$label")
	echo "FAIL  $label: the other $engine checks are skipped"
	sed 's/^/      /' "$out"
	return 1
}

# remove ID... removes containers, killing them first if they run.
remove() {
	case $engine in
	podman) e rm -f -t 0 "$@" ;;
	docker) e rm -f "$@" ;;
	esac >/dev/null 2>&1
}

# remove_all removes every container of the engine under test.
remove_all() {
	local ids
	ids=$(e ps -aq 2>/dev/null) || return 0
	# shellcheck disable=SC2086 # one ID a word
	[ -z "$ids" ] || remove $ids
}

# cleanup ends what the run started, whether it passed, failed or was
# interrupted: containers, dockerd and containerd, leftover processes
# (found by their cgroup under our parents, or by our work directory on
# their command line: conmon, containerd shims), mounts under the work
# directory, our cgroups, tmux, the work directory and the host files the
# engines created. It fails if something could not be removed.
cleanup() {
	local status=0 e_saved=$engine
	if [ -n "${BERTH_COMPAT_LOGS:-}" ]; then
		mkdir -p "$BERTH_COMPAT_LOGS" &&
			cp "$work"/*-runtime.log "$work/docker/dockerd.log" "$BERTH_COMPAT_LOGS/" 2>/dev/null
	fi
	for engine in podman docker; do
		if [ "$engine" = podman ] && [ ${#podman_cmd[@]} -gt 0 ]; then remove_all; fi
		if [ "$engine" = docker ] && [ -n "$dockerd_pid" ]; then remove_all; fi
	done
	engine=$e_saved
	stop_dockerd
	tx kill-server >/dev/null 2>&1
	kill_leftovers
	unmount_under "$work" || status=1
	remove_cgroups || status=1
	rm -rf "$work" || status=1
	remove_created_paths
	return $status
}

# remove_created_paths removes the host paths the engines created: the
# files, and the directories if nothing else uses them.
remove_created_paths() {
	local p
	for p in "${created_paths[@]}"; do
		case $p in
		/run/containerd) rmdir /run/containerd/s /run/containerd 2>/dev/null ;;
		/var/lib/containers) rm -rf /var/lib/containers/cache && rmdir /var/lib/containers ;;
		*) rm -f "$p" ;;
		esac
	done
}

# kill_leftovers kills the processes in our cgroups, then those with our
# work directory on their command line, by PID.
kill_leftovers() {
	local pids=() f pid
	for f in /sys/fs/cgroup/*/"$name"-*/; do
		[ -d "$f" ] || continue
		while read -r pid; do
			pids+=("$pid")
		done < <(find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null)
	done
	local cmdline
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		[ "$pid" = $$ ] && continue
		{ cmdline=$(tr '\0' ' ' <"$f"); } 2>/dev/null
		[[ $cmdline == *"$work/"* ]] && pids+=("$pid")
	done
	[ ${#pids[@]} -eq 0 ] && return 0
	echo "run.sh: killing leftover processes ${pids[*]}" >&2
	kill -KILL "${pids[@]}" 2>/dev/null
	sleep 0.5
}

# unmount_under DIR unmounts every mount at or below DIR, deepest first.
unmount_under() {
	local m status=0
	while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" || status=1
	done < <(findmnt -rn -o TARGET | grep -E "^$1(/|$)" | sort -r)
	return $status
}

# remove_cgroups removes the cgroup parents the engines created for us
# (/<name>-podman, /<name>-docker in every hierarchy), deepest first.
remove_cgroups() {
	local d status=0
	for d in /sys/fs/cgroup/*/"$name"-*/ /sys/fs/cgroup/"$name"-*/; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
		if [ -d "$d" ]; then
			echo "run.sh: could not remove cgroup $d" >&2
			status=1
		fi
	done
	return $status
}
