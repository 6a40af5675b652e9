#!/bin/bash
# dockerd 20.10 (Debian docker.io) against berth: a private daemon (own data-root, exec-root,
# socket, pidfile and managed containerd; no iptables, no bridge) with berth added as a runtime.
#   conformance/engines/docker.sh [BERTH]      ROUNDS=N (latency rounds, 0 = skip)
# /usr/bin/docker is the 20.10 client; other dockers on PATH are not used.
ENG_NAME=docker
. "$(dirname "$0")/lib.sh"
need_pkgs /usr/sbin/dockerd docker.io
CG=berth-eng-docker-$$
SOCK=$W/docker.sock
cleanup() {
  set +e
  if [ -S "$SOCK" ]; then ids=$(D ps -aq 2>/dev/null); [ -n "$ids" ] && D rm -f $ids >/dev/null 2>&1; fi
  stop_pid "$W/dockerd.pid" dockerd
  # dockerd's managed containerd normally exits with it; make sure, by its own pid file
  stop_pid "$W/exec/containerd/containerd.pid" containerd
  sleep 0.2
  umount_below "$W"
  rm_cgroup "$CG"
  rm -rf "$W"
}
trap cleanup EXIT
D() { DOCKER_CONFIG=$W/client /usr/bin/docker -H "unix://$SOCK" "$@"; }
mkdir -p "$W"/{data,exec,client}
echo '{}' > "$W/daemon.json"   # a private, empty config: /etc/docker/daemon.json is not read
setsid /usr/sbin/dockerd --config-file "$W/daemon.json" --data-root "$W/data" --exec-root "$W/exec" \
  -H "unix://$SOCK" --pidfile "$W/dockerd.pid" \
  --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false --bridge=none \
  --userland-proxy=false --storage-driver overlay2 \
  --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$CG" \
  --add-runtime berth="$BW" --add-runtime berth-direct="$BERTH" --add-runtime runc-direct="$RUNC" \
  >"$W/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 150); do D version >/dev/null 2>&1 && break; sleep 0.2; done
D version >/dev/null 2>&1 || { echo "dockerd did not start:" >&2; tail -20 "$W/dockerd.log" >&2; exit 1; }
DC=(env DOCKER_CONFIG="$W/client" /usr/bin/docker -H "unix://$SOCK")

build_image
D import "$W/img/rootfs.tar" bb:local >/dev/null
IMG=bb:local
R=(run --runtime berth --network none)

t "info lists berth"            0 "~berth" "${DC[@]}" info --format '{{json .Runtimes}}'
t "run --rm: output"            0 "=hello" "${DC[@]}" "${R[@]}" --rm "$IMG" echo hello
t "run --rm: exit code 7"       7 ""       "${DC[@]}" "${R[@]}" --rm "$IMG" sh -c 'exit 7'
t "run -d"                      0 "~^[0-9a-f]{64}$" "${DC[@]}" "${R[@]}" -d --name d1 "$IMG" sleep 1000
t "inspect: running"            0 "=running berth" "${DC[@]}" inspect -f '{{.State.Status}} {{.HostConfig.Runtime}}' d1
t "exec: output"                0 "=in d1" "${DC[@]}" exec d1 sh -c 'echo in d1'
t "exec: exit code 5"           5 ""       "${DC[@]}" exec d1 sh -c 'exit 5'
t "exec --user 65534"           0 "=65534" "${DC[@]}" exec --user 65534 d1 id -u
t "top (ps via runtime)"        0 "~sleep 1000" "${DC[@]}" top d1
t "pause"                       0 ""       "${DC[@]}" pause d1
t "paused"                      0 "=paused" "${DC[@]}" inspect -f '{{.State.Status}}' d1
t "unpause"                     0 ""       "${DC[@]}" unpause d1
t "stop -t 2"                   0 "=d1"    "${DC[@]}" stop -t 2 d1
t "stopped: exit 137"           0 "=exited 137" "${DC[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' d1
t "start again"                 0 "=d1"    "${DC[@]}" start d1
t "kill"                        0 "=d1"    "${DC[@]}" kill d1
t "rm"                          0 "=d1"    "${DC[@]}" rm d1
t "rm: gone"                    1 ""       "${DC[@]}" inspect d1
ttyrun "run -it: a tty"  '/dev/pts/[0-9]+' "${DC[@]}" "${R[@]}" --rm -it "$IMG" tty
t "run -d (tty)"                0 ""       "${DC[@]}" "${R[@]}" -d -t --name d2 "$IMG" sleep 1000
ttyrun "exec -it: a tty" '/dev/pts/[0-9]+' "${DC[@]}" exec -it d2 tty
t "rm -f"                       0 "=d2"    "${DC[@]}" rm -f d2
t "--memory 64m"                0 "=67108864" "${DC[@]}" "${R[@]}" --rm --memory 64m "$IMG" cat /sys/fs/cgroup/memory/memory.limit_in_bytes
t "--pids-limit 33"             0 "=33"    "${DC[@]}" "${R[@]}" --rm --pids-limit 33 "$IMG" cat /sys/fs/cgroup/pids/pids.max
t "--read-only"                 1 "~Read-only file system" "${DC[@]}" "${R[@]}" --rm --read-only "$IMG" touch /x
t "--user 65534:65534"          0 "=65534:65534" "${DC[@]}" "${R[@]}" --rm --user 65534:65534 "$IMG" sh -c 'echo $(id -u):$(id -g)'
t "--cap-drop all"              0 "~CapEff:[[:space:]]+0000000000000000" "${DC[@]}" "${R[@]}" --rm --cap-drop all "$IMG" grep CapEff /proc/self/status
t "no container left"           0 "="      "${DC[@]}" ps -aq

if [ "$ROUNDS" -gt 0 ]; then
  DQ=$(printf '%q ' "${DC[@]}")
  bench "$ROUNDS" \
    berth "$DQ run --rm --network none --runtime berth-direct $IMG true" \
    runc  "$DQ run --rm --network none --runtime runc-direct $IMG true"
fi
summary
