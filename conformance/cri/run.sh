#!/bin/bash
# Kubernetes CRI (v1) against berth: a private containerd 1.6 with its CRI plugin, the runtime
# handler `berth` = io.containerd.berth.v2 (containerd-shim-berth-v2), CNI loopback only, and a
# pause image and a busybox image built offline.  berth-cri-test (Rust, k8s-cri over gRPC) runs
# one pod with two containers through it and checks the host afterwards.
#   conformance/cri/run.sh          PROFILE=release  test release binaries (default debug)
#   WANT_SHIMS=N   fail unless the pod is served by N shims (default: only reported)
#   REQUIRE_STATS=1 fail when ContainerStats is not answered      KEEP=1 keep $W after the run
#   SHIM=PATH      another containerd-shim-berth-v2 binary (default: the workspace build)
# Private: containerd root, state, sockets, config, CNI conf dir, berth state root, cgroup
# parent /berth-cri-<pid>.  CRI itself always uses the containerd namespace k8s.io; with a
# private root and state that namespace is this containerd's alone.
set -euo pipefail
T0=$(date +%s%N)
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
ENG=$TOP/conformance/engines
PROFILE=${PROFILE:-debug}
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }

need_pkg() { # need_pkg FILE PKG : installs PKG when FILE is missing
  [ -e "$1" ] && return 0
  echo "installing $2" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >/dev/null
}
need_pkg /usr/bin/containerd containerd
need_pkg /usr/bin/ctr containerd
need_pkg /usr/lib/cni/loopback containernetworking-plugins
need_pkg /bin/busybox busybox-static
need_pkg /usr/bin/jq jq
need_pkg /usr/bin/protoc protobuf-compiler   # k8s-cri generates its bindings at build time

flag=; [ "$PROFILE" = release ] && flag=--release
(cd "$TOP" && cargo build -q $flag -p berth -p containerd-shim-berth -p berth-cri-test)
TGT=${CARGO_TARGET_DIR:-$TOP/target}/$PROFILE

W=$(mktemp -d /tmp/berth-cri.XXXXXX)
SOCK=$W/run/containerd.sock
CG=/berth-cri-$$
NETNS_BEFORE=$(ls /var/run/netns 2>/dev/null || true)

# Our shims: found by the -address flag naming our socket, ended by pid.
our_shims() {
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -q -- "containerd-shim-berth-v2 .*-address $SOCK " &&
      echo "${p#/proc/}"
  done
  return 0
}
cleanup() {
  set +e
  local p m a
  if [ -f "$W/containerd.pid" ]; then
    p=$(cat "$W/containerd.pid")
    if kill -0 "$p" 2>/dev/null && grep -qa -- "$W/config.toml" "/proc/$p/cmdline"; then
      kill "$p"; for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$p" 2>/dev/null
    fi
  fi
  # After a failed run: kill what the pod left, then its berth state, sockets and mounts.
  for p in $(our_shims); do kill -9 "$p"; done
  for a in "$W"/run/io.containerd.runtime.v2.task/k8s.io/*/address; do
    [ -f "$a" ] && rm -f "$(sed 's|^unix://||' "$a")"
  done
  for m in "$W"/berth/k8s.io/*; do
    [ -d "$m" ] && "$TGT/berth" --root "$W/berth/k8s.io" delete --force "${m##*/}" >/dev/null 2>&1
  done
  # libcni's result cache: our network's entries, and containerd's own loopback's for our pods.
  rm -f /var/lib/cni/results/berth-cri-$$-*
  for m in "$W"/run/io.containerd.grpc.v1.cri/sandboxes/*; do
    [ -d "$m" ] && rm -f /var/lib/cni/results/*-"${m##*/}"-*
  done
  for m in /var/run/netns/cni-*; do
    if [ -e "$m" ] && ! grep -qx -- "${m##*/}" <<<"$NETNS_BEFORE"; then
      umount "$m" 2>/dev/null; rm -f "$m"
    fi
  done
  awk -v d="$W/" 'index($2,d)==1{print $2}' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  for m in /sys/fs/cgroup/*"$CG"; do
    [ -d "$m" ] && find "$m" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
mkdir -p "$W"/{root,run,opt,cni,cni-bin,shim,berth,img}

# The shim must be on containerd's PATH (1.6.20's CRI ignores runtime_path); berth and
# the systemd driver's D-Bus helper (berth-systemd) beside it.
cp "${SHIM:-$TGT/containerd-shim-berth-v2}" "$W/shim/containerd-shim-berth-v2"
cp "$TGT/berth" "$TGT/berth-systemd" "$W/shim/"
# CRI hands a non-runc runtime its `options` as runtimeoptions.v1.Options: only ConfigPath.
cat > "$W/berth-shim.toml" <<CONF
BinaryName = "$W/shim/berth"
Root = "$W/berth"
CONF
# CNI: loopback, plus (containerd 1.6 needs an address on eth0, see berth-cri-eth0) a dummy
# eth0 inside the pod.  A private plugin dir, so no host CNI config or plugin is involved.
ln -s /usr/lib/cni/loopback "$W/cni-bin/loopback"
cp "$HERE/berth-cri-eth0" "$W/cni-bin/"
cat > "$W/cni/10-berth-cri.conflist" <<CONF
{ "cniVersion": "1.0.0", "name": "berth-cri-$$",
  "plugins": [ { "type": "loopback" }, { "type": "berth-cri-eth0" } ] }
CONF

OUT=$W/img/busybox "$ENG/make-busybox-image.sh" >/dev/null
OUT=$W/img/pause REF=localhost/pause:latest CMD_JSON='["sleep","2147483647"]' \
  "$ENG/make-busybox-image.sh" >/dev/null

containerd config default |
  sed -e "s|^root = .*|root = \"$W/root\"|" \
      -e "s|^state = .*|state = \"$W/run\"|" \
      -e "/^\[grpc\]/,/^\[/ s|^  address = .*|  address = \"$SOCK\"|" \
      -e "/^\[ttrpc\]/,/^\[/ s|^  address = .*|  address = \"$SOCK.ttrpc\"|" \
      -e "s|path = \"/opt/containerd\"|path = \"$W/opt\"|" \
      -e "s|bin_dir = \"/opt/cni/bin\"|bin_dir = \"$W/cni-bin\"|" \
      -e "s|conf_dir = \"/etc/cni/net.d\"|conf_dir = \"$W/cni\"|" \
      -e "s|stream_server_port = .*|stream_server_port = \"0\"|" \
      -e "s|sandbox_image = .*|sandbox_image = \"localhost/pause:latest\"|" \
      -e "s|restrict_oom_score_adj = false|restrict_oom_score_adj = true|" > "$W/config.toml"
cat >> "$W/config.toml" <<CONF

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
          runtime_type = "io.containerd.berth.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
            ConfigPath = "$W/berth-shim.toml"
CONF
PATH="$W/shim:$PATH" setsid containerd --config "$W/config.toml" >"$W/containerd.log" 2>&1 </dev/null &
echo $! > "$W/containerd.pid"
for _ in $(seq 100); do ctr -a "$SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr -a "$SOCK" version >/dev/null 2>&1 || { echo "containerd did not start:" >&2; tail -20 "$W/containerd.log" >&2; exit 1; }
for i in busybox pause; do
  ctr -a "$SOCK" -n k8s.io images import "$W/img/$i/busybox-oci.tar" >/dev/null
done

T1=$(date +%s%N)
rc=0
"$TGT/berth-cri-test" --socket "$SOCK" --work "$W" --berth-root "$W/berth" --cgroup-parent "$CG" \
  ${WANT_SHIMS:+--want-shims "$WANT_SHIMS"} ${REQUIRE_STATS:+--require-stats} || rc=$?
T2=$(date +%s%N)
[ "$rc" = 0 ] || { echo "containerd log (errors):"; grep -E 'level=(error|warning)' "$W/containerd.log" | tail -15; }
echo "time: client $(((T2 - T1) / 1000000)) ms, script $(((T2 - T0) / 1000000)) ms (build and images included)"
exit "$rc"
