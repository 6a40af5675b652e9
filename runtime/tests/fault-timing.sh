#!/usr/bin/env bash
# Compare runtimes under faults they were not built for: `RUNTIME run -d` is
# SIGKILLed or SIGTERMed after a delay (0 to 48 ms, so the signal lands at
# different steps), then `delete -f` runs, and whatever is left of the
# container (state entry, cgroup directory, process) is counted. Timing
# based, so not deterministic: tests/faults.rs is the deterministic suite
# for berth; this one also runs against runc, which has no fault points.
#
#   runtime/tests/fault-timing.sh /usr/sbin/runc [rounds]
set -euo pipefail
rt=${1:?runtime binary}
rounds=${2:-3}
work=$(mktemp -d /tmp/fault-timing.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/b/rootfs/bin" "$work/b/rootfs/"{proc,sys,dev,tmp,etc}
cp /bin/busybox "$work/b/rootfs/bin/"
for a in sh sleep true; do ln -s busybox "$work/b/rootfs/bin/$a"; done
tag=ft$$
"$rt" spec -b "$work/b" 2>/dev/null || (cd "$work/b" && "$rt" spec)
jq --arg t "$tag" '.process.terminal=false | .process.args=["sh","-c","sleep 1000; : \($t)"]
    | .linux.cgroupsPath="/\($t)/c"' "$work/b/config.json" >"$work/c" && mv "$work/c" "$work/b/config.json"
root="$work/state"
# A regex that does not match the grep looking for it.
pat="[${tag:0:1}]${tag:1}"

leftovers() { # id
    local n=0
    [ -e "$root/$1" ] && n=$((n + 1))
    for d in /sys/fs/cgroup/*/; do
        [ -d "$d$tag/c" ] && n=$((n + 1))
    done
    n=$((n + $(grep -l "$pat" /proc/[0-9]*/cmdline 2>/dev/null | wc -l)))
    echo "$n"
}

printf '%-8s %-6s %s\n' delay signal "leftovers after delete -f (per round)"
total=0
for delay in 0 2 4 6 8 12 16 24 32 48; do
    for sig in KILL TERM; do
        row=""
        for r in $(seq "$rounds"); do
            id=$tag-$delay-$sig-$r
            "$rt" --root "$root" run -d -b "$work/b" "$id" >/dev/null 2>&1 </dev/null &
            pid=$!
            sleep "0.$(printf '%03d' "$delay")"
            kill -s "$sig" "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            timeout 20 "$rt" --root "$root" delete -f "$id" >/dev/null 2>&1 || true
            sleep 0.1
            n=$(leftovers "$id")
            total=$((total + n))
            row="$row $n"
            # Clean up by hand for the next round.
            for p in $(grep -l "$pat" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
                kill -9 "$p" 2>/dev/null || true
            done
            sleep 0.05
            rm -rf "${root:?}/$id"
            for d in /sys/fs/cgroup/*/; do rmdir "$d$tag/c" 2>/dev/null || true; done
        done
        printf '%-8s %-6s%s\n' "${delay}ms" "$sig" "$row"
    done
done
for d in /sys/fs/cgroup/*/; do rmdir "$d$tag" 2>/dev/null || true; done
echo "total leftovers: $total"
