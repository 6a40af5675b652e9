#!/bin/bash
# Private containerd 1.6 instance, isolated from any system containerd.
#   containerd-up.sh start   -> writes config, starts containerd in background, waits for socket
#   containerd-up.sh stop    -> kills+deletes all tasks/containers of THIS instance, kills only our
#                               containerd PID, unmounts leftovers, removes the state dirs
#   containerd-up.sh status
# Env: CTRD_DIR (default /tmp/berth-shim-e2e/containerd), SHIM_BIN_DIR (dir prepended to containerd's
#      PATH so third-party shims `containerd-shim-<name>-<ver>` are found; default $CTRD_DIR/bin)
# Use it:  ctr -a $CTRD_DIR/run/containerd.sock ...
set -euo pipefail
CTRD_DIR=${CTRD_DIR:-/tmp/berth-shim-e2e/containerd}
SHIM_BIN_DIR=${SHIM_BIN_DIR:-$CTRD_DIR/bin}
ROOT=$CTRD_DIR/root STATE=$CTRD_DIR/run SOCK=$CTRD_DIR/run/containerd.sock
CFG=$CTRD_DIR/config.toml PIDF=$CTRD_DIR/containerd.pid LOG=$CTRD_DIR/containerd.log

write_config() {
  mkdir -p "$ROOT" "$STATE" "$SHIM_BIN_DIR" "$CTRD_DIR/opt"
  containerd config default |
  sed -e "s|^root = .*|root = \"$ROOT\"|" \
      -e "s|^state = .*|state = \"$STATE\"|" \
      -e "/^\[grpc\]/,/^\[/ s|^  address = .*|  address = \"$SOCK\"|" \
      -e "/^\[ttrpc\]/,/^\[/ s|^  address = .*|  address = \"$SOCK.ttrpc\"|" \
      -e "s|path = \"/opt/containerd\"|path = \"$CTRD_DIR/opt\"|" \
      -e "s|bin_dir = \"/opt/cni/bin\"|bin_dir = \"/usr/lib/cni\"|" \
      -e "s|conf_dir = \"/etc/cni/net.d\"|conf_dir = \"$CTRD_DIR/cni\"|" \
      -e "s|stream_server_port = .*|stream_server_port = \"0\"|" \
      -e "s|restrict_oom_score_adj = false|restrict_oom_score_adj = true|" \
      -e "s|sandbox_image = .*|sandbox_image = \"${SANDBOX_IMAGE:-localhost/pause:latest}\"|" \
    > "$CFG"
}

start() {
  if [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; then echo "already running pid $(cat "$PIDF")"; return 0; fi
  write_config
  # PATH: our shim dir first, so `containerd-shim-<name>-<ver>` resolves there first.
  # NOTIFY_SOCKET: as systemd gives containerd.service (Type=notify); containerd
  # passes it on to its shims, which must not hand it to the runtime.
  # CTRD_NO_NOTIFY=1 leaves it unset, as on a host without systemd (the
  # benchmark's row for a shim built before that was fixed needs it).
  local notify=NOTIFY_SOCKET="$CTRD_DIR/notify.sock"
  [ "${CTRD_NO_NOTIFY:-}" = 1 ] && notify=BERTH_UNUSED=1
  env "$notify" PATH="$SHIM_BIN_DIR:$PATH" setsid containerd --config "$CFG" --log-level ${LOGLEVEL:-info} \
      >"$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDF"
  for _ in $(seq 100); do
    ctr -a "$SOCK" version >/dev/null 2>&1 && break; sleep 0.1
  done
  ctr -a "$SOCK" version >/dev/null || { echo "containerd failed, see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }
  echo "containerd pid $(cat "$PIDF") socket $SOCK"
}

stop() {
  if [ -S "$SOCK" ] && ctr -a "$SOCK" version >/dev/null 2>&1; then
    for ns in $(ctr -a "$SOCK" ns ls -q); do
      for t in $(ctr -a "$SOCK" -n "$ns" tasks ls -q); do
        ctr -a "$SOCK" -n "$ns" tasks kill -s SIGKILL "$t" 2>/dev/null || true
      done
      for t in $(ctr -a "$SOCK" -n "$ns" tasks ls -q); do
        for _ in $(seq 50); do
          ctr -a "$SOCK" -n "$ns" tasks ls | awk -v t="$t" '$1==t{print $3}' | grep -q STOPPED && break; sleep 0.1
        done
        ctr -a "$SOCK" -n "$ns" tasks delete -f "$t" >/dev/null 2>&1 || true
      done
      for c in $(ctr -a "$SOCK" -n "$ns" containers ls -q); do
        ctr -a "$SOCK" -n "$ns" containers delete "$c" >/dev/null 2>&1 || true
      done
    done
  fi
  if [ -f "$PIDF" ]; then
    pid=$(cat "$PIDF")
    if kill -0 "$pid" 2>/dev/null && grep -q "$CFG" "/proc/$pid/cmdline"; then   # really ours
      kill "$pid"; for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$PIDF"
  fi
  # unmount anything still mounted below our dirs (deepest first)
  awk -v d="$CTRD_DIR/" 'index($2,d)==1{print $2}' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
  # our cgroups: ctr uses /<namespace>/<id>; CGROUP_NAMES lists the namespaces used
  for g in ${CGROUP_NAMES:-}; do
    for c in /sys/fs/cgroup/*/"$g"; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true; done
  done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$CTRD_DIR"
  echo stopped
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null && echo "running pid $(cat "$PIDF") sock $SOCK" || echo "not running" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
