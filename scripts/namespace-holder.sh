#!/usr/bin/env bash
# The init of the private containerd's namespaces, started by scripts/containerd.sh
# through `unshare --mount --net --pid --fork`. It sets up the private network,
# /run/containerd and /var/lib/cni, then reaps the orphans it inherits (shims daemonize)
# until killed. Everything CRI makes for pods (bridge, veths, network namespaces and their
# bind mounts) lives in these namespaces and goes with them.
#
# Usage: namespace-holder.sh STATE_DIR HOST_FIFO_DIR
set -euo pipefail

state_dir=$1
host_fifo_dir=$2

ip link set lo up

# Shims keep sockets and runc state under /run/containerd: a tmpfs keeps them private.
# ctr on the host puts stdio FIFOs in HOST_FIFO_DIR (below /run/containerd), so that
# directory is carried over into the tmpfs. The bind mount is a handle on it that
# survives the tmpfs hiding the original path.
handle=$state_dir/host-fifo
mkdir -p "$handle"
mount --bind "$host_fifo_dir" "$handle"
mount -t tmpfs -o mode=0711 wasm-shims-run /run/containerd
mkdir -p "$host_fifo_dir"
mount --move "$handle" "$host_fifo_dir"
rmdir "$handle"

# CNI (libcni in containerd) caches every pod's network attachment under /var/lib/cni:
# a tmpfs keeps that private too, and gone with the namespace.
mkdir -p /var/lib/cni
mount -t tmpfs -o mode=0700 wasm-shims-cni /var/lib/cni

# bash reaps every child that exits while it waits, adopted orphans included.
while :; do
	sleep 3600 &
	wait "$!" || true
done
