#!/usr/bin/env bash
# A private Docker Engine (dockerd 28 from scripts/platforms.sh) in front of the private
# containerd 2.1 of scripts/containerd.sh.
#
# dockerd is entered with nsenter into that containerd's mount, network and pid namespaces:
# the mounts it makes (containers' /dev/shm, its data root) must be seen by containerd and the
# shims, and whatever it does to networks stays in the private network namespace (and it is
# told to do nothing: no bridge, no iptables). Its state (data root, exec root, socket,
# daemon.json, log) is under one directory on the host filesystem, so the `docker` CLI on the
# host reaches its socket. Images are kept in containerd's content store (the containerd image
# store, "moby" namespace), as Wasm images need.
#
# dockerd makes its plugins' directory /run/docker/plugins whatever its flags say: a tmpfs
# mounted over /run/docker inside the namespace keeps it there. The empty directory it is
# mounted on is made on the host if missing and never removed: removing it would also detach
# the tmpfs of any other private dockerd.
#
# Usage: scripts/dockerd.sh start|stop|env|status
#        scripts/dockerd.sh run COMMAND [ARGS...]
#   run: start dockerd, run COMMAND with the environment `env` prints, then stop dockerd
#   whatever happened (also on SIGINT/SIGTERM); exits with COMMAND's status.
#   The private containerd must be running: scripts/containerd.sh run scripts/dockerd.sh run ...
#
# Environment:
#   WASM_SHIMS_CONTAINERD     must be 2.1 (the containerd Docker runs on here)
#   WASM_SHIMS_STATE          the private containerd's state dir (as for scripts/containerd.sh)
#   WASM_SHIMS_DOCKER_STATE   dockerd's state dir (default <containerd state dir>/docker)
#   SHIM_BIN_DIR              the shims (as for scripts/containerd.sh), named by absolute
#                             path in daemon.json
#   WASM_SHIMS_DOCKER_CGROUP_DRIVER  cgroupfs (default) or systemd: dockerd's cgroup driver
#                             (several dockerds, each with its own state dir, can share the
#                             private containerd)
#   WASM_SHIMS_START_TIMEOUT  seconds to wait for dockerd to answer (default 30)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
start_timeout=${WASM_SHIMS_START_TIMEOUT:-30}
cgroup_driver=${WASM_SHIMS_DOCKER_CGROUP_DRIVER:-cgroupfs}
# dockerd stops running containers before it exits (its default shutdown timeout is 15s).
readonly stop_timeout=30
# Where scripts/containerd.sh puts the shims on containerd's PATH.
shim_dir=$(realpath -m "${SHIM_BIN_DIR:-${CARGO_TARGET_DIR:-$repo_root/target}/release}")
lock_fd=

say() { printf 'dockerd.sh: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

[[ ${WASM_SHIMS_CONTAINERD:-} == 2.1 ]] ||
	die "the private dockerd runs on containerd 2.1: set WASM_SHIMS_CONTAINERD=2.1 (for scripts/containerd.sh too)"

# The private containerd, as scripts/containerd.sh env describes it.
containerd_env=$("$script_dir/containerd.sh" env) ||
	die "the private containerd 2.1 is not running: scripts/containerd.sh start (or run) first"
eval "$containerd_env"
containerd_socket=$CONTAINERD_ADDRESS
containerd_pid=$WASM_SHIMS_CONTAINERD_PID

state_dir=$(realpath -m "${WASM_SHIMS_DOCKER_STATE:-$(dirname "$containerd_socket")/docker}")
readonly config_file=$state_dir/daemon.json
readonly socket=$state_dir/docker.sock
readonly log_file=$state_dir/dockerd.log
readonly data_root=$state_dir/data
readonly exec_root=$state_dir/exec
# The CLI's own config (contexts, auth): kept here rather than in the user's ~/.docker.
readonly cli_config=$state_dir/cli

platform_dir() {
	local dir
	dir=$("$script_dir/platforms.sh" dir "$1" 2>/dev/null) ||
		{ "$script_dir/platforms.sh" fetch >&2 && dir=$("$script_dir/platforms.sh" dir "$1"); } ||
		die "$1 is not available (scripts/platforms.sh fetch failed)"
	echo "$dir"
}
dockerd_root=$(platform_dir dockerd-28)
cli_dir=$(platform_dir docker-cli-28)/usr/bin

docker() {
	DOCKER_CONFIG=$cli_config "$cli_dir/docker" --host "unix://$socket" "$@"
}

dockerd_answers() {
	DOCKER_CONFIG=$cli_config timeout 5 "$cli_dir/docker" --host "unix://$socket" version >/dev/null 2>&1
}

# The engines whose runtimes daemon.json names (a shim that is not built fails only when used).
readonly engines=(wasmtime wamr wasmedge)

# The runtimes users name in daemon.json, for each engine: its name for the runtime type
# (`--runtime wasmtime`), and `<engine>-by-path` for the form that gives the shim binary's
# absolute path.
write_config() {
	local tmp=$config_file.tmp engine separator=
	{
		printf '{\n  "features": { "containerd-snapshotter": true },\n  "runtimes": {'
		for engine in "${engines[@]}"; do
			printf '%s\n    "%s": { "runtimeType": "io.containerd.%s.v1" },' "$separator" "$engine" "$engine"
			printf '\n    "%s-by-path": { "runtimeType": "%s/containerd-shim-%s-v1" }' "$engine" "$shim_dir" "$engine"
			separator=,
		done
		printf '\n  }\n}\n'
	} >"$tmp"
	mv "$tmp" "$config_file"
}

# Prints the inode number of a process's pid namespace.
pid_namespace_of() {
	local link
	link=$(readlink "/proc/$1/ns/pid") || return 1
	link=${link#pid:[}
	echo "${link%]}"
}

# Prints the host pids of the dockerds in containerd's pid namespace.
dockerds_in_namespace() {
	local ns
	ns=$(pid_namespace_of "$containerd_pid") || return 0
	ps -e -o pid=,pidns=,comm= | awk -v ns="$ns" '$2 == ns && $3 == "dockerd" { print $1 }'
}

# Prints the host pid of this state dir's dockerd, if any. Its --pidfile holds the pid
# inside the namespace, which is no use from here.
find_dockerd() {
	local pid
	for pid in $(dockerds_in_namespace); do
		if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$data_root"; then
			echo "$pid"
			return 0
		fi
	done
	return 1
}

# True while pid runs the named program; a zombie counts as gone.
is_running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	[[ $stat == "$1 ($2) "* && $stat != "$1 ($2) Z"* ]]
}

# Runs a command in containerd's mount namespace (and pid namespace: its /proc is mounted
# for that one, and umount reads /proc/self).
in_namespace() {
	nsenter --target "$containerd_pid" --mount --pid -- "$@"
}

# Mount points in containerd's mount namespace at or below path, deepest first.
namespace_mounts_under() {
	awk -v dir="$1" '$5 == dir || index($5, dir "/") == 1 { print $5 }' \
		"/proc/$containerd_pid/mountinfo" | sort -r
}

private_run_docker() {
	[[ -n $(namespace_mounts_under /run/docker) ]] && return 0
	mkdir -p /run/docker
	in_namespace mount -t tmpfs -o mode=0700 wasm-shims-docker /run/docker
}

launch_dockerd() {
	local deadline nsenter_pid
	rm -f "$socket"
	mkdir -p "$data_root" "$exec_root"
	(
		# dockerd refuses to start without docker-proxy on its PATH, which comes from the same
		# package. (Its docker-init is a link to tini's binary, which is not unpacked:
		# `docker run --init` is not available.)
		PATH="$dockerd_root/usr/sbin:$PATH" exec setsid \
			nsenter --target "$containerd_pid" --mount --net --pid -- \
			"$dockerd_root/usr/sbin/dockerd" \
			--config-file "$config_file" \
			--data-root "$data_root" \
			--exec-root "$exec_root" \
			--pidfile "$state_dir/dockerd.pid" \
			--host "unix://$socket" \
			--containerd "$containerd_socket" \
			--bridge none --iptables=false --ip6tables=false \
			--exec-opt "native.cgroupdriver=$cgroup_driver" \
			</dev/null >>"$log_file" 2>&1 {lock_fd}>&-
	) &
	nsenter_pid=$!
	disown

	deadline=$((SECONDS + start_timeout))
	until dockerd_answers; do
		kill -0 "$nsenter_pid" 2>/dev/null ||
			die "dockerd exited at start; last lines of $log_file:
$(tail -n 30 "$log_file")"
		if ((SECONDS > deadline)); then
			kill -KILL "$(find_dockerd)" 2>/dev/null || true
			die "dockerd did not answer on $socket within ${start_timeout}s; last lines of $log_file:
$(tail -n 30 "$log_file")"
		fi
		sleep 0.2
	done
}

cmd_start() {
	mkdir -p "$state_dir"
	write_config
	private_run_docker
	if ! find_dockerd >/dev/null; then
		launch_dockerd
	fi
	say "dockerd $(dockerd_version) running: pid $(find_dockerd), socket $socket, log $log_file"
}

dockerd_version() {
	"$dockerd_root/usr/sbin/dockerd" --version | awk '{ print $3 }' | tr -d ,
}

# Stops dockerd politely (it stops its containers first); then nothing of it may remain
# mounted in the namespace. Fails when something had to be cleaned up after it.
cmd_stop() {
	local pid nsenter_pid deadline mnt leftovers=0
	if pid=$(find_dockerd); then
		nsenter_pid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status")
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + stop_timeout))
		while is_running "$pid" dockerd && ((SECONDS <= deadline)); do sleep 0.1; done
		if is_running "$pid" dockerd; then
			say "dockerd (pid $pid) still running ${stop_timeout}s after SIGTERM, killing it"
			kill -KILL "$pid" 2>/dev/null || true
			leftovers=1
		fi
		while is_running "$pid" dockerd || is_running "$nsenter_pid" nsenter; do sleep 0.05; done
	fi
	while read -r mnt; do
		[[ -n $mnt ]] || continue
		say "dockerd left $mnt mounted in the namespace: unmounting it"
		in_namespace umount --lazy "$mnt"
		leftovers=1
	done < <(namespace_mounts_under "$state_dir")
	# The tmpfs on /run/docker goes with the last dockerd of the namespace.
	if [[ -z $(dockerds_in_namespace) && -n $(namespace_mounts_under /run/docker) ]]; then
		in_namespace umount --recursive /run/docker
	fi
	rm -f "$socket"
	say "stopped"
	return "$leftovers"
}

cmd_env() {
	find_dockerd >/dev/null || die "not running: run scripts/dockerd.sh start"
	printf 'export DOCKER_HOST=%q\n' "unix://$socket"
	printf 'export DOCKER_CONFIG=%q\n' "$cli_config"
	# shellcheck disable=SC2016 # $PATH is for the shell that evaluates this
	printf 'export PATH=%q:"$PATH"\n' "$cli_dir"
	printf 'export WASM_SHIMS_DOCKER_VERSION=%q\n' "$(docker version --format '{{.Server.Version}}')"
}

cmd_status() {
	local pid
	pid=$(find_dockerd) || {
		echo "stopped (state dir $state_dir)"
		return 3
	}
	echo "dockerd: pid $pid, socket $socket, log $log_file"
	if dockerd_answers; then echo "dockerd: answering"; else
		echo "dockerd: not answering"
		return 1
	fi
}

# Serializes start and stop on one state dir, as scripts/containerd.sh does.
lock_state_dir() {
	mkdir -p "$state_dir"
	exec {lock_fd}>"$state_dir/lock"
	flock "$lock_fd"
}

cmd_run() {
	(($# > 0)) || die "usage: $0 run COMMAND [ARGS...]"
	trap run_finished EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	"$script_dir/dockerd.sh" start
	local env_exports
	env_exports=$("$script_dir/dockerd.sh" env)
	eval "$env_exports"
	"$@"
}

run_finished() {
	local status=$?
	trap - EXIT
	if ! "$script_dir/dockerd.sh" stop; then
		say "stopping the private dockerd failed or left something behind"
		((status != 0)) || status=1
	fi
	exit "$status"
}

main() {
	case ${1:-} in
	start) lock_state_dir && cmd_start ;;
	stop) lock_state_dir && cmd_stop ;;
	env) cmd_env ;;
	status) cmd_status ;;
	run) shift && cmd_run "$@" ;;
	*)
		echo "usage: $0 start|stop|env|status|run COMMAND [ARGS...]" >&2
		exit 2
		;;
	esac
}

main "$@"
