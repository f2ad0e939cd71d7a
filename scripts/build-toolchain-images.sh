#!/usr/bin/env bash
# Builds the test components made by other toolchains than Rust's (issue #15) and writes their
# OCI image tarballs into <repo>/target/test-images/ (platform wasip2/wasm, entry point /NAME.wasm):
#   python-cli.tar      wasi:cli/command 0.2          componentize-py
#   python-http-p2.tar  wasi:http/proxy 0.2           componentize-py
#   python-http-p3.tar  wasi:http/service 0.3 (async) componentize-py
#   js-http.tar         wasi:http/incoming-handler 0.2 componentize-js
# The sources are in test-images/NAME/ (app.py or app.js, and wit/world.wit); the toolchains are
# installed by scripts/setup-toolchains.sh (called first; silent when they are there), and the WASI
# WIT packages the worlds use come from the installed jco package. The components go to
# <repo>/target/toolchain-components/, each rebuilt only when its sources, the toolchains or this
# script changed, with the WIT it exports and imports beside it (NAME.wit) and its export checked.
# Needs target/release/image-builder (built with cargo when it is missing). No network access
# once the toolchains are installed.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The image builder is where scripts/build-test-images.sh puts it (a relative CARGO_TARGET_DIR is
# resolved against the caller's directory, as cargo would).
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-$repo_root/target}")"
image_builder="$target_dir/release/image-builder"
toolchains="$repo_root/target/toolchains"
components="$repo_root/target/toolchain-components"
out_dir="$repo_root/target/test-images"
sources="$repo_root/test-images"

componentize_py="$toolchains/python/bin/componentize-py"
js_bin="$toolchains/js/node_modules/.bin"
wasi_wit="$toolchains/js/node_modules/@bytecodealliance/jco/lib/wit/builtin"
wasi_wit_versions=(0.2.12 0.3.0)

# name, toolchain, the export that makes it what it is.
images=(
	"python-cli py wasi:cli/run@0.2.12"
	"python-http-p2 py wasi:http/incoming-handler@0.2.12"
	"python-http-p3 py wasi:http/handler@0.3.0"
	"js-http js wasi:http/incoming-handler@0.2.12"
)

say() { printf 'build-toolchain-images.sh: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

now() { date +%s.%N; }
elapsed() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f s", end - start }'; }
megabytes() { awk -v bytes="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MB", bytes / 1000000 }'; }

# What a component is built from: its sources, both toolchains' install stamps and this script.
fingerprint() {
	local src=$1
	{
		sha256sum "${BASH_SOURCE[0]}" "$toolchains/python/.installed" "$toolchains/js/.installed" |
			cut -d' ' -f1
		(cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -d' ' -f1
}

# A copy of the component's sources to build from (componentize-py's CPython writes __pycache__
# beside the app), with the WASI packages from jco added to its wit/deps/.
stage_sources() {
	local name=$1 dir="$components/$1.build" version package
	rm -rf "$dir"
	cp -R "$sources/$name" "$dir"
	mkdir -p "$dir/wit/deps"
	for version in "${wasi_wit_versions[@]}"; do
		[[ -d $wasi_wit/$version ]] || die "no WASI $version WIT in $wasi_wit (jco changed?)"
		for package in "$wasi_wit/$version"/*/; do
			package=${package%/}
			cp -R "$package" "$dir/wit/deps/$version-${package##*/}"
		done
	done
	printf '%s' "$dir"
}

componentize() {
	local name=$1 toolchain=$2 dir=$3 out=$4
	case $toolchain in
	py)
		"$componentize_py" -q -d "$dir/wit" -w "$name" componentize -p "$dir" app -o "$out"
		;;
	js)
		# From inside the toolchain so that componentize-js finds its own dependencies.
		(cd "$toolchains/js" && "$js_bin/componentize-js" --wit "$dir/wit" --world-name "$name" \
			-o "$out" "$dir/app.js")
		;;
	esac
}

# The component's WIT as text: wasm-tools when it is installed, else jco's bundled copy of it.
component_wit() {
	if command -v wasm-tools >/dev/null; then
		wasm-tools component wit "$1"
	else
		"$js_bin/jco" wit "$1"
	fi
}

build_component() {
	local name=$1 toolchain=$2 export=$3
	local wasm="$components/$name.wasm" stamp="$components/$name.wasm.fingerprint" want start dir
	want=$(fingerprint "$sources/$name")
	if [[ -f $wasm && -f $stamp && $(<"$stamp") == "$want" ]]; then
		say "$name.wasm: up to date ($(megabytes "$wasm"))"
		return 0
	fi
	start=$(now)
	rm -f "$stamp"
	dir=$(stage_sources "$name")
	componentize "$name" "$toolchain" "$dir" "$wasm.tmp" || die "building $name.wasm failed"
	component_wit "$wasm.tmp" >"$components/$name.wit" || die "cannot read the WIT of $name.wasm"
	grep -qxF "  export $export;" "$components/$name.wit" ||
		die "$name.wasm does not export $export (see $components/$name.wit)"
	mv "$wasm.tmp" "$wasm"
	printf '%s' "$want" >"$stamp"
	say "$name.wasm: built in $(elapsed "$start") ($(megabytes "$wasm"))"
}

"$repo_root/scripts/setup-toolchains.sh"
mkdir -p "$components" "$out_dir"

for image in "${images[@]}"; do
	read -r name toolchain export <<<"$image"
	build_component "$name" "$toolchain" "$export"
done

if [[ ! -x $image_builder ]]; then
	say "building image-builder"
	(cd "$repo_root" && cargo build --release -p image-builder)
fi

for image in "${images[@]}"; do
	read -r name _ <<<"$image"
	"$image_builder" --name "docker.io/library/$name:latest" --platform wasip2/wasm \
		--file "/$name.wasm=$components/$name.wasm:0755" \
		--entrypoint "/$name.wasm" \
		--out "$out_dir/$name.tar"
done
