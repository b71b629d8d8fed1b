# shellcheck shell=bash
# The checks of run.sh. Each c_* function runs in a subshell for one engine
# (see e, erun and detach in lib.sh), prints what went wrong and returns
# non-zero on failure. Containers it starts with detach are removed when it
# returns.

podman_checks() {
	engine=podman
	if ! setup_check podman_setup; then
		return 0
	fi
	common_checks
	# Not c_oom: Podman 4.3's conmon does not see an OOM kill of PID 1
	# on this cgroup v1 host (State.OOMKilled stays false with runc too).
	check init c_init podman-init --init --init-path /usr/bin/catatonit
	check user-namespace c_user_namespace
	check nothing-left c_nothing_left
}

docker_checks() {
	engine=docker
	if ! setup_check docker_setup; then
		stop_dockerd
		return 0
	fi
	common_checks
	check oom c_oom
	check init c_init docker-init --init
	check top c_top
	check nothing-left c_nothing_left
	remove_all
	stop_dockerd
}

common_checks() {
	check run c_run
	check exit-status c_exit_status
	check missing-command c_missing_command
	check stdin c_stdin
	check tty c_tty
	check logs c_logs
	check exec c_exec
	check exec-tty c_exec_tty
	check stop c_stop
	check stop-timeout c_stop_timeout
	check kill-signal c_kill_signal
	check kill c_kill
	check pause c_pause
	check restart c_restart
	check memory c_memory
	check cpu-pids c_cpu_pids
	check update c_update
	check oom-child c_oom_child
	check process-options c_process_options
	check capabilities c_capabilities
	check privileged c_privileged
	check device c_device
	check bind-mount c_bind_mount
	check kernel-settings c_kernel_settings
	check seccomp c_seccomp
	check join-pid-namespace c_join_pid
}

c_run() {
	local out
	out=$(erun --rm "$image" echo hello) || {
		echo "$out"
		return 1
	}
	want output "$out" hello
}

c_exit_status() {
	erun --rm "$image" sh -c 'exit 3'
	want "exit status of sh -c 'exit 3'" $? 3
}

# Engines tell a command that is not there (127) from one that cannot be
# run (126) by the runtime's error message, as runc words it.
c_missing_command() {
	local rc
	erun --rm "$image" /no/such/command
	rc=$?
	want "exit status of a missing command" $rc 127 || return 1
	erun --rm "$image" /etc/passwd
	rc=$?
	want "exit status of a file that is not executable" $rc 126
}

c_stdin() {
	local out
	out=$(echo from-stdin | erun -i --rm "$image" cat)
	want "cat of stdin" "$out" from-stdin
}

# c_tty runs an interactive shell on a terminal, types into it and reads
# the screen: the terminal's size must be the outer terminal's.
c_tty() {
	local screen
	screen=$(interact 'stty size; echo $((6*7)); tty; exit 7' \
		"${e_cmd[@]}" run -it --rm "${run_flags[@]}" "$image" sh) || {
		echo "$screen"
		return 1
	}
	want_line "42 on the screen" "$screen" 42 &&
		want_line "tty" "$screen" /dev/pts/0 &&
		want_line "stty size" "$screen" "40 120" &&
		want_line "exit status" "$screen" "exit status 7"
}

c_logs() {
	local code out
	detach "$image" sh -c 'echo to-stdout; echo to-stderr >&2' || return 1
	code=$(e wait "$id") || return 1
	want "exit status" "$code" 0 || return 1
	out=$(e logs "$id" 2>&1)
	want_line logs "$out" to-stdout && want_line logs "$out" to-stderr
}

c_exec() {
	local out rc
	detach "$image" sleep 300 || return 1
	out=$(e exec -u 1000:1000 -e X=from-exec -w /tmp "$id" sh -c 'echo $(id -u):$(id -g) $X $(pwd)')
	want "exec output" "$out" "1000:1000 from-exec /tmp" || return 1
	e exec "$id" sh -c 'exit 4'
	rc=$?
	want "exit status of exec sh -c 'exit 4'" $rc 4 || return 1
	out=$(echo piped | e exec -i "$id" cat)
	want "exec -i cat" "$out" piped
}

c_exec_tty() {
	local screen
	detach "$image" sleep 300 || return 1
	screen=$(interact 'stty size; echo $((6*7)); tty; exit 6' "${e_cmd[@]}" exec -it "$id" sh) || {
		echo "$screen"
		return 1
	}
	want_line "42 on the screen" "$screen" 42 &&
		want_line "tty" "$screen" /dev/pts/0 &&
		want_line "stty size" "$screen" "40 120" &&
		want_line "exit status" "$screen" "exit status 6"
}

# wait_ready ID waits until the container has created /tmp/ready.
wait_ready() {
	if ! wait_for 20 e exec "$1" test -e /tmp/ready; then
		echo "container $1 never created /tmp/ready"
		return 1
	fi
}

# c_stop: a process that handles SIGTERM ends at once, with its own status.
c_stop() {
	local start took code
	detach "$image" sh -c 'trap "exit 7" TERM; touch /tmp/ready; while :; do sleep 0.1; done' || return 1
	wait_ready "$id" || return 1
	start=$(ms)
	e stop -t 20 "$id" >/dev/null || return 1
	took=$(($(ms) - start))
	if [ $took -ge 10000 ]; then
		echo "stop took ${took}ms: SIGTERM did not reach the trap"
		return 1
	fi
	code=$(inspect "$id" '{{.State.ExitCode}}')
	want "exit status after stop" "$code" 7
}

# c_stop_timeout: PID 1 without a handler ignores SIGTERM; the engine
# sends SIGKILL when the stop timeout ends.
c_stop_timeout() {
	local start took code
	detach "$image" sleep 300 || return 1
	start=$(ms)
	e stop -t 2 "$id" >/dev/null || return 1
	took=$(($(ms) - start))
	if [ $took -lt 1900 ] || [ $took -ge 15000 ]; then
		echo "stop -t 2 took ${took}ms, want about 2s"
		return 1
	fi
	code=$(inspect "$id" '{{.State.ExitCode}}')
	want "exit status after SIGKILL" "$code" 137
}

c_kill_signal() {
	local code
	detach "$image" sh -c 'trap "exit 12" USR1; touch /tmp/ready; while :; do sleep 0.1; done' || return 1
	wait_ready "$id" || return 1
	e kill -s USR1 "$id" >/dev/null || return 1
	code=$(e wait "$id")
	want "exit status after SIGUSR1" "$code" 12
}

c_kill() {
	local code
	detach "$image" sleep 300 || return 1
	e kill "$id" >/dev/null || return 1
	code=$(e wait "$id")
	want "exit status after kill" "$code" 137
}

c_pause() {
	local dir status out
	detach "$image" sleep 300 || return 1
	dir=$(host_cgroup "$id" freezer) || {
		echo "$dir"
		return 1
	}
	e pause "$id" >/dev/null || return 1
	status=$(inspect "$id" '{{.State.Status}}')
	want "status after pause" "$status" paused || return 1
	want "host freezer.state after pause" "$(cat "$dir/freezer.state")" FROZEN || return 1
	e unpause "$id" >/dev/null || return 1
	status=$(inspect "$id" '{{.State.Status}}')
	want "status after unpause" "$status" running || return 1
	want "host freezer.state after unpause" "$(cat "$dir/freezer.state")" THAWED || return 1
	out=$(e exec "$id" echo alive)
	want "exec after unpause" "$out" alive
}

c_restart() {
	local pid1 pid2 status out
	detach "$image" sh -c 'echo started; exec sleep 300' || return 1
	pid1=$(inspect "$id" '{{.State.Pid}}')
	e restart -t 1 "$id" >/dev/null || return 1
	pid2=$(inspect "$id" '{{.State.Pid}}')
	status=$(inspect "$id" '{{.State.Status}}')
	want "status after restart" "$status" running || return 1
	if [ "$pid1" = "$pid2" ] || [ "$pid2" = 0 ]; then
		echo "pid before restart $pid1, after $pid2: want a new process"
		return 1
	fi
	wait_for 10 logs_count "$id" started 2 || {
		echo "logs after restart, want 'started' twice:"
		e logs "$id"
		return 1
	}
}

# logs_count ID TEXT N succeeds if N lines of the container's logs are TEXT.
logs_count() {
	[ "$(e logs "$1" 2>&1 | grep -cxF -- "$2")" = "$3" ]
}

c_memory() {
	local dir out
	detach --memory 64m "$image" sleep 300 || return 1
	dir=$(host_cgroup "$id" memory) || {
		echo "$dir"
		return 1
	}
	want "host memory.limit_in_bytes" "$(cat "$dir/memory.limit_in_bytes")" 67108864 || return 1
	out=$(e exec "$id" cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
	want "memory.limit_in_bytes seen in the container" "$out" 67108864
}

c_cpu_pids() {
	local cpu pids
	detach --cpus 0.5 --cpu-shares 512 --pids-limit 20 "$image" sleep 300 || return 1
	cpu=$(host_cgroup "$id" cpu) || {
		echo "$cpu"
		return 1
	}
	pids=$(host_cgroup "$id" pids) || {
		echo "$pids"
		return 1
	}
	want "host cpu.cfs_quota_us" "$(cat "$cpu/cpu.cfs_quota_us")" 50000 &&
		want "host cpu.cfs_period_us" "$(cat "$cpu/cpu.cfs_period_us")" 100000 &&
		want "host cpu.shares" "$(cat "$cpu/cpu.shares")" 512 &&
		want "host pids.max" "$(cat "$pids/pids.max")" 20
}

# c_update changes the limits of a running container: the engine runs
# the runtime's update command.
c_update() {
	local mem cpu
	detach --memory 64m --cpu-shares 512 "$image" sleep 300 || return 1
	mem=$(host_cgroup "$id" memory) || {
		echo "$mem"
		return 1
	}
	cpu=$(host_cgroup "$id" cpu) || {
		echo "$cpu"
		return 1
	}
	e update --memory 128m --memory-swap 256m --cpu-shares 256 "$id" >/dev/null || return 1
	want "host memory.limit_in_bytes after update" "$(cat "$mem/memory.limit_in_bytes")" 134217728 &&
		want "host memory.memsw.limit_in_bytes after update" "$(cat "$mem/memory.memsw.limit_in_bytes")" 268435456 &&
		want "host cpu.shares after update" "$(cat "$cpu/cpu.shares")" 256
}

# c_oom_child: tail of /dev/zero (no newline) keeps all it reads in
# memory until the kernel kills it; the shell, PID 1, survives and reports
# it. The container's cgroup counts the kill (oom_kill in
# memory.oom_control).
c_oom_child() {
	local dir out
	detach --memory 32m --memory-swap 32m "$image" sh -c 'tail /dev/zero; echo "tail ended $?"; exec sleep 300' || return 1
	dir=$(host_cgroup "$id" memory) || {
		echo "$dir"
		return 1
	}
	if ! wait_for 20 logs_count "$id" "tail ended 137" 1; then
		echo "want 'tail ended 137' in the logs, got:"
		e logs "$id" 2>&1
		return 1
	fi
	out=$(awk '$1 == "oom_kill" { print $2 }' "$dir/memory.oom_control")
	want "oom_kill in the container's memory.oom_control" "$out" 1
}

# c_oom: the container's PID 1 is killed for lack of memory: exit status
# 137 and State.OOMKilled.
c_oom() {
	local code oom
	detach --memory 32m --memory-swap 32m "$image" tail /dev/zero || return 1
	code=$(e wait "$id")
	want "exit status of the OOM-killed container" "$code" 137 || return 1
	oom=$(inspect "$id" '{{.State.OOMKilled}}')
	want "State.OOMKilled" "$oom" true
}

c_process_options() {
	local out
	out=$(erun --rm --user 1000:1000 -w /tmp -e FOO=bar --hostname berthbox --read-only --tmpfs /scratch "$image" \
		sh -c 'echo $(id -u):$(id -g) $(pwd) $FOO $(hostname); if touch /x 2>/dev/null; then echo rw; else echo ro; fi; touch /scratch/y && echo scratch-rw')
	want output "$out" "1000:1000 /tmp bar berthbox
ro
scratch-rw"
}

c_capabilities() {
	local out
	out=$(erun --rm --cap-drop ALL "$image" grep CapEff /proc/self/status)
	want "--cap-drop ALL" "$out" "CapEff:	0000000000000000" || return 1
	out=$(erun --rm --cap-drop ALL --cap-add NET_ADMIN "$image" grep CapEff /proc/self/status)
	want "--cap-drop ALL --cap-add NET_ADMIN" "$out" "CapEff:	0000000000001000"
}

# c_privileged: all the capabilities the engine knows and the host
# allows, and the host's devices. Podman grants its own bounding set;
# Docker 20.10 all 38 capabilities up to CAP_AUDIT_READ, whether the host
# has them or not.
c_privileged() {
	local out caps
	caps=0x$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
	if [ "$engine" = docker ]; then
		if ! has_cap_sys_resource; then
			echo "skipped: CAP_SYS_RESOURCE is not in this host's bounding set, and docker --privileged asks for it (runc fails too)"
			return 77
		fi
		caps=$((caps & 0x3fffffffff))
	fi
	out=$(erun --rm --privileged "$image" sh -c 'grep CapEff /proc/self/status; test -c /dev/kmsg && echo kmsg')
	want "--privileged" "$out" "$(printf 'CapEff:\t%016x\nkmsg' $((caps)))"
}

c_device() {
	local out
	out=$(erun --rm --device /dev/zero:/dev/myzero "$image" sh -c 'head -c 5 /dev/myzero | wc -c')
	want "bytes read from --device /dev/zero:/dev/myzero" "$out" 5
}

# c_bind_mount: a host directory read and written through a bind mount,
# and refused through a read-only one.
c_bind_mount() {
	local dir=$work/volume-$engine out
	mkdir -p "$dir" && echo from-host >"$dir/in" || return 1
	out=$(erun --rm -v "$dir:/data" -v "$dir:/ro:ro" "$image" \
		sh -c 'cat /data/in; echo from-container >/data/out; if touch /ro/x 2>/dev/null; then echo ro-writable; fi')
	want "output" "$out" from-host || return 1
	want "file the container wrote" "$(cat "$dir/out" 2>&1)" from-container || return 1
	if [ -e "$dir/x" ]; then
		echo "the container wrote through the read-only mount"
		return 1
	fi
}

# c_kernel_settings: a namespaced sysctl, the OOM score and an rlimit.
c_kernel_settings() {
	local out
	out=$(erun --rm --sysctl kernel.shm_rmid_forced=1 --oom-score-adj 500 --ulimit core=1024:2048 "$image" \
		sh -c 'cat /proc/sys/kernel/shm_rmid_forced /proc/self/oom_score_adj; grep "core file" /proc/self/limits')
	want "output" "$(tr -s ' ' <<<"$out")" "1
500
Max core file size 1024 2048 bytes "
}

# c_seccomp: the engine's default profile is in force, a profile of ours
# (mkdir refused with EPERM) too, and seccomp=unconfined means none.
c_seccomp() {
	local out profile=$work/seccomp-$engine.json
	cat >"$profile" <<-'EOF'
		{"defaultAction": "SCMP_ACT_ALLOW",
		 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
	EOF
	out=$(erun --rm "$image" grep Seccomp: /proc/self/status)
	want "default profile" "$out" "$(printf 'Seccomp:\t2')" || return 1
	out=$(erun --rm --security-opt "seccomp=$profile" "$image" sh -c 'mkdir /tmp/d 2>&1; grep Seccomp: /proc/self/status')
	want "profile refusing mkdir" "$out" "$(printf "mkdir: can't create directory '/tmp/d': Operation not permitted\nSeccomp:\t2")" || return 1
	out=$(erun --rm --security-opt seccomp=unconfined "$image" grep Seccomp: /proc/self/status)
	want "seccomp=unconfined" "$out" "$(printf 'Seccomp:\t0')"
}

# c_join_pid: a container started in another one's PID namespace sees
# its processes.
c_join_pid() {
	local ns out
	detach "$image" sleep 300 || return 1
	ns=$(e exec "$id" readlink /proc/1/ns/pid) || return 1
	out=$(erun --rm --pid "container:$id" "$image" sh -c 'readlink /proc/self/ns/pid; ps -o args | grep -x "sleep 300"')
	want "PID namespace and processes" "$out" "$ns
sleep 300"
}

# c_user_namespace: podman --uidmap runs the container in a new user
# namespace; its root is uid 100000 on the host.
c_user_namespace() {
	local out pid owner
	detach --uidmap 0:100000:65536 --gidmap 0:100000:65536 "$image" sleep 300 || return 1
	out=$(e exec "$id" sh -c 'id -u; cat /proc/self/uid_map' | tr -s ' ')
	want "uid and uid_map" "$out" "0
 0 100000 65536" || return 1
	pid=$(inspect "$id" '{{.State.Pid}}')
	owner=$(stat -c %u "/proc/$pid")
	want "owner of the container's PID 1 on the host" "$owner" 100000
}

# c_init COMM RUN-ARGS...: with the engine's init as PID 1, the command's
# exit status still comes through.
c_init() {
	local comm=$1 out rc
	shift
	out=$(erun --rm "$@" "$image" sh -c 'cat /proc/1/comm; exit 5')
	rc=$?
	want "PID 1" "$out" "$comm" && want "exit status through the init" $rc 5
}

# c_top: docker top asks the runtime (`ps --format json`) for the pids.
c_top() {
	local out
	detach "$image" sleep 300 || return 1
	out=$(e top "$id")
	grep -q 'sleep 300' <<<"$out" && return 0
	echo "top does not show sleep 300:"
	echo "$out"
	return 1
}

# c_nothing_left removes every container and then looks for what the
# runtime should have removed: container cgroups (under the engine's
# parent; podman keeps conmon's) and the runtime's state of every
# container the engine created.
c_nothing_left() {
	local left ids cid status=0
	remove_all
	left=$(find /sys/fs/cgroup/*/"$name-$engine" -mindepth 1 -type d ! -name conmon 2>/dev/null)
	if [ -n "$left" ]; then
		echo "cgroups left after every container was removed:"
		echo "$left"
		status=1
	fi
	ids=$(awk '$3 == ">" { for (i = 4; i < NF; i++) if ($i == "create") print $NF }' "$rtlog" | sort -u)
	for cid in $ids; do
		if runtime_state "$cid" >/dev/null 2>&1; then
			echo "runtime state of removed container $cid is still there:"
			runtime_state "$cid"
			status=1
		fi
	done
	return $status
}

# runtime_state ID asks the runtime for a container's state with the
# --root the engine used.
runtime_state() {
	local root
	root=$(awk -v id="$1" '$3 == ">" && $NF == id { for (i = 4; i < NF; i++) if ($i == "--root") print $(i + 1) }' "$rtlog" | head -n 1)
	if [ -n "$root" ]; then
		"$work/runtime" --root "$root" state "$1"
	else
		"$work/runtime" state "$1"
	fi
}
