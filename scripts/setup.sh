#!/usr/bin/env bash
# Installs what building and testing the shims needs on Debian 12, as root.
# Idempotent and silent when everything is already there: it asks apt and rustup
# only for what is missing. It never starts or configures the system containerd:
# our tests run their own (scripts/containerd.sh).
set -euo pipefail

apt_packages=(
	containerd        # the private containerd the tests drive, and ctr
	runc              # reference runtime (io.containerd.runc.v2)
	cmake             # wasmtime's, libseccomp's and WAMR's (wamrx-sys) build scripts
	libclang-dev      # bindgen (WAMR's bindings)
	protobuf-compiler # containerd-shim-protos
	pkg-config
	python3-venv # scripts/setup-toolchains.sh: the venv componentize-py is installed into
	libseccomp-dev # libcontainer's seccomp support
	gcc            # the linker, and WAMR's C sources
	libc6-dev      # libc.a for the static native-demo
	make
	iproute2   # ip, inside the private namespaces
	util-linux # unshare, nsenter, mount, lsns
	procps     # ps
	shellcheck # make lint
	containernetworking-plugins # CNI bridge, host-local, loopback and portmap for the CRI pods
	iptables                    # the portmap plugin's host ports, in the private network namespace
)
rust_targets=(wasm32-wasip1 wasm32-wasip2)
rust_components=(rustfmt clippy)

say() { printf 'setup.sh: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

is_installed() {
	[[ $(dpkg-query --show --showformat='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

install_apt_packages() {
	local package missing=()
	for package in "${apt_packages[@]}"; do
		is_installed "$package" || missing+=("$package")
	done
	((${#missing[@]} > 0)) || return 0
	((EUID == 0)) || die "missing Debian packages ${missing[*]}; run this script as root"
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_rust_parts() {
	command -v rustup >/dev/null || die "rustup not found: install the Rust toolchain first"
	local target component installed
	installed=$(rustup target list --installed)
	for target in "${rust_targets[@]}"; do
		grep -qxF "$target" <<<"$installed" && continue
		say "adding Rust target $target"
		rustup target add "$target"
	done
	installed=$(rustup component list --installed)
	for component in "${rust_components[@]}"; do
		grep -q "^$component-" <<<"$installed" && continue
		say "adding Rust component $component"
		rustup component add "$component"
	done
}

install_apt_packages
install_rust_parts
