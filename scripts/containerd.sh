#!/usr/bin/env bash
# A private containerd for development and tests.
#
# containerd runs inside its own mount, network and pid namespaces, held open by a
# small "holder" process (the namespaces' init). Mounts made by containerd, its shims
# and containers stay inside; killing the holder ends every process in there at once.
# containerd is entered into the namespaces with nsenter, so `restart` can replace
# containerd alone while shims and containers keep running.
#
# Usage: scripts/containerd.sh start|stop|restart|env|status
#        scripts/containerd.sh run COMMAND [ARGS...]
#   run: start containerd, run COMMAND with the environment `env` prints, then stop
#   containerd whatever happened (also on SIGINT/SIGTERM); exits with COMMAND's status.
#
# Environment:
#   WASM_SHIMS_CONTAINERD     which containerd: 1.6 (default: Debian 12's, on PATH), or 1.7
#                             or 2.1 (Debian trixie's and sid's, unpacked by
#                             scripts/platforms.sh fetch, which this runs when needed)
#   WASM_SHIMS_STATE          state dir (default <repo>/target/containerd, or
#                             <repo>/target/containerd-<version> for 1.7 and 2.1)
#   SHIM_BIN_DIR              dir put first on containerd's PATH, where it finds the
#                             shims (default ${CARGO_TARGET_DIR:-<repo>/target}/release)
#   WASM_SHIMS_START_TIMEOUT  seconds to wait for containerd to answer (default 30)
#   WASM_SHIMS_LOG_LEVEL      containerd log level (default info)
#   WASM_SHIM_MAX_MODULE_SIZE the shims' module size limit (default here 32M, room for the
#                             ~20 MB CPython components of componentize-py; the shims'
#                             own default is 128M)
#   WASM_SHIMS_CNI_BIN_DIR    CNI plugins (default /usr/lib/cni, Debian's
#                             containernetworking-plugins)
#   WASM_SHIMS_CRI_LOCAL_PULL containerd 2.x: CRI's use_local_image_pull (default false,
#                             containerd's own: pulls go through its transfer service; true
#                             is what older guides recommend for Wasm images, and make test
#                             checks registry pulls with both)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)

containerd_version=${WASM_SHIMS_CONTAINERD:-1.6}
case $containerd_version in
1.6) default_state=$repo_root/target/containerd ;;
1.7 | 2.1) default_state=$repo_root/target/containerd-$containerd_version ;;
*)
	printf 'containerd.sh: error: WASM_SHIMS_CONTAINERD=%s: use 1.6, 1.7 or 2.1\n' "$containerd_version" >&2
	exit 2
	;;
esac
state_dir=$(realpath -m "${WASM_SHIMS_STATE:-$default_state}")
shim_bin_dir=$(realpath -m "${SHIM_BIN_DIR:-${CARGO_TARGET_DIR:-$repo_root/target}/release}")
start_timeout=${WASM_SHIMS_START_TIMEOUT:-30}
log_level=${WASM_SHIMS_LOG_LEVEL:-info}
max_module_size=${WASM_SHIM_MAX_MODULE_SIZE:-32M}
cni_bin_dir=$(realpath -m "${WASM_SHIMS_CNI_BIN_DIR:-/usr/lib/cni}")
cri_local_pull=${WASM_SHIMS_CRI_LOCAL_PULL:-false}
case $cri_local_pull in
true | false) ;;
*)
	printf 'containerd.sh: error: WASM_SHIMS_CRI_LOCAL_PULL=%s: use true or false\n' "$cri_local_pull" >&2
	exit 2
	;;
esac

readonly namespace=wasm-test
readonly holder_script=$script_dir/namespace-holder.sh
readonly config_file=$state_dir/config.toml
readonly socket=$state_dir/containerd.sock
readonly log_file=$state_dir/containerd.log
readonly holder_log=$state_dir/holder.log
readonly runtime_state=$state_dir/state
readonly cni_conf_dir=$state_dir/cni/net.d
# CRI's registry hosts (one <host>/hosts.toml each): tests that pull from a registry they
# serve themselves (on loopback in containerd's network namespace) write theirs here.
readonly registry_hosts_dir=$state_dir/certs.d
# host-local's address leases: runtime state, void with the namespace like the rest.
readonly cni_lease_dir=$runtime_state/cni-leases
# The CRI plugin's pause container (test-images/pause, built by scripts/build-test-images.sh;
# the cri/ suite imports it into the k8s.io namespace: nothing is ever pulled).
readonly sandbox_image=docker.io/library/wasm-shims-pause:latest
# The pods' bridge network. It exists only inside the private network namespace, so the
# subnet cannot clash with the host's.
readonly pod_bridge=wshims0
readonly pod_subnet=10.213.0.0/24
lock_fd=
# ctr on the host creates its stdio FIFOs here (its default --fifo-dir); the holder
# binds this directory into the private /run/containerd so shims can open them.
readonly host_fifo_dir=/run/containerd/fifo

say() { printf 'containerd.sh: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# The directory of the chosen containerd's binaries (containerd, ctr, containerd-shim-runc-v2),
# fetched for 1.7 and 2.1 on first use.
containerd_bin_dir() {
	if [[ $containerd_version == 1.6 ]]; then
		dirname "$(command -v containerd)"
		return
	fi
	local name=containerd-$containerd_version dir
	dir=$("$script_dir/platforms.sh" dir "$name" 2>/dev/null) ||
		{ "$script_dir/platforms.sh" fetch >&2 && dir=$("$script_dir/platforms.sh" dir "$name"); } ||
		die "containerd $containerd_version is not available (scripts/platforms.sh fetch failed)"
	echo "$dir/usr/bin"
}

# ctr of the chosen containerd.
ctr() {
	"$bin_dir/ctr" "$@"
}

require_tools() {
	local tool missing=()
	for tool in unshare nsenter ip mount timeout iptables; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	for tool in bridge host-local loopback portmap; do
		[[ -x $cni_bin_dir/$tool ]] || missing+=("$cni_bin_dir/$tool")
	done
	((${#missing[@]} == 0)) || die "missing ${missing[*]}: run scripts/setup.sh"
	[[ -x $bin_dir/containerd && -x $bin_dir/ctr ]] || die "no containerd and ctr in $bin_dir: run scripts/setup.sh"
}

# Quote a value as a TOML basic string.
toml_string() {
	local value=${1//\\/\\\\}
	printf '"%s"' "${value//\"/\\\"}"
}

write_config() {
	local tmp=$config_file.tmp
	if [[ $containerd_version == 2.* ]]; then
		write_config_v3 >"$tmp"
	else
		write_config_v2 >"$tmp"
	fi
	mv "$tmp" "$config_file"
	mkdir -p "$registry_hosts_dir"
	write_cni_config
}

# The options of the handler wasmtime-limited, as the table's lines. containerd 1.6's CRI
# plugin sends a runtime type other than runc's only `ConfigPath` of the table (1.7 and 2.x
# send the whole table too), so on 1.6 the options go in a file the table names.
readonly limited_options_file=$state_dir/wasmtime-limited.toml
limited_options() {
	local options='Deadline = "1s"
MaxMemory = "32M"'
	if [[ $containerd_version == 1.6 ]]; then
		printf '%s\n' "$options" >"$limited_options_file"
		printf '      ConfigPath = %s\n' "$(toml_string "$limited_options_file")"
	else
		printf '%s\n' "$options" | sed 's/^/      /'
	fi
}

# containerd 1.x: config version 2, one CRI plugin.
write_config_v2() {
	cat <<EOF
# Written by scripts/containerd.sh: edits are overwritten on the next start.
version = 2
root = $(toml_string "$state_dir/root")
state = $(toml_string "$runtime_state")
# The other snapshotters cannot work here and only add log noise.
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = $(toml_string "$socket")

[ttrpc]
  address = $(toml_string "$socket.ttrpc")

[debug]
  level = $(toml_string "$log_level")

# The default, /opt/containerd, would be created on the host.
[plugins."io.containerd.internal.v1.opt"]
  path = $(toml_string "$state_dir/opt")

# CRI, as the kubelet uses it (the cri/ suite). Pods run in the "k8s.io" namespace; the
# runtime handlers are what a RuntimeClass names.
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = $(toml_string "$sandbox_image")
  # Lowering a container's oom_score_adj below containerd's own needs CAP_SYS_RESOURCE,
  # which a container (as CI runs us) may not have: clamp instead of failing.
  restrict_oom_score_adj = true
  # Pod network namespaces are bind-mounted under containerd's state dir, not /run/netns
  # on the host.
  netns_mounts_under_state_dir = true
  disable_apparmor = true

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = $(toml_string "$cni_bin_dir")
    conf_dir = $(toml_string "$cni_conf_dir")
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = $(toml_string "$registry_hosts_dir")

  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"

$(runtime_tables 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes')
EOF
	if [[ $containerd_version == 1.7 ]]; then
		nri_disabled
	fi
}

# containerd 2.x: config version 3, where CRI is two plugins (images and runtime) and the
# sandbox image is a pinned image.
write_config_v3() {
	cat <<EOF
# Written by scripts/containerd.sh: edits are overwritten on the next start.
version = 3
root = $(toml_string "$state_dir/root")
state = $(toml_string "$runtime_state")
disabled_plugins = [
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = $(toml_string "$socket")

[ttrpc]
  address = $(toml_string "$socket.ttrpc")

[debug]
  level = $(toml_string "$log_level")

[plugins."io.containerd.internal.v1.opt"]
  path = $(toml_string "$state_dir/opt")

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  # false: pulls through the transfer service, as 2.x does by default.
  use_local_image_pull = $cri_local_pull

  [plugins."io.containerd.cri.v1.images".registry]
    config_path = $(toml_string "$registry_hosts_dir")

  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = $(toml_string "$sandbox_image")

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true

  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [$(toml_string "$cni_bin_dir")]
    conf_dir = $(toml_string "$cni_conf_dir")
    max_conf_num = 1

  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"

$(runtime_tables 'plugins."io.containerd.cri.v1.runtime".containerd.runtimes')
EOF
	nri_disabled
}

# CRI's runtime handlers, the same in config v2 and v3 but for the plugin's name (the
# runtimes table RUNTIMES: plugins."…".containerd.runtimes).
runtime_tables() {
	local runtimes=$1 handler type
	cat <<EOF
    [$runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
EOF
	# CRI passes pod and container annotations to the runtime spec only when they match the
	# patterns: the shims read io.containerd.wasm.* (e.g. network=allow) from there. spin is
	# SpinKube's handler name and runtime (RuntimeClass wasmtime-spin-v2); wasmtime-limited
	# is the wasmtime shim with runtime options (docs/configuration.md,
	# cri/tests/runtime_options.rs).
	for handler in wasmtime:wasmtime.v1 wamr:wamr.v1 wasmedge:wasmedge.v1 spin:spin.v2 \
		wasmtime-limited:wasmtime.v1; do
		type=${handler#*:}
		handler=${handler%%:*}
		cat <<EOF

    [$runtimes.$handler]
      runtime_type = "io.containerd.$type"
      pod_annotations = ["io.containerd.wasm.*"]
      container_annotations = ["io.containerd.wasm.*"]
EOF
	done
	cat <<EOF

    [$runtimes.wasmtime-limited.options]
$(limited_options)
EOF
}

# NRI (off by default in 1.7, on in 2.x) would put its socket in the host's /run.
nri_disabled() {
	cat <<EOF

[plugins."io.containerd.nri.v1.nri"]
  disable = true
EOF
}


# The pod network: a bridge with the pods' veths on a private subnet (the bridge holds the
# gateway address, so processes in containerd's network namespace reach pod IPs), and portmap
# for containers' host ports (its iptables rules live in the private network namespace and go
# with it). CRI adds loopback by itself. host-local keeps its leases with the rest of the state.
write_cni_config() {
	local tmp=$cni_conf_dir/10-wasm-shims.conflist.tmp
	mkdir -p "$cni_conf_dir"
	cat >"$tmp" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "wasm-shims-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$pod_bridge",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$pod_subnet" }]],
        "dataDir": $(toml_string "$cni_lease_dir")
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true }
    }
  ]
}
EOF
	mv "$tmp" "${tmp%.tmp}"
}

# Prints the host pid of this state dir's holder (scripts/namespace-holder.sh), if alive.
find_holder() {
	local proc pid args
	for proc in /proc/[0-9]*; do
		pid=${proc#/proc/}
		mapfile -d '' args 2>/dev/null <"$proc/cmdline" || continue
		if [[ ${args[0]:-} == bash && ${args[1]:-} == "$holder_script" && ${args[2]:-} == "$state_dir" ]]; then
			echo "$pid"
			return 0
		fi
	done
	return 1
}

# Prints the inode numbers of the holder's pid namespace and of every pid namespace
# nested in it (containers): together they hold every process that belongs to us.
namespace_tree() {
	local root
	root=$(pid_namespace_of "$1") || return 0
	lsns --type pid --noheadings --raw --output NS,PNS | awk -v root="$root" '
		{ parent[$1] = $2 }
		END {
			inside[root] = 1
			do {
				grew = 0
				for (ns in parent)
					if (!(ns in inside) && (parent[ns] in inside)) { inside[ns] = 1; grew = 1 }
			} while (grew)
			for (ns in inside) print ns
		}'
}

# Prints the host pids of the processes in the given pid namespaces (inode numbers).
namespace_members() {
	ps -e -o pid=,pidns= | awk -v wanted="$*" '
		BEGIN { split(wanted, list, " "); for (i in list) inside[list[i]] = 1 }
		$2 in inside { print $1 }'
}

# Prints the inode number of a process's pid namespace.
pid_namespace_of() {
	local link
	link=$(readlink "/proc/$1/ns/pid") || return 1
	link=${link#pid:[}
	echo "${link%]}"
}

# Prints the host pid of the containerd running in the holder's namespaces, if any.
find_containerd() {
	local ns
	ns=$(pid_namespace_of "$1") || return 1
	ps -e -o pid=,pidns=,comm= | awk -v ns="$ns" '
		$2 == ns && $3 == "containerd" { print $1; found = 1; exit }
		END { exit !found }'
}

containerd_answers() {
	timeout 5 "$bin_dir/ctr" --address "$socket" version >/dev/null 2>&1
}

# Host paths mounted at or below the state dir, deepest first. The namespaces keep
# their mounts to themselves, so on the host this is empty unless something leaked.
host_mounts_under_state() {
	awk -v dir="$state_dir" '$5 == dir || index($5, dir "/") == 1 { print $5 }' \
		/proc/self/mountinfo | sort -r
}

start_holder() {
	local stale holder deadline
	stale=$(host_mounts_under_state)
	[[ -z $stale ]] || die "mounts left under $state_dir on the host, refusing to start: $stale"
	# A new namespace starts like a booted machine: runtime state from the last one
	# (left by a crash, when stop did not run) is void.
	remove_container_cgroups
	rm -rf "$runtime_state" "$state_dir/host-fifo"
	rm -f "$socket" "$socket.ttrpc"
	mkdir -p "$host_fifo_dir"

	setsid unshare --mount --net --pid --fork --propagation private --mount-proc \
		bash "$holder_script" "$state_dir" "$host_fifo_dir" \
		</dev/null >"$holder_log" 2>&1 {lock_fd}>&- &
	local unshare_pid=$!
	disown

	deadline=$((SECONDS + 10))
	until holder=$(find_holder) && grep -q " $host_fifo_dir " "/proc/$holder/mounts" 2>/dev/null; do
		if ! kill -0 "$unshare_pid" 2>/dev/null || ((SECONDS > deadline)); then
			[[ -z ${holder:-} ]] || kill -KILL "$holder" 2>/dev/null || true
			die "could not set up the namespaces; $holder_log says: $(tail -n 20 "$holder_log")"
		fi
		sleep 0.05
	done
	echo "$holder"
}

launch_containerd() {
	local holder=$1 containerd_bin deadline pid
	containerd_bin=$bin_dir/containerd
	rm -f "$socket" "$socket.ttrpc"
	(
		cd "$state_dir"
		# The shims inherit containerd's environment: keep their precompile cache with the
		# rest of this containerd's state, off the node's default location, and lower the
		# module size limit (default 128M) so the suite's oversized module stays small.
		# The chosen containerd's own runc shim comes before Debian 12's; runc stays Debian 12's.
		PATH="$shim_bin_dir:$bin_dir:$PATH" WASM_SHIM_CACHE_DIR="$state_dir/wasm-cache" \
			WASM_SHIM_MAX_MODULE_SIZE="$max_module_size" exec setsid nsenter --target "$holder" --mount --net --pid -- \
			"$containerd_bin" --config "$config_file" </dev/null >>"$log_file" 2>&1 {lock_fd}>&-
	) &
	local nsenter_pid=$!
	disown

	deadline=$((SECONDS + start_timeout))
	until containerd_answers; do
		if ! kill -0 "$nsenter_pid" 2>/dev/null; then
			die "containerd exited at start; last lines of $log_file:
$(tail -n 30 "$log_file")"
		fi
		if ((SECONDS > deadline)); then
			pid=$(find_containerd "$holder") && kill -KILL "$pid"
			die "containerd did not answer on $socket within ${start_timeout}s; last lines of $log_file:
$(tail -n 30 "$log_file")"
		fi
		sleep 0.1
	done
}

# True while pid runs the named program (which guards against pid reuse). A zombie
# counts as gone: it waits only for its parent, outside our control, to reap it.
is_running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	[[ $stat == "$1 ($2) "* && $stat != "$1 ($2) Z"* ]]
}

wait_gone() {
	while is_running "$1" "$2"; do sleep 0.05; done
}

# Stops containerd alone, politely first: shims and containers keep running.
stop_containerd() {
	local holder=$1 pid nsenter_pid deadline
	pid=$(find_containerd "$holder") || return 0
	# containerd's parent is the nsenter that started it, outside the namespace.
	nsenter_pid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || nsenter_pid=0
	kill -TERM "$pid" 2>/dev/null || return 0
	deadline=$((SECONDS + 10))
	while is_running "$pid" containerd && ((SECONDS <= deadline)); do sleep 0.1; done
	if is_running "$pid" containerd; then
		say "containerd (pid $pid) ignored SIGTERM for 10s, killing it"
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" containerd
	fi
	wait_gone "$nsenter_pid" nsenter
}

# Removes the (empty) cgroups that runc and the shims created for containers whose
# processes died with the namespace: they are named /<namespace>/<container id>.
remove_container_cgroups() {
	local task_dir ctr_ns cgroup_root bundle
	for task_dir in "$runtime_state"/io.containerd.runtime.v2.task/*/; do
		[[ -d $task_dir ]] || continue
		ctr_ns=$(basename "$task_dir")
		while read -r cgroup_root; do
			[[ -d $cgroup_root/$ctr_ns ]] || continue
			for bundle in "$task_dir"*/; do
				[[ -d $bundle ]] || continue
				rmdir "$cgroup_root/$ctr_ns/$(basename "$bundle")" 2>/dev/null || true
			done
			rmdir "$cgroup_root/$ctr_ns" 2>/dev/null || true
		done < <(awk '$9 == "cgroup" || $9 == "cgroup2" { print $5 }' /proc/self/mountinfo)
	done
}

# Container records whose tasks died with the previous namespaces would make the next
# `ctr run` with the same id fail with "already exists"; images are kept.
forget_dead_containers() {
	local ctr_ns id
	for ctr_ns in $(ctr --address "$socket" namespaces ls --quiet); do
		for id in $(ctr --address "$socket" --namespace "$ctr_ns" containers ls --quiet); do
			ctr --address "$socket" --namespace "$ctr_ns" containers rm "$id" >/dev/null ||
				say "could not remove the dead container $ctr_ns/$id"
		done
	done
}

cmd_start() {
	require_tools
	mkdir -p "$state_dir"
	write_config
	local holder pid fresh=false
	if ! holder=$(find_holder); then
		holder=$(start_holder)
		fresh=true
	fi
	if ! find_containerd "$holder" >/dev/null; then
		launch_containerd "$holder"
		if [[ $fresh == true ]]; then forget_dead_containers; fi
	elif ! containerd_answers; then
		# Possibly still starting: give it the same grace as a fresh start.
		local deadline=$((SECONDS + start_timeout))
		until containerd_answers; do
			((SECONDS <= deadline)) || die "containerd is running but does not answer on $socket; see $log_file"
			sleep 0.1
		done
	fi
	pid=$(find_containerd "$holder") || die "containerd vanished right after starting; see $log_file"
	say "containerd running: pid $pid, address $socket, log $log_file"
}

cmd_stop() {
	local holder unshare_pid deadline leftover mnt
	local -a tree
	if holder=$(find_holder); then
		mapfile -t tree < <(namespace_tree "$holder")
		unshare_pid=$(awk '/^PPid:/ { print $2 }' "/proc/$holder/status")
		stop_containerd "$holder"
		# Killing a pid namespace's init kills everything inside it and in the pid
		# namespaces nested in it (shims, containers).
		kill -KILL "$holder" 2>/dev/null || true
		deadline=$((SECONDS + 10))
		while leftover=$(namespace_members "${tree[@]}") && [[ -n $leftover ]]; do
			((SECONDS <= deadline)) || die "processes still alive in the namespace after 10s: $(echo "$leftover" | paste -sd' ')"
			sleep 0.05
		done
		wait_gone "$unshare_pid" unshare
	fi
	# Nothing should be mounted here on the host; if something is, unmount it before
	# deleting anything so the removal cannot reach into a mounted filesystem.
	while read -r mnt; do
		[[ -n $mnt ]] || continue
		say "unmounting $mnt left on the host"
		umount --lazy "$mnt"
	done < <(host_mounts_under_state)
	remove_container_cgroups
	rm -rf "$runtime_state" "$state_dir/host-fifo"
	rm -f "$socket" "$socket.ttrpc"
	say "stopped"
}

cmd_restart() {
	local holder
	if holder=$(find_holder); then
		stop_containerd "$holder"
	fi
	cmd_start
}

cmd_env() {
	local holder pid
	holder=$(find_holder) || die "not running: run scripts/containerd.sh start"
	pid=$(find_containerd "$holder") || die "namespace is up but containerd is not running: run scripts/containerd.sh start"
	printf 'export CONTAINERD_ADDRESS=%q\n' "$socket"
	# Its ctr first, and its version for the results.
	# shellcheck disable=SC2016 # $PATH is for the shell that evaluates this
	printf 'export PATH=%q:"$PATH"\n' "$bin_dir"
	printf 'export WASM_SHIMS_CONTAINERD_VERSION=%q\n' "$("$bin_dir/containerd" --version | awk '{ print $3 }')"
	printf 'export CONTAINERD_NAMESPACE=%q\n' "$namespace"
	printf 'export WASM_SHIMS_CONTAINERD_PID=%q\n' "$pid"
	printf 'export WASM_SHIMS_REGISTRY_HOSTS_DIR=%q\n' "$registry_hosts_dir"
}

cmd_status() {
	local holder pid
	if ! holder=$(find_holder); then
		echo "stopped (state dir $state_dir)"
		return 3
	fi
	echo "namespace init: pid $holder"
	if ! pid=$(find_containerd "$holder"); then
		echo "containerd: not running"
		return 3
	fi
	echo "containerd: pid $pid, address $socket, log $log_file"
	if containerd_answers; then
		echo "containerd: answering"
	else
		echo "containerd: not answering"
		return 1
	fi
	echo "processes in the namespaces (host pids):"
	local -a tree
	mapfile -t tree < <(namespace_tree "$holder")
	ps -o pid=,args= -p "$(namespace_members "${tree[@]}" | paste -sd,)"
}

# Serializes start, stop and restart on one state dir. Processes started in the
# background close the lock's descriptor so that they do not hold it.
lock_state_dir() {
	mkdir -p "$state_dir"
	exec {lock_fd}>"$state_dir/lock"
	flock "$lock_fd"
}

# `run`: the whole life of a private containerd around one command (make test, make soak).
cmd_run() {
	(($# > 0)) || die "usage: $0 run COMMAND [ARGS...]"
	trap run_finished EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	"$script_dir/containerd.sh" start
	local env_exports
	env_exports=$("$script_dir/containerd.sh" env)
	eval "$env_exports"
	"$@"
}

run_finished() {
	local status=$?
	trap - EXIT
	if ! "$script_dir/containerd.sh" stop; then
		say "stopping the private containerd failed"
		((status != 0)) || status=1
	fi
	exit "$status"
}

main() {
	bin_dir=$(containerd_bin_dir)
	case ${1:-} in
	start) lock_state_dir && cmd_start ;;
	stop) lock_state_dir && cmd_stop ;;
	restart) lock_state_dir && cmd_restart ;;
	env) cmd_env ;;
	status) cmd_status ;;
	run) shift && cmd_run "$@" ;;
	*)
		echo "usage: $0 start|stop|restart|env|status|run COMMAND [ARGS...]" >&2
		exit 2
		;;
	esac
}

main "$@"
