#!/usr/bin/env bash
# The containerd and Docker releases the tests run besides Debian 12's own containerd 1.6:
# Debian's newer packages (trixie, sid) from the same mirror, downloaded under a private apt
# configuration and unpacked under target/platforms/. Nothing is installed into the system
# and the system's apt sources are not touched. Their Go binaries need only glibc 2.34, so
# they run on Debian 12 unchanged; Debian 12's runc stays the one runtime binary.
#
# Usage: scripts/platforms.sh fetch            download and unpack what is missing (idempotent)
#        scripts/platforms.sh dir NAME         the unpacked root of NAME (fetch first)
#        scripts/platforms.sh version NAME     the Debian version unpacked for NAME
#        scripts/platforms.sh list             NAME SUITE PACKAGE EXPECTED per line
#
# sid moves: the version is whatever the suite serves on the day of the fetch; its
# major.minor must be the expected one, or the fetch fails and says so.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
platforms_dir=$(realpath -m "${CARGO_TARGET_DIR:-$repo_root/target}/platforms")
apt_dir=$platforms_dir/apt
readonly mirror=http://deb.debian.org/debian
readonly keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# The one list: name, Debian suite, package, the major.minor the tests expect.
readonly platforms=(
	"containerd-1.7 trixie containerd 1.7"
	"containerd-2.1 sid containerd 2.1"
	"dockerd-28 sid docker.io 28.5"
	"docker-cli-28 sid docker-cli 28.5"
)

say() { printf 'platforms.sh: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

apt_options() {
	printf '%s\n' \
		-o "Dir::Etc::sourcelist=$apt_dir/sources.list" \
		-o Dir::Etc::sourceparts=- \
		-o "Dir::State::Lists=$apt_dir/lists" \
		-o "Dir::Cache=$apt_dir/cache" \
		-o APT::Get::List-Cleanup=0 \
		-o Debug::NoLocking=1
}

# The private apt configuration and its package lists (refreshed when older than a day).
apt_ready() {
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
	local suites
	suites=$(printf '%s\n' "${platforms[@]}" | awk '{ print $2 }' | sort -u)
	: >"$apt_dir/sources.list.tmp"
	for suite in $suites; do
		echo "deb [signed-by=$keyring] $mirror $suite main" >>"$apt_dir/sources.list.tmp"
	done
	mv "$apt_dir/sources.list.tmp" "$apt_dir/sources.list"
	local stamp=$apt_dir/lists/updated
	if [[ -z $(find "$stamp" -mmin -1440 2>/dev/null) ]]; then
		mapfile -t options < <(apt_options)
		apt-get -q "${options[@]}" update >"$apt_dir/update.log" 2>&1 ||
			die "apt-get update of $suites from $mirror failed; $apt_dir/update.log says: $(tail -n 5 "$apt_dir/update.log")"
		touch "$stamp"
	fi
}

# The version SUITE serves of PACKAGE.
candidate() {
	local suite=$1 package=$2
	mapfile -t options < <(apt_options)
	apt-cache "${options[@]}" madison "$package" |
		awk -F'|' -v suite="$suite" '$3 ~ (" " suite "/") { gsub(/ /, "", $2); print $2; exit }'
}

fetch_one() {
	local name=$1 suite=$2 package=$3 expected=$4 version deb root
	root=$platforms_dir/$name
	version=$(candidate "$suite" "$package")
	[[ -n $version ]] || die "$suite serves no $package (see $apt_dir/update.log)"
	[[ $version == "$expected"* || $version == *":$expected"* ]] ||
		die "$suite serves $package $version, not the $expected.x the tests expect: update the list in scripts/platforms.sh"
	if [[ -f $root/.version && $(<"$root/.version") == "$version" ]]; then
		say "$name: $package $version from $suite (already unpacked)"
		return 0
	fi
	mkdir -p "$apt_dir/debs"
	mapfile -t options < <(apt_options)
	(cd "$apt_dir/debs" && apt-get -q "${options[@]}" download "$package=$version" >"$apt_dir/download-$name.log" 2>&1) ||
		die "download of $package $version ($suite) failed; $apt_dir/download-$name.log says: $(tail -n 5 "$apt_dir/download-$name.log")"
	# apt-get download names the file package_version_arch.deb, a ':' of the version as %3a.
	deb=$(find "$apt_dir/debs" -maxdepth 1 -name "${package}_${version//:/%3a}_*.deb" | head -n 1)
	[[ -n $deb ]] || die "apt-get download left no ${package}_*.deb in $apt_dir/debs"
	rm -rf "$root.tmp"
	dpkg-deb -x "$deb" "$root.tmp" || die "dpkg-deb -x $deb failed"
	echo "$version" >"$root.tmp/.version"
	rm -rf "$root"
	mv "$root.tmp" "$root"
	say "$name: $package $version from $suite, unpacked in $root"
}

find_entry() {
	local entry
	for entry in "${platforms[@]}"; do
		read -r name _ <<<"$entry"
		[[ $name == "$1" ]] && {
			echo "$entry"
			return 0
		}
	done
	die "unknown platform $1 (known: $(printf '%s\n' "${platforms[@]}" | awk '{ print $1 }' | tr '\n' ' '))"
}

case ${1:-} in
fetch)
	apt_ready
	for entry in "${platforms[@]}"; do
		# shellcheck disable=SC2086 # the entry's four words
		fetch_one $entry
	done
	;;
dir)
	find_entry "${2:?name}" >/dev/null
	[[ -f $platforms_dir/$2/.version ]] || die "$2 is not unpacked: run scripts/platforms.sh fetch"
	echo "$platforms_dir/$2"
	;;
version)
	find_entry "${2:?name}" >/dev/null
	cat "$platforms_dir/$2/.version" 2>/dev/null || die "$2 is not unpacked: run scripts/platforms.sh fetch"
	;;
list)
	printf '%s\n' "${platforms[@]}"
	;;
*)
	die "usage: $0 fetch | dir NAME | version NAME | list"
	;;
esac
