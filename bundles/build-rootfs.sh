#!/usr/bin/env bash
# Build a minimal busybox root filesystem for the example bundle.
#
# usage: bundles/build-rootfs.sh [DEST]     (default: bundles/busybox/rootfs)
#
# Uses Debian's statically linked busybox (package busybox-static), so the
# rootfs needs no shared libraries. Re-running it only fixes what differs,
# and the result depends on nothing but the busybox binary.
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEST=${1:-$HERE/busybox/rootfs}
BB=/bin/busybox

die() { echo "build-rootfs: $*" >&2; exit 1; }

is_static() {
	[ -x "$BB" ] || return 1
	# ldd says "not a dynamic executable" (or "statically linked" for static-pie).
	local out
	out=$(LC_ALL=C ldd "$BB" 2>&1) || true # ldd exits 1 on static binaries
	[[ $out == *"not a dynamic executable"* || $out == *"statically linked"* ]]
}

if ! is_static; then
	echo "build-rootfs: $BB missing or not static; installing busybox-static" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static >&2 ||
		die "apt-get install busybox-static failed"
	is_static || die "$BB is still not a static binary"
fi

# Write a file only when its content differs, so mtimes stay put on re-runs.
put() {
	local path=$1 mode=$2 content=$3
	if [ ! -f "$path" ] || [ "$(cat "$path")" != "$content" ]; then
		printf '%s\n' "$content" >"$path"
	fi
	chmod "$mode" "$path"
}

mkdir -p "$DEST"
for d in bin proc sys dev etc root tmp; do mkdir -p "$DEST/$d"; done
chmod 0755 "$DEST" "$DEST"/{bin,proc,sys,dev,etc}
chmod 0700 "$DEST/root"
chmod 1777 "$DEST/tmp"

cmp -s "$BB" "$DEST/bin/busybox" || cp "$BB" "$DEST/bin/busybox"
chmod 0755 "$DEST/bin/busybox"

# One relative symlink per applet; existing correct links cost no process.
n=0
while read -r applet; do
	case $applet in "" | busybox) continue ;; esac
	link=$DEST/bin/$applet
	[[ -L $link && $link -ef $DEST/bin/busybox ]] && continue
	ln -sfn busybox "$link"
	n=$((n + 1))
done < <("$DEST/bin/busybox" --list | LC_ALL=C sort)

put "$DEST/etc/passwd" 0644 'root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false'
put "$DEST/etc/group" 0644 'root:x:0:
nobody:x:65534:'
put "$DEST/etc/hostname" 0644 'berth'

echo "build-rootfs: $DEST ready ($n applet links created)"
