#!/usr/bin/env bash
# Run the suite's cgroup scenarios against a runtime inside a pure cgroup v2
# guest (QEMU, Debian kernel, cgroup_no_v1=all; see cgv2-vm.sh next to this).
#
# usage: conformance/vm/run-v2.sh [RUNTIME] [-- DRIVER-ARGS...]
#   RUNTIME      default: the workspace's target/debug/berth (built here)
#   DRIVER-ARGS  replace the default scenario selection, e.g. -- --filter pids -v
# The default selection is by exact name: every linux_cgroups_* scenario of
# the driver's --list, delete_resources and delete_only_create_resources.
# The last line is the guest's "N passed, N failed, N skipped"; a run that
# printed none (the guest died) or checked nothing fails.
# Needs: qemu-system-x86 and busybox-static (Debian); the kernel package is
# downloaded (not installed) by cgv2-vm.sh on first use and cached in /tmp/vmlab.
# Every runtime call in the guest has a timeout (RT_TIMEOUT, default 60 s:
# the guest is emulated), and the whole VM has one too (VM_TIMEOUT, default 420 s; a run
# takes about 130 s). A guest that printed no closing count is booted once more.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RT=$ROOT/target/debug/berth
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
	RT=$1
	shift
fi
if [ "${1:-}" = "--" ]; then shift; fi
ARGS=("$@")

command -v qemu-system-x86_64 >/dev/null ||
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86 >&2
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p berth -p berth-conformance
"$ROOT/conformance/build-checker.sh" >/dev/null
if [ ${#ARGS[@]} -eq 0 ]; then
	while read -r name _; do
		case $name in
		linux_cgroups_* | delete_resources | delete_only_create_resources) ARGS+=(--scenario "$name") ;;
		esac
	done < <("$ROOT/target/debug/berth-conformance" --list)
	[ ${#ARGS[@]} -gt 0 ] || { echo "run-v2: no cgroup scenario in the driver's --list" >&2; exit 1; }
fi

SHARE=$(mktemp -d /tmp/berth-v2.XXXXXX)
trap 'rm -rf "$SHARE"' EXIT
cp "$ROOT/target/debug/berth-conformance" "$ROOT/target/conformance/berth-check" "$SHARE/"
# The runtime runs from the shared dir (the guest's /tmp is a fresh tmpfs, so a
# path under the host's /tmp would not exist there); -b brings its shared
# libraries (libseccomp) into the guest.
RT=$(command -v "$RT")
bflags=(-b "$RT")
cp "$RT" "$SHARE/runtime"
RT_GUEST=$SHARE/runtime
{
	echo "cd /tmp"
	printf 'exec %q/berth-conformance --runtime %q --checker %q/berth-check --timeout %q --workdir /tmp/conformance' \
		"$SHARE" "$RT_GUEST" "$SHARE" "${RT_TIMEOUT:-60}"
	printf ' %q' "${ARGS[@]}"
	echo
} >"$SHARE/guest.sh"

# A guest under TCG has been seen to wedge now and then (the host's CPU
# spinning, no output, nothing the per-call timeouts can end). A run that
# printed no closing count is therefore booted once more; a run that printed
# one, failures included, is final.
for attempt in 1 2; do
	start=$(date +%s.%N)
	set +e
	# Shown indented, so the guest's own closing line is not counted twice by
	# run-tests.sh: the one printed below is the stage's.
	"$HERE/cgv2-vm.sh" -q -t "${VM_TIMEOUT:-420}" "${bflags[@]}" "$SHARE" sh "$SHARE/guest.sh" |
		tee "$SHARE/out.log" | sed -u 's/^/  /'
	rc=${PIPESTATUS[0]}
	set -e
	echo "run-v2: VM run $attempt took $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s (exit $rc)" >&2
	# The guest console may end lines with CR.
	counts=$(tr -d '\r' <"$SHARE/out.log" | grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' | tail -1 || true)
	[ -z "$counts" ] || break
	echo "run-v2: the guest printed no closing count (exit $rc)" >&2
done
if [ -z "$counts" ]; then
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
echo "$counts"
[ "${counts%% *}" -gt 0 ] || rc=1
exit "$rc"
