#!/usr/bin/env bash
# The fault loop run the same way against several runtimes, none of which
# needs fault points of its own: `RUNTIME run -d` runs under strace, which
# holds one step's syscall for a few seconds (inject=...:delay_enter); while
# it is held, the runtime's own process gets SIGKILL or SIGTERM. Then
# `delete -f` runs and whatever is left of the container is counted: its
# state entry, cgroup directories, processes and mounts. One table, step x
# signal -> leftovers per runtime ("-" where the runtime never made that
# syscall, so the step could not be held).
#
#   conformance/faults/steps.sh [RUNTIME...]   default: target/debug/berth and runc
#
# Needs root, strace, jq, busybox-static. About 5 s per cell: a manual tool,
# like the benchmarks, not a CI stage. runtime/tests/faults.rs is berth's
# deterministic suite with its own fault points.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ $# -eq 0 ]; then set -- "$ROOT/target/debug/berth" "$(command -v runc)"; fi
HOLD_US=${HOLD_US:-2000000}
work=$(mktemp -d /tmp/fault-steps.XXXXXX)
chmod 755 "$work"
tag=fs$$
cleanup_all() {
	for p in $(grep -l "[${tag:0:1}]${tag:1}" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do kill -9 "$p" 2>/dev/null || true; done
	for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do rmdir "$d$tag/c" "$d$tag" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup_all EXIT
mkdir -p "$work/b/rootfs/bin" "$work/b/rootfs/"{proc,sys,dev,tmp,etc}
cp /bin/busybox "$work/b/rootfs/bin/"
for a in sh sleep true; do ln -s busybox "$work/b/rootfs/bin/$a"; done
"$1" spec -b "$work/b" 2>/dev/null || (cd "$work/b" && "$1" spec)
jq --arg t "$tag" '.process.terminal=false | .process.args=["sh","-c","sleep 1000; : \($t)"]
    | .linux.cgroupsPath="/\($t)/c"' "$work/b/config.json" >"$work/c" && mv "$work/c" "$work/b/config.json"
root=$work/state
pat="[${tag:0:1}]${tag:1}"
# A cgroup hierarchy both runtimes create the container's directory in.
cg=$(for d in /sys/fs/cgroup/pids /sys/fs/cgroup/memory /sys/fs/cgroup; do [ -d "$d" ] && echo "$d" && break; done)

# step -> "syscalls|path filter" (the path is relative to the id's state dir
# when it starts with @; empty: no path filter, the first such call is held).
# state-save has none: both runtimes write a temporary file and rename it
# over state.json, and strace's -P matches rename's first path only (the
# temporary name differs: berth .state.json.tmp, runc state-XXXX); the first
# rename either makes is its first state record.
steps=(
	"state-dir|mkdir,mkdirat|@"
	"cgroup-dir|mkdir,mkdirat|$cg/$tag/c"
	"exec-fifo|mknod,mknodat|@/exec.fifo"
	"pivot-root|pivot_root|"
	"state-save|rename,renameat,renameat2|"
	"start-fifo|open,openat|@/exec.fifo"
)

leftovers() { # id
	local n=0
	[ -e "$root/$1" ] && n=$((n + 1))
	for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[ -d "$d$tag/c" ] && n=$((n + 1))
	done
	# Processes: those naming the tag (the container's, berth's init) and
	# those in the container's cgroup (runc's init is "runc init").
	n=$((n + $({
		grep -l "$pat" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
		cat /sys/fs/cgroup/*/"$tag"/c/cgroup.procs "/sys/fs/cgroup/$tag/c/cgroup.procs" 2>/dev/null
	} | sort -u | grep -c .)))
	n=$((n + $(grep -c "$work/b/rootfs" /proc/self/mountinfo || true)))
	echo "$n"
}

cell() { # runtime step-spec signal -> leftovers or "-"
	local rt=$1 spec=$2 sig=$3 name calls path id log pidf
	IFS='|' read -r name calls path <<<"$spec"
	id=$tag-$name-$sig-$RANDOM
	path=${path/#@/$root/$id}
	log=$work/strace.log
	local pflag=()
	[ -n "$path" ] && pflag=(-P "$path")
	strace -f -qq -o "$log" "${pflag[@]}" -e trace="$calls" -e inject="$calls":delay_enter="$HOLD_US":when=1 \
		"$rt" --root "$root" run -d -b "$work/b" "$id" </dev/null >/dev/null 2>&1 &
	local st=$!
	# Signal the runtime itself (strace's child) while the step is held.
	local rpid="" i
	for i in $(seq 100); do
		rpid=$(pgrep -P "$st" | head -1 || true)
		[ -n "$rpid" ] && break
		sleep 0.01
	done
	sleep "$(awk -v h="$HOLD_US" 'BEGIN{printf "%.2f", h/2000000}')"
	[ -n "$rpid" ] && kill -s "$sig" "$rpid" 2>/dev/null || true
	# The held syscall returns after HOLD_US; give the runtime that long
	# and a few seconds more to act on the signal, then let strace go.
	local until=$((SECONDS + HOLD_US / 1000000 + 4))
	while [ -n "$rpid" ] && kill -0 "$rpid" 2>/dev/null && [ "$SECONDS" -lt "$until" ]; do
		sleep 0.1
	done
	# SIGINT: strace detaches and writes out its log (the held call shows
	# there once it returned or its process died); SIGKILL if it lingers.
	kill -INT "$st" 2>/dev/null
	until=$((SECONDS + 3))
	while kill -0 "$st" 2>/dev/null && [ "$SECONDS" -lt "$until" ]; do sleep 0.1; done
	kill -9 "$st" 2>/dev/null
	wait "$st" 2>/dev/null
	timeout 20 "$rt" --root "$root" delete -f "$id" >/dev/null 2>&1 || true
	sleep 0.1
	if ! grep -q . "$log" 2>/dev/null; then
		echo "-"
	else
		leftovers "$id"
	fi
	# Clean up by hand for the next cell.
	for p in $(grep -l "$pat" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do kill -9 "$p" 2>/dev/null || true; done
	sleep 0.05
	grep "$work/b/rootfs" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "${root:?}/$id"
	for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do rmdir "$d$tag/c" 2>/dev/null || true; done
	rm -f "$log"
}

printf '%-12s %-5s' step signal
for rt in "$@"; do printf ' %10s' "$(basename "$rt")"; done
echo
declare -A total
for spec in "${steps[@]}"; do
	for sig in KILL TERM; do
		printf '%-12s %-5s' "${spec%%|*}" "$sig"
		for rt in "$@"; do
			n=$(cell "$rt" "$spec" "$sig")
			printf ' %10s' "$n"
			[ "$n" = - ] || total[$rt]=$((${total[$rt]:-0} + n))
		done
		echo
	done
done
for rt in "$@"; do echo "total leftovers $(basename "$rt"): ${total[$rt]:-0}"; done
