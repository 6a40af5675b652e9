#!/bin/bash
# Per-container shim memory: start N long-running containers through our private containerd,
# find each shim as the parent of the container's init PID (ctr tasks ls), read
# /proc/<shim>/smaps_rollup (Rss, Pss, Private_* = USS), then remove the containers.
# Usage: shim-mem.sh [N] [runc-binary]     (needs containerd-up.sh start + image imported)
#   SHIM_RUNTIME=io.containerd.berth.v2 shim-mem.sh 10   -> measure berth's shim instead
# Env: CTRD_DIR (as containerd-up.sh), IMG_TAR (busybox-oci.tar from make-busybox-image.sh)
set -euo pipefail
N=${1:-10}
RB=${2:-}
CTRD_DIR=${CTRD_DIR:-/tmp/berth-shim-e2e/containerd}
S=$CTRD_DIR/run/containerd.sock
IMG=${IMG:-localhost/busybox:latest}
RT=${SHIM_RUNTIME:-io.containerd.runc.v2}
NS=${NS:-berth-shimmem}
IMG_TAR=${IMG_TAR:-/tmp/berth-shim-e2e/img/busybox-oci.tar}
C="ctr -a $S -n $NS"
ids=()
cleanup() {
  for id in "${ids[@]}"; do $C tasks kill -s KILL "$id" >/dev/null 2>&1 || true; done
  sleep 0.3
  for id in "${ids[@]}"; do $C tasks delete -f "$id" >/dev/null 2>&1 || true; $C containers delete "$id" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
$C images ls -q | grep -qx "$IMG" || ctr -a "$S" -n $NS images import "$IMG_TAR" >/dev/null
extra=()
[ -n "$RB" ] && extra+=(--runc-binary "$RB")
for i in $(seq 1 "$N"); do
  id=mem$i; ids+=("$id")
  $C run -d --null-io --runtime "$RT" "${extra[@]}" "$IMG" "$id" sleep 100000 >/dev/null
done
sleep 1
kv() { awk -v k="$1:" '$1==k{print $2}' "$2"; }
printf '%-6s %7s %7s %7s %7s %7s\n' id shimpid RSS_kB PSS_kB USS_kB threads
tr=0 tp=0 tu=0
for id in "${ids[@]}"; do
  ipid=$($C tasks ls | awk -v t="$id" '$1==t{print $2}')
  spid=$(awk '{print $4}' /proc/"$ipid"/stat)
  f=/proc/$spid/smaps_rollup
  r=$(kv Rss "$f"); p=$(kv Pss "$f"); u=$(( $(kv Private_Clean "$f") + $(kv Private_Dirty "$f") ))
  th=$(awk '/^Threads:/{print $2}' /proc/"$spid"/status)
  printf '%-6s %7s %7s %7s %7s %7s\n' "$id" "$spid" "$r" "$p" "$u" "$th"
  tr=$((tr+r)) tp=$((tp+p)) tu=$((tu+u))
done
echo "shim exe: $(readlink /proc/"$spid"/exe)  runtime=$RT runc-binary=${RB:-runc(default)}"
echo "TOTAL over $N shims: RSS ${tr} kB  PSS ${tp} kB  USS ${tu} kB  | mean RSS $((tr/N)) PSS $((tp/N)) USS $((tu/N)) kB"
cpid=$(cat "$CTRD_DIR/containerd.pid")
echo "containerd (pid $cpid): RSS $(kv Rss /proc/$cpid/smaps_rollup) kB PSS $(kv Pss /proc/$cpid/smaps_rollup) kB"
