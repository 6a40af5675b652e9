#!/bin/bash
# Every engine suite against berth, one after the other (they share nothing, but CPU is
# scarce and latency figures need a quiet machine), with the wall time of each.
#   conformance/engines/run-all.sh [BERTH]     ENGINES="podman docker containerd" ROUNDS=10
# Exit status: non-zero if any suite failed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
rc=0
summary=()
for e in ${ENGINES:-podman docker containerd}; do
  echo "== $e"
  t0=$(date +%s)
  "$HERE/$e.sh" "$@"; r=$?
  t1=$(date +%s)
  [ "$r" = 0 ] || rc=1
  summary+=("$(printf '%-11s %-4s %4ss' "$e" "$([ "$r" = 0 ] && echo ok || echo FAIL)" $((t1 - t0)))")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $rc
