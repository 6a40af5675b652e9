#!/bin/bash
# End-to-end test of containerd-shim-berth-v2 under a private containerd 1.6.
#
# Starts its own containerd (own root, state, socket, config; see
# containerd-up.sh), imports a busybox image built offline, and drives
# containers with `ctr --runtime io.containerd.berth.v2` in a namespace and
# fifo dir of its own, so it never meets another containerd's tasks (all
# containerds share /run/containerd/{fifo,s}). Stops and removes everything
# at the end, and prints "N passed, N failed".
#
# Usage: shim/tests/e2e.sh            (as root, from anywhere)
# Env:   PROFILE=release   build and test release binaries (default debug)
#        KEEP=1            leave containerd running and its dir in place
#        SHIM_FEATURES=--features=in-process  test the shim built with berth's
#                          code linked in (its helper is a fork of the shim)
#        BERTH_SHIM_EXEC=1 containerd (so the shim) runs with it: the shim execs
#                          the berth binary for every command, no helper
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PROFILE=${PROFILE:-debug}
WORK=${WORK:-/tmp/berth-shim-e2e.$$}
NS=berth-shim-e2e-$$
export CTRD_DIR=$WORK/containerd SHIM_BIN_DIR=$WORK/bin CGROUP_NAMES=$NS
S=$CTRD_DIR/run/containerd.sock
C="ctr -a $S -n $NS"
IMG=localhost/busybox:latest
RT=(--runtime io.containerd.berth.v2 --fifo-dir "$WORK/fifo")
pass=0 fail=0 skipped=0

ok() { pass=$((pass + 1)); echo "ok   - $*"; }
nok() { fail=$((fail + 1)); echo "FAIL - $*"; }
# skip NAME REASON: counted apart, never as a pass
skip() { skipped=$((skipped + 1)); echo "SKIP - $1: $2"; }
# check NAME EXPECTED ACTUAL
check() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1: expected [$2], got [$3]"; fi; }
run() { timeout 60 $C run --rm "${RT[@]}" "$@" </dev/null; }
state() { $C tasks ls | awk -v t="$1" '$1==t{print $3}'; }
# Shim processes (by comm, among those with this test's namespace).
shim_procs() { for p in $(pgrep -f -- "containerd-shim-berth-v2 -namespace $NS "); do
  [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$1" ] && echo "$p"; done; }
shims() { shim_procs containerd-shim | wc -l; }
# Not dead, nor a zombie of whoever it was re-parented to.
alive() { [ -e /proc/"$1" ] && [ "$(awk '{print $3}' /proc/"$1"/stat 2>/dev/null)" != Z ]; }
# The berth helpers of this test's shims: each shim's child named
# berth-helper (a fork of the shim, or the berth binary it started).
# Every one seen is remembered, so a helper its shim left behind is found.
helper_procs() { for p in $(shim_procs containerd-shim); do pgrep -P "$p" -x berth-helper; done |
  tee -a "$WORK/helpers.seen"; }
helpers() { helper_procs | wc -l; }
# Helpers seen so far that still run (by pid and name, as pids are reused).
helpers_left() { sort -u "$WORK/helpers.seen" 2>/dev/null | while read -r p; do
  alive "$p" && [ "$(cat /proc/"$p"/comm 2>/dev/null)" = berth-helper ] && echo "$p"; done | wc -l; }
# How long a shim keeps an idle helper (default 3 s): shorter, to test its exit.
export BERTH_SHIM_HELPER_IDLE_MS=1500

cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    "$HERE/containerd-up.sh" stop >/dev/null 2>&1
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

command -v containerd >/dev/null && command -v ctr >/dev/null || {
  echo "installing containerd"; apt-get install -y containerd >/dev/null || exit 1; }
if [ "$PROFILE" = release ]; then flag=--release; else flag=; fi
# SHIM_FEATURES=--features=in-process tests the shim with berth's code
# linked in. berth is built on its own: its default features include the
# command line the binary needs.
(cd "$REPO" && cargo build $flag -p berth && cargo build $flag -p containerd-shim-berth ${SHIM_FEATURES:-} &&
  cargo build $flag -p containerd-shim-berth ${SHIM_FEATURES:-} --example shim-call) || exit 1
# Where the shim's requests run: a berth helper it starts (exec), a helper
# forked from the shim (forked), or a berth command each (none).
case "${SHIM_FEATURES:-}" in *in-process*) HELPER=forked ;; *) HELPER=exec ;; esac
[ "${BERTH_SHIM_EXEC:-0}" != 0 ] && HELPER=none
TGT=${CARGO_TARGET_DIR:-$REPO/target}/$PROFILE
mkdir -p "$SHIM_BIN_DIR" "$WORK/fifo"
# berth-systemd: the systemd driver's D-Bus helper, found next to berth and the shim.
cp "$TGT/containerd-shim-berth-v2" "$TGT/berth" "$TGT/berth-systemd" "$SHIM_BIN_DIR/"
OUT=$WORK/img "$HERE/../../conformance/engines/make-busybox-image.sh" >/dev/null || exit 1
"$HERE/containerd-up.sh" start || exit 1
$C images import "$WORK/img/busybox-oci.tar" >/dev/null || exit 1
s_before=$(ls /run/containerd/s 2>/dev/null | grep -c '^berth-')
ctr -a "$S" events >"$WORK/events" 2>&1 &
evpid=$!
sleep 0.3

# --- run: output, exit code, streams, stdin
check "run prints hello" hello "$(run $IMG t-hello echo hello)"
run $IMG t-exit sh -c 'exit 3' >/dev/null 2>&1
check "exit code returned" 3 "$?"
out=$(run $IMG t-streams sh -c 'echo to-out; echo to-err >&2' 2>"$WORK/err")
check "stdout relayed" to-out "$out"
check "stderr relayed" to-err "$(cat "$WORK/err")"
check "stdin relayed" abc "$(echo abc | timeout 60 $C run --rm "${RT[@]}" $IMG t-stdin cat)"
timeout 60 $C run --rm "${RT[@]}" $IMG t-sig sleep 1000 </dev/null &
ctrpid=$!
for _ in $(seq 50); do [ "$(state t-sig)" = RUNNING ] && break; sleep 0.1; done
$C tasks kill -s KILL t-sig
wait $ctrpid
check "killed by a signal: exit status 128+9" 137 "$?"

# --- many layers: an overlay whose lowerdir option is longer than a page
# (the kernel takes one page of mount data). At least 40 layers, more if
# this containerd's snapshot paths are short, so the option does exceed it.
SNAPS=$CTRD_DIR/root/io.containerd.snapshotter.v1.overlayfs/snapshots
NL=$(( 4300 / (${#SNAPS} + 8) + 1 )); [ "$NL" -lt 40 ] && NL=40
OUT=$WORK/img-layers REF=localhost/layers:latest EXTRA_LAYERS=$((NL - 1)) \
  "$HERE/../../conformance/engines/make-busybox-image.sh" >/dev/null &&
  $C images import "$WORK/img-layers/busybox-oci.tar" >/dev/null || nok "import the $NL-layer image"
check "$NL-layer image: every layer visible" "$((NL - 1)) $((NL - 1))" \
  "$(run localhost/layers:latest t-layers sh -c "ls /layers | wc -l; cat /layers/$((NL - 1))" | tr '\n' ' ' | sed 's/ $//')"
$C images rm localhost/layers:latest >/dev/null 2>&1
rm -rf "$WORK/img-layers"

# --- a detached task: state, pids, exec, kill, delete, shim exit
timeout 60 $C run -d "${RT[@]}" $IMG t-bg sleep 1000 >/dev/null
check "detached task running" RUNNING "$(state t-bg)"
pid=$($C tasks ls | awk '$1=="t-bg"{print $2}')
shim=$(awk '{print $4}' /proc/"$pid"/stat 2>/dev/null)
# comm, not /proc/PID/exe: the shim runs from a sealed copy of its binary.
check "shim is the init's parent (subreaper)" containerd-shim "$(cat /proc/"$shim"/comm 2>/dev/null)"
# Whatever inits are clones of runs from a copy no container can write:
# the shim with berth linked in, or the berth helper it starts (berth
# commands seal themselves likewise).
ro_exe() { python3 -c 'import os,sys; print("ro" if os.statvfs(sys.argv[1]).f_flag & os.ST_RDONLY else "rw")' /proc/"$1"/exe; }
case $HELPER in
  forked) check "the shim's binary is sealed (read-only mount)" ro "$(ro_exe "$shim")" ;;
  exec) h=$(pgrep -P "$shim" -x berth-helper | head -1)
        check "the shim's berth helper runs from a sealed copy (read-only mount)" ro \
          "$([ -n "$h" ] && ro_exe "$h")" ;;
esac
check "pids lists the init" "$pid" "$($C tasks ps t-bg | awk 'NR>1{print $1}' | tr '\n' ' ' | xargs)"
check "exec output" in-exec "$(timeout 60 $C tasks exec --exec-id e1 t-bg echo in-exec </dev/null)"
timeout 60 $C tasks exec --exec-id e2 t-bg sh -c 'exit 5' </dev/null
check "exec exit code" 5 "$?"
check "exec stdin" xyz "$(echo xyz | timeout 60 $C tasks exec --exec-id e3 t-bg cat)"
$C tasks kill -s KILL t-bg
for _ in $(seq 50); do [ "$(state t-bg)" = STOPPED ] && break; sleep 0.1; done
check "killed task stopped" STOPPED "$(state t-bg)"
$C tasks rm t-bg >/dev/null 2>&1
check "task deleted" "" "$(state t-bg)"
$C containers rm t-bg
sleep 0.3
check "shim and its helper exited after its last task" 0 "$(( $(shims) + $(helpers_left) ))"

# --- pause/resume, update, metrics, checkpoint
timeout 60 $C run -d "${RT[@]}" $IMG t-ops sleep 1000 >/dev/null
$C tasks pause t-ops
check "paused task state" PAUSED "$(state t-ops)"
check "frozen cgroup" FROZEN "$(cat /sys/fs/cgroup/freezer/"$NS"/t-ops/freezer.state 2>/dev/null)"
$C tasks resume t-ops
check "resumed task state" RUNNING "$(state t-ops)"
err=$($C tasks resume t-ops 2>&1)
check "resume of a running task is refused" 1 "$(echo "$err" | grep -c 'container t-ops is RUNNING, not PAUSED')"
# ctr 1.6 has no `tasks update`: send the Update as containerd forwards it
addr=$(cat "$CTRD_DIR/run/io.containerd.runtime.v2.task/$NS/t-ops/address" 2>/dev/null)
"$TGT/examples/shim-call" "$addr" update t-ops '{"memory":{"limit":33554432},"pids":{"limit":50}}'
check "update sets the memory limit" 33554432 "$(cat /sys/fs/cgroup/memory/"$NS"/t-ops/memory.limit_in_bytes 2>/dev/null)"
check "update sets the pids limit" 50 "$(cat /sys/fs/cgroup/pids/"$NS"/t-ops/pids.max 2>/dev/null)"
err=$("$TGT/examples/shim-call" "$addr" update t-ops '{}' x.Bogus 2>&1)
check "update with a foreign type is refused" 1 "$(echo "$err" | grep -c 'invalid update resources: unsupported type "x.Bogus"')"
err=$("$TGT/examples/shim-call" "$addr" update t-ops '{"memory":{"limit":"lots"}}' 2>&1)
# Decoded by the shim into berth's typed request: refused with serde's reason.
check "bad resources JSON: refused with its reason" 1 "$(echo "$err" | grep -c 'invalid update resources: .*"lots"')"
m=$($C tasks metrics t-ops 2>&1)
check "metrics: memory limit" 33554432 "$(echo "$m" | awk '$1=="memory.limit_in_bytes"{print $2}')"
check "metrics: pids" 1 "$(echo "$m" | awk '$1=="pids.current"{print $2}')"
check "metrics: memory usage counted" yes "$([ "$(echo "$m" | awk '$1=="memory.usage_in_bytes"{print $2}')" -gt 0 ] 2>/dev/null && echo yes)"
# Checkpoint through the shim: a round trip's image where the host's CRIU
# works; elsewhere (Debian 12's CRIU 3.17 on kernels >= 6.13) the error
# must be berth's, through the shim, and the task must keep running.
pauses=2 # pause/resume above, and ctr's around its checkpoint
if criu check >/dev/null 2>&1; then
  pauses=1
  "$TGT/examples/shim-call" "$addr" checkpoint t-ops "$WORK/ckpt" >/dev/null 2>&1
  check "checkpoint through the shim succeeds" 0 "$?"
  check "checkpoint wrote CRIU's image" yes "$([ -e "$WORK/ckpt/inventory.img" ] && echo yes)"
  skip "ctr checkpoint reports berth's error" "CRIU works here"
else
  err=$("$TGT/examples/shim-call" "$addr" checkpoint t-ops "$WORK/ckpt" 2>&1)
  check "checkpoint reports berth's CRIU error" 1 "$(echo "$err" | grep -c '^shim-call: berth checkpoint t-ops: criu dump failed')"
  # ctr pauses the task around a checkpoint (hence a second paused/resumed
  # event pair below); berth checkpoints it paused, and CRIU's error comes back
  err=$($C tasks checkpoint t-ops 2>&1)
  check "ctr checkpoint reports berth's error" 1 "$(echo "$err" | grep -c 'berth checkpoint t-ops: ')"
  check "task still running after the failed checkpoints" RUNNING "$(state t-ops)"
fi
$C tasks kill -s KILL t-ops
for _ in $(seq 50); do [ "$(state t-ops)" = STOPPED ] && break; sleep 0.1; done
$C tasks rm t-ops >/dev/null 2>&1; $C containers rm t-ops

# --- grouping: containers of one sandbox share a shim, others get their own
shim_of() { awk '{print $4}' /proc/"$($C tasks ls | awk -v t="$1" '$1==t{print $2}')"/stat 2>/dev/null; }
POD=(--annotation io.kubernetes.cri.sandbox-id=pod-$$)
timeout 60 $C run -d "${RT[@]}" "${POD[@]}" $IMG t-pod1 sleep 1000 >/dev/null
timeout 60 $C run -d "${RT[@]}" "${POD[@]}" $IMG t-pod2 sleep 1000 >/dev/null
timeout 60 $C run -d "${RT[@]}" $IMG t-solo sleep 1000 >/dev/null
check "one shim per pod, one for the lone container" 2 "$(shims)"
case $HELPER in
  forked) check "one berth helper per shim" 2 "$(helpers)" ;;
  exec) check "at most one berth helper per shim" yes "$([ "$(helpers)" -le 2 ] && echo yes)" ;;
  none) check "no berth helper when every command execs berth" 0 "$(helpers)" ;;
esac
if [ "$HELPER" = exec ]; then
  for _ in $(seq 100); do [ "$(helpers)" = 0 ] && break; sleep 0.1; done
  check "an idle shim's berth helper exits" 0 "$(helpers)"
  check "the containers outlive their shims' helpers" "RUNNING RUNNING RUNNING" \
    "$(state t-pod1) $(state t-pod2) $(state t-solo)"
fi
s1=$(shim_of t-pod1)
check "both pod containers under one shim" "$s1" "$(shim_of t-pod2)"
check "the lone container has its own shim" yes "$([ -n "$s1" ] && [ "$(shim_of t-solo)" != "$s1" ] && echo yes)"
check "exec in the second pod container" pod2 "$(timeout 60 $C tasks exec --exec-id p1 t-pod2 echo pod2 </dev/null)"
$C tasks kill -s KILL t-pod1
for _ in $(seq 50); do [ "$(state t-pod1)" = STOPPED ] && break; sleep 0.1; done
$C tasks rm t-pod1 >/dev/null 2>&1; $C containers rm t-pod1
sleep 0.3
check "pod shim stays for its remaining container" yes "$(kill -0 "$s1" 2>/dev/null && echo yes)"
check "remaining pod container still running" RUNNING "$(state t-pod2)"
$C tasks kill -s KILL t-pod2
for _ in $(seq 50); do [ "$(state t-pod2)" = STOPPED ] && break; sleep 0.1; done
check "exit of the second pod container seen" STOPPED "$(state t-pod2)"
$C tasks rm t-pod2 >/dev/null 2>&1; $C containers rm t-pod2
for _ in $(seq 20); do kill -0 "$s1" 2>/dev/null || break; sleep 0.1; done
check "pod shim exits after its last container" no "$(kill -0 "$s1" 2>/dev/null && echo yes || echo no)"
$C tasks kill -s KILL t-solo
for _ in $(seq 50); do [ "$(state t-solo)" = STOPPED ] && break; sleep 0.1; done
$C tasks rm t-solo >/dev/null 2>&1; $C containers rm t-solo

# --- kill --all reaches every process of the container
timeout 60 $C run -d "${RT[@]}" $IMG t-all sh -c 'sleep 1000 & sleep 1000' >/dev/null
sleep 0.3
check "pids lists init and child" 2 "$($C tasks ps t-all | awk 'NR>1' | wc -l)"
$C tasks kill -a -s KILL t-all
for _ in $(seq 50); do [ "$(state t-all)" = STOPPED ] && break; sleep 0.1; done
check "kill --all stops the task" STOPPED "$(state t-all)"
$C tasks rm t-all >/dev/null 2>&1; $C containers rm t-all

# --- log URIs: a file, and a logger binary fed through fds 3/4 (5: ready)
waitfile() { for _ in $(seq 50); do [ -s "$1" ] && break; sleep 0.1; done; cat "$1" 2>/dev/null; }
run --log-uri "file://$WORK/logs/t-file.log" $IMG t-file sh -c 'echo f-out; echo f-err >&2' >/dev/null
check "file log URI: stdout and stderr in the file" "f-out f-err" "$(waitfile "$WORK/logs/t-file.log" | xargs)"
run --log-uri "file://$WORK/logs/t-file.log" $IMG t-file2 echo again >/dev/null
check "file log URI: appended" "f-out f-err again" "$(waitfile "$WORK/logs/t-file.log" | xargs)"
mkdir -p "$WORK/lg"
cat >"$WORK/lg/logger" <<'EOF'
#!/bin/sh
d=$(dirname "$0")
echo "$CONTAINER_NAMESPACE/$CONTAINER_ID $*" >"$d/env"
# the copies must not hold the readiness fd, or it never reads EOF
cat <&3 5>&- >"$d/out.tmp" &
cat <&4 5>&- >"$d/err.tmp" &
sleep 0.3; exec 5>&-
wait
mv "$d/out.tmp" "$d/out"; mv "$d/err.tmp" "$d/err"
EOF
chmod +x "$WORK/lg/logger"
run --log-uri "binary://$WORK/lg/logger?--mode=a%20b&flag" $IMG t-bin sh -c 'echo b-out; echo b-err >&2' >/dev/null
check "binary log URI: stdout through fd 3" b-out "$(waitfile "$WORK/lg/out")"
check "binary log URI: stderr through fd 4" b-err "$(waitfile "$WORK/lg/err")"
check "binary log URI: args and env" "$NS/t-bin --mode a b flag" "$(cat "$WORK/lg/env" 2>/dev/null)"
check "binary log URI: logger exited and reaped" 0 "$(pgrep -f "$WORK/lg/logger" | wc -l)"
err=$(run --log-uri "bogus:///x" $IMG t-badlog echo no 2>&1)
check "unsupported log URI scheme is a clear error" 1 "$(echo "$err" | grep -c 'invalid stdio uri: bogus:///x: unsupported scheme')"
$C containers rm t-badlog >/dev/null 2>&1
printf '#!/bin/sh\nexec sleep 100\n' >"$WORK/lg/stuck"; chmod +x "$WORK/lg/stuck"
err=$(run --log-uri "binary://$WORK/lg/stuck" $IMG t-stuck echo no 2>&1)
check "logger never ready: clear error" 1 "$(echo "$err" | grep -c "logger $WORK/lg/stuck not ready")"
check "logger never ready: killed" 0 "$(pgrep -f "$WORK/lg/stuck" | wc -l)"
$C containers rm t-stuck >/dev/null 2>&1
err=$(run --log-uri "binary://$WORK/lg/missing" $IMG t-nolog echo no 2>&1)
check "missing logger: clear error" 1 "$(echo "$err" | grep -c "start logger $WORK/lg/missing: No such file")"
$C containers rm t-nolog >/dev/null 2>&1

# --- terminal (needs script(1) to give ctr a tty)
if command -v script >/dev/null; then
  out=$(timeout 60 script -qec "$C run --rm -t ${RT[*]} $IMG t-tty sh -c 'tty; exit 4'" /dev/null </dev/null)
  rc=$?
  check "tty run sees a pty" 1 "$(echo "$out" | grep -c '^.*/dev/pts/')"
  check "tty run exit code" 4 "$rc"
  timeout 60 $C run -d "${RT[@]}" $IMG t-ttyx sleep 1000 >/dev/null
  out=$(timeout 60 script -qec "$C tasks exec -t --exec-id x1 t-ttyx sh -c 'tty; exit 6'" /dev/null </dev/null)
  rc=$?
  check "tty exec sees a pty" 1 "$(echo "$out" | grep -c '/dev/pts/')"
  check "tty exec exit code" 6 "$rc"
  $C tasks kill -s KILL t-ttyx; sleep 0.3; $C tasks rm t-ttyx >/dev/null 2>&1; $C containers rm t-ttyx
else
  skip "tty exec (2 checks)" "no script(1) here"
fi

# --- OOM: a shell outgrowing a 16 MiB limit
err=$(run --memory-limit 16777216 $IMG t-oom sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a); echo ${#x}' 2>&1)
check "OOM-killed task exits 137" 137 "$?"

# --- runtime options: runtimeoptions.v1.Options with a config file
echo "BinaryName = \"$SHIM_BIN_DIR/berth\"" >"$WORK/ok.toml"
check "runtime config file honoured" cfg-ok "$(run --runtime-config-path "$WORK/ok.toml" $IMG t-cfg echo cfg-ok 2>&1)"
echo 'Bogus = 1' >"$WORK/bad.toml"
err=$(run --runtime-config-path "$WORK/bad.toml" $IMG t-cfgbad echo no 2>&1)
check "bad runtime config is a clear error" 1 "$(echo "$err" | grep -c 'bad.toml:1: unknown option Bogus')"

# --- a failing create leaves nothing behind and reports berth's error
err=$(run $IMG t-noexec /nonexistent 2>&1)
check "failed create reports berth's error" 1 "$(echo "$err" | grep -c 'berth create t-noexec: .*/nonexistent')"

# --- the delete action: a shim killed under its task
timeout 60 $C run -d "${RT[@]}" $IMG t-dead sleep 1000 >/dev/null
pid=$($C tasks ls | awk '$1=="t-dead"{print $2}')
dead_shim=$(awk '{print $4}' /proc/"$pid"/stat)
dead_helper=$(pgrep -P "$dead_shim" berth-helper)
kill -9 "$dead_shim"
for _ in $(seq 50); do [ -z "$(state t-dead)" ] && break; sleep 0.1; done
[ "$HELPER" != none ] &&
  check "the killed shim's helper died with it" gone "$( [ -n "$dead_helper" ] && ! alive "$dead_helper" && echo gone)"
check "dead shim cleaned up by 'delete'" "" "$(state t-dead)"
for _ in $(seq 20); do [ -e /proc/"$pid" ] || break; sleep 0.1; done
check "container init of the dead shim killed" no "$([ -e /proc/"$pid" ] && echo yes || echo no)"
$C containers rm t-dead

# --- SIGTERM stops a shim (as containerd's own shims); containerd then
# cleans up its task through the delete action
timeout 60 $C run -d "${RT[@]}" $IMG t-term sleep 1000 >/dev/null
pid=$($C tasks ls | awk '$1=="t-term"{print $2}')
term_shim=$(awk '{print $4}' /proc/"$pid"/stat)
kill -TERM "$term_shim"
for _ in $(seq 50); do alive "$term_shim" || break; sleep 0.1; done
check "SIGTERM stops the shim" gone "$(alive "$term_shim" || echo gone)"
for _ in $(seq 50); do [ -z "$(state t-term)" ] && break; sleep 0.1; done
check "containerd cleaned up after the stopped shim" "" "$(state t-term)"
for _ in $(seq 20); do [ -e /proc/"$pid" ] || break; sleep 0.1; done
check "container init of the stopped shim killed" no "$([ -e /proc/"$pid" ] && echo yes || echo no)"
$C containers rm t-term

# --- events forwarded to containerd
sleep 0.3
kill "$evpid"; wait "$evpid" 2>/dev/null
ev() { grep -c "$NS $1 {\"container_id\":\"$2\"" "$WORK/events"; }
for t in create start exit delete; do check "event /tasks/$t" 1 "$(ev /tasks/$t t-hello)"; done
check "exit event carries the status" 1 "$(grep -c "/tasks/exit {\"container_id\":\"t-exit\",.*\"exit_status\":3" "$WORK/events")"
check "exec events" 3 "$(grep -c "/tasks/exec-added {\"container_id\":\"t-bg\"" "$WORK/events")"
check "exec-started events" 3 "$(grep -c "/tasks/exec-started {\"container_id\":\"t-bg\"" "$WORK/events")"
for t in paused resumed; do check "event /tasks/$t" "$pauses" "$(ev /tasks/$t t-ops)"; done
# cgroup v1 signals every OOM attempt in the cgroup: at least one event
check "event /tasks/oom" yes "$([ "$(ev /tasks/oom t-oom)" -ge 1 ] && echo yes)"

# --- containerd restarts under a running task: it reconnects through the
# bundle's address file and the task stays manageable
timeout 60 $C run -d "${RT[@]}" $IMG t-restart sleep 1000 >/dev/null
cpid=$(cat "$CTRD_DIR/containerd.pid")
kill "$cpid"
for _ in $(seq 100); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
"$HERE/containerd-up.sh" start >/dev/null
check "task survives a containerd restart" RUNNING "$(state t-restart)"
check "exec after the restart" again "$(timeout 60 $C tasks exec --exec-id r1 t-restart echo again </dev/null)"
$C tasks kill -s KILL t-restart
for _ in $(seq 50); do [ "$(state t-restart)" = STOPPED ] && break; sleep 0.1; done
check "kill after the restart" STOPPED "$(state t-restart)"
$C tasks rm t-restart >/dev/null 2>&1; $C containers rm t-restart

# --- the shim binary's own command line
err=$("$SHIM_BIN_DIR/containerd-shim-berth-v2" -bogus 2>&1)
check "unknown shim flag: exit 1" 1 "$?"
check "unknown shim flag: one-line error" "containerd-shim-berth-v2: shim flags: unknown flag -bogus" "$err"

# --- nothing leaked
check "no task left" "" "$($C tasks ls -q)"
check "no shim or helper left" 0 "$(( $(shims) + $(helpers_left) ))"
check "no rootfs mount left" 0 "$(awk -v d="$CTRD_DIR/" 'index($2,d)==1' /proc/self/mounts | wc -l)"
check "no berth state left" "" "$(ls -A /run/containerd/berth/"$NS" 2>/dev/null)"
check "no shim socket left" "$s_before" "$(ls /run/containerd/s 2>/dev/null | grep -c '^berth-')"
# console sockets are berth-pty-<shim pid>-<n>: one of a dead shim leaked
leaked=$(for f in "${TMPDIR:-/tmp}"/berth-pty-*; do
  [ -e "$f" ] || continue; p=${f##*/berth-pty-}; kill -0 "${p%%-*}" 2>/dev/null || echo "$f"; done)
check "no console socket left" "" "$leaked"
check "no container cgroup left" "" "$(find /sys/fs/cgroup/*/"$NS" -mindepth 1 -type d 2>/dev/null)"
rmdir /run/containerd/berth/"$NS" 2>/dev/null

echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
