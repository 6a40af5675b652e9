#!/usr/bin/env bash
# The workload release/build-pgo.sh profiles: runc's commands as container
# engines call them, on a busybox bundle, the way berth-bench runs them.
#
# usage: release/pgo-workload.sh BERTH WORKDIR      (as root)
#
# Only what engines call on every container belongs here: code this
# workload never reaches is laid out as cold, so a path it leaves out would
# be slower and cost more memory, never fail.
set -euo pipefail

BERTH=$1
W=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${PGO_ROUNDS:-10}
b() { "$BERTH" --root "$W/state" "$@"; }

mkdir -p "$W/state" "$W/run" "$W/sleep"
bash "$HERE/bundles/build-rootfs.sh" "$W/rootfs" >/dev/null
(cd "$W/run" && b spec)
# Not interactive, an absolute root shared by both bundles, one process each.
sed -i -e 's/"terminal": true/"terminal": false/' \
	-e "s|\"path\": \"rootfs\"|\"path\": \"$W/rootfs\"|" "$W/run/config.json"
grep -q '"terminal": false' "$W/run/config.json" || { echo "pgo-workload: spec has no terminal field" >&2; exit 1; }
sed -e 's/"sh"$/"sleep", "1000"/' "$W/run/config.json" >"$W/sleep/config.json"
sed -i -e 's/"sh"$/"true"/' "$W/run/config.json"
grep -q '"sleep", "1000"' "$W/sleep/config.json" || { echo "pgo-workload: spec args not found" >&2; exit 1; }

wait_stopped() {
	for _ in $(seq 100); do
		[[ $(b state "$1") =~ \"status\":\ *\"stopped\" ]] && return
		sleep 0.05
	done
	echo "pgo-workload: $1 did not stop" >&2
	return 1
}

for i in $(seq "$ROUNDS"); do
	b run -b "$W/run" "run$i" </dev/null
	b run -d -b "$W/sleep" "bg$i" </dev/null >/dev/null
	b create -b "$W/sleep" "c$i" </dev/null >/dev/null
	b state "c$i" >/dev/null
	b start "c$i"
	b state "c$i" >/dev/null
	b exec "c$i" true
	b exec "c$i" sh -c 'echo ok' >/dev/null
	b ps "c$i" >/dev/null
	b list >/dev/null
	b list -f json >/dev/null
	b pause "c$i"
	b resume "c$i"
	b kill "c$i" KILL
	wait_stopped "c$i"
	b delete "c$i"
	b delete -f "bg$i"
	(cd "$W/run" && mkdir -p "spec$i" && cd "spec$i" && b spec)
done
# Each container's init has exited, so all counters are written.
[ -z "$(b list -q)" ] || { echo "pgo-workload: containers left" >&2; exit 1; }
echo "pgo-workload: $ROUNDS rounds"
