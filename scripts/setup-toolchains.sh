#!/usr/bin/env bash
# Installs the non-Rust component toolchains that scripts/build-toolchain-images.sh uses, at
# pinned versions, under <repo>/target/toolchains/ (nothing system-wide):
#   python/   a virtualenv with componentize-py (PyPI)
#   js/       @bytecodealliance/componentize-js and @bytecodealliance/jco (npm), installed with
#             `npm ci` from test-images/js-http/package.json and its package-lock.json
# Each part carries a stamp naming what was installed; a part whose stamp matches is left alone,
# so a second run is silent and needs no network. A changed pin reinstalls that part.
# Needs python3 (with venv) and Node.js 20+ with npm.
set -euo pipefail

componentize_py_version="0.25.1"
min_node_major=20

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
toolchains="$repo_root/target/toolchains"
js_manifest_dir="$repo_root/test-images/js-http"
python="${PYTHON:-python3}"

say() { printf 'setup-toolchains.sh: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# Runs a command with its output in a log; on failure, says what failed and shows the log's end.
run_logged() {
	local what=$1 log=$2
	shift 2
	if ! "$@" >"$log" 2>&1; then
		say "error: $what failed (full log: $log):"
		tail -n 20 "$log" >&2
		exit 1
	fi
}

install_componentize_py() {
	local dir="$toolchains/python" want="componentize-py==$componentize_py_version"
	local stamp="$dir/.installed"
	[[ -f $stamp && $(<"$stamp") == "$want" && -x $dir/bin/componentize-py ]] && return 0
	command -v "$python" >/dev/null || die "$python not found: install Python 3.10+ (or set PYTHON)"
	say "installing $want into ${dir#"$repo_root"/}"
	rm -rf "$dir"
	mkdir -p "$toolchains"
	run_logged "creating a virtualenv with $python" "$toolchains/python-venv.log" \
		"$python" -m venv "$dir"
	run_logged "downloading $want from PyPI" "$toolchains/python-pip.log" \
		"$dir/bin/python" -m pip install --disable-pip-version-check --no-input --quiet "$want"
	local got
	got=$("$dir/bin/componentize-py" --version) || die "componentize-py does not run: $got"
	[[ $got == *"$componentize_py_version"* ]] || die "expected componentize-py $componentize_py_version, got '$got'"
	printf '%s' "$want" >"$stamp"
}

install_js_toolchain() {
	local dir="$toolchains/js" stamp="$toolchains/js/.installed" want
	want=$(cat "$js_manifest_dir/package.json" "$js_manifest_dir/package-lock.json" | sha256sum)
	want=${want%% *}
	[[ -f $stamp && $(<"$stamp") == "$want" && -d $dir/node_modules ]] && return 0
	command -v node >/dev/null || die "node not found: install Node.js $min_node_major or later"
	command -v npm >/dev/null || die "npm not found: install npm (Node.js $min_node_major or later)"
	local node_major
	node_major=$(node -p 'process.versions.node.split(".")[0]')
	((node_major >= min_node_major)) || die "Node.js $min_node_major or later needed, found $(node --version)"
	say "installing componentize-js and jco (test-images/js-http/package-lock.json) into ${dir#"$repo_root"/}"
	rm -rf "$dir"
	mkdir -p "$dir"
	cp "$js_manifest_dir/package.json" "$js_manifest_dir/package-lock.json" "$dir/"
	run_logged "downloading the npm packages" "$toolchains/js-npm.log" \
		npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
	printf '%s' "$want" >"$stamp"
}

install_componentize_py
install_js_toolchain
