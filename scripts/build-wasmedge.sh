#!/usr/bin/env bash
# The WasmEdge shim links the system's libwasmedge, which no package registry reachable from
# the build machines ships, so its crate (shims/containerd-shim-wasmedge) is outside the
# workspace and built only here:
#
#   scripts/build-wasmedge.sh [build]  finds libwasmedge, builds containerd-shim-wasmedge-v1 into
#                                      ${CARGO_TARGET_DIR:-<repo>/target}/release beside the
#                                      other shims (where scripts/containerd.sh points containerd)
#   scripts/build-wasmedge.sh test     the crate's unit tests (needs libwasmedge too)
#   scripts/build-wasmedge.sh detect   prints where libwasmedge is; fails quietly without it
#   scripts/build-wasmedge.sh check    clippy -D warnings on the crate WITHOUT libwasmedge, on
#                                      the bindings wasmedge-sys ships for docs.rs (type-checks
#                                      the engine against the SDK and the shim library; links
#                                      nothing, runs nothing), in a target dir of its own
#
# libwasmedge is looked for where wasmedge-sys looks (WASMEDGE_INCLUDE_DIR + WASMEDGE_LIB_DIR,
# WASMEDGE_DIR, ~/.wasmedge, /usr/local) and also in /usr and wherever ldconfig knows it;
# the build is then handed WASMEDGE_INCLUDE_DIR and WASMEDGE_LIB_DIR explicitly (the shim
# also records the latter as its rpath, as containerd starts it without LD_LIBRARY_PATH).
# Without the library, build and test say how to get it and exit with status 1.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
manifest="$repo_root/shims/containerd-shim-wasmedge/Cargo.toml"
# Resolve a relative CARGO_TARGET_DIR against the caller's directory, as cargo would.
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-$repo_root/target}")
# The WasmEdge release wasmedge-sys 0.21 (under wasmedge-sdk 0.17) is made for.
wasmedge_version=0.17.1

say() { printf 'build-wasmedge: %s\n' "$*" >&2; }

# Prints "INCLUDE_DIR LIB_DIR" pairs to try, most explicit first.
candidates() {
	if [[ -n ${WASMEDGE_INCLUDE_DIR:-} && -n ${WASMEDGE_LIB_DIR:-} ]]; then
		echo "$WASMEDGE_INCLUDE_DIR $WASMEDGE_LIB_DIR"
	fi
	local prefix lib
	for prefix in ${WASMEDGE_DIR:+"$WASMEDGE_DIR"} "${HOME:-/root}/.wasmedge" /usr/local /usr; do
		for lib in lib64 lib "lib/$(uname -m)-linux-gnu"; do
			echo "$prefix/include $prefix/$lib"
		done
	done
	# Any other directory the dynamic linker knows, with headers beside it or in /usr/include.
	local so dir
	while read -r so; do
		dir=$(dirname "$so")
		echo "$dir/../include $dir"
		echo "/usr/include $dir"
	done < <(ldconfig -p 2>/dev/null | awk '$1 ~ /^libwasmedge\.so/ { print $NF }')
}

# Sets include_dir and lib_dir to the first place with both the header and the linkable library.
find_libwasmedge() {
	local inc lib
	while read -r inc lib; do
		if [[ -f $inc/wasmedge/wasmedge.h && -e $lib/libwasmedge.so ]]; then
			include_dir=$(realpath "$inc")
			lib_dir=$(realpath "$lib")
			return 0
		fi
	done < <(candidates)
	return 1
}

installed_version() {
	sed -n 's/^#define WASMEDGE_VERSION "\(.*\)"$/\1/p' "$include_dir/wasmedge/version.h" 2>/dev/null ||
		true
}

how_to_get_wasmedge() {
	cat >&2 <<EOF
build-wasmedge: libwasmedge not installed: no wasmedge/wasmedge.h with a libwasmedge.so beside
it (looked in \$WASMEDGE_INCLUDE_DIR + \$WASMEDGE_LIB_DIR, \$WASMEDGE_DIR, ~/.wasmedge,
/usr/local, /usr and in ldconfig's cache).

The WasmEdge shim links the WasmEdge C library (headers and libwasmedge.so, release
$wasmedge_version, the one wasmedge-sdk 0.17 is made for). Get it one of these ways, then run
\`make build-wasmedge\` again:

  - the official installer, for all users (or without -p: into ~/.wasmedge, also searched):
      curl -sSf https://raw.githubusercontent.com/WasmEdge/WasmEdge/master/utils/install_v2.sh \\
          | bash -s -- -v $wasmedge_version -p /usr/local
  - the release tarball, unpacked anywhere:
      https://github.com/WasmEdge/WasmEdge/releases/download/$wasmedge_version/WasmEdge-$wasmedge_version-manylinux_2_28_x86_64.tar.gz
    then point the build at it with
      WASMEDGE_DIR=<the unpacked directory holding include/ and lib64/> make build-wasmedge
    or name both directories:
      WASMEDGE_INCLUDE_DIR=<dir holding wasmedge/wasmedge.h> \\
      WASMEDGE_LIB_DIR=<dir holding libwasmedge.so> make build-wasmedge

Skipped without it: containerd-shim-wasmedge-v1 (runtime io.containerd.wasmedge.v1) is not
built, and \`make test\` and the conformance suite report the wasmedge engine as skipped
("libwasmedge not installed"). Everything else builds and is tested as usual.
EOF
}

# Runs cargo on the WasmEdge crate against the libwasmedge found.
cargo_with_libwasmedge() {
	local include_dir lib_dir
	if ! find_libwasmedge; then
		how_to_get_wasmedge
		exit 1
	fi
	local version
	version=$(installed_version)
	say "using libwasmedge ${version:-of unknown version} (headers $include_dir, library $lib_dir)"
	# The crates' bindings are generated for one release; another may build and then
	# misbehave (a changed struct or a function's meaning), so the difference is said loudly.
	if [[ $version != "$wasmedge_version" ]]; then
		say "WARNING: libwasmedge ${version:-of unknown version} is not $wasmedge_version, the" \
			"release wasmedge-sys was made for and this shim was verified with;" \
			"the build or the shim may fail"
	fi
	# --locked: the crate's own Cargo.lock (it is outside the workspace's) must be current.
	WASMEDGE_INCLUDE_DIR="$include_dir" WASMEDGE_LIB_DIR="$lib_dir" CARGO_TARGET_DIR="$target_dir" \
		cargo "$@" --release --locked --manifest-path "$manifest"
}

case "${1:-build}" in
build)
	cargo_with_libwasmedge build --bin containerd-shim-wasmedge-v1
	say "built $target_dir/release/containerd-shim-wasmedge-v1"
	;;
test)
	cargo_with_libwasmedge test
	;;
detect)
	find_libwasmedge || exit 1
	echo "WASMEDGE_INCLUDE_DIR=$include_dir WASMEDGE_LIB_DIR=$lib_dir"
	;;
check)
	# wasmedge-sys copies its pregenerated bindings instead of looking for the library when it
	# sees DOCS_RS; a target dir of its own keeps that mode away from real builds.
	DOCS_RS=1 CARGO_TARGET_DIR="$target_dir/wasmedge-check" \
		cargo clippy --release --locked --manifest-path "$manifest" --all-targets -- -D warnings
	cargo fmt --manifest-path "$manifest" -- --check
	;;
*)
	say "usage: $0 [build|test|detect|check]"
	exit 2
	;;
esac
