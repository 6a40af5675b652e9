#!/bin/bash
# podman 4.3 (rootful, daemonless) against berth with private roots, config and locks.
#   conformance/engines/podman.sh [BERTH]      ROUNDS=N (latency rounds, 0 = skip)
# One line per check, then "N passed, N failed"; exit 1 on any failure.
ENG_NAME=podman
. "$(dirname "$0")/lib.sh"
need_pkgs /usr/bin/podman podman conmon slirp4netns containernetworking-plugins uidmap
CG=berth-eng-podman-$$
cleanup() {
  set +e
  [ -n "${PM:-}" ] && { "${PM[@]}" rm -af -t 0 >/dev/null 2>&1; "${PM[@]}" rmi -af >/dev/null 2>&1; }
  umount_below "$W"
  rm_cgroup "$CG"
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W"/{root,runroot,tmp,cni,volumes,berth-root}

# This VM lacks CAP_SYS_RESOURCE and podman lowers its own RLIMIT_NPROC, so podman's rootful
# default rlimits (1048576) would be refused with EPERM: keep them at what we hold.
NOFILE=$(ulimit -Hn); [ "$NOFILE" = unlimited ] && NOFILE=1048576
NPROC=$(ulimit -Hu); { [ "$NPROC" = unlimited ] || [ "$NPROC" -gt 32768 ]; } && NPROC=32768
# podman passes --runtime-flag values only from the podman command that has them, not from the
# "podman container cleanup" conmon runs at exit; a wrapper keeps berth's state private instead.
printf '#!/bin/sh\nexec %q --root %q "$@"\n' "$BW" "$W/berth-root" > "$W/bin/berth-podman"
chmod 755 "$W/bin/berth-podman"
BP=$W/bin/berth-podman
cat > "$W/containers.conf" <<CONF
[containers]
netns = "none"
log_driver = "k8s-file"
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["/usr/lib/cni"]
network_config_dir = "$W/cni"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/events.log"
tmp_dir = "$W/tmp"
volume_path = "$W/volumes"
static_dir = "$W/root/libpod"
lock_type = "file"
conmon_path = ["/usr/bin/conmon"]
runtime = "berth"
[engine.runtimes]
berth = ["$BP"]
runc = ["$RUNC"]
CONF
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$W/root" "$W/runroot" > "$W/storage.conf"
: > "$W/registries.conf"
export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf \
  CONTAINERS_REGISTRIES_CONF=$W/registries.conf
PM=(podman --root "$W/root" --runroot "$W/runroot" --tmpdir "$W/tmp" --cgroup-manager cgroupfs
    --events-backend file --storage-driver overlay)

build_image
"${PM[@]}" import -q "$W/img/rootfs.tar" localhost/bb:latest >/dev/null
IMG=localhost/bb:latest
R=(run --pull never --cgroup-parent "/$CG" --runtime "$BP")
P=("${PM[@]}")

t "run --rm: output"            0 "=hello" "${P[@]}" "${R[@]}" --rm "$IMG" echo hello
t "run --rm: exit code 7"       7 ""       "${P[@]}" "${R[@]}" --rm "$IMG" sh -c 'exit 7'
t "run --rm: stdin closed"      0 "=x"     "${P[@]}" "${R[@]}" --rm "$IMG" sh -c 'cat; echo x'
t "run -d"                      0 "~^[0-9a-f]{64}$" "${P[@]}" "${R[@]}" -d --name d1 "$IMG" sleep 1000
t "ps shows running"            0 "~Up"    "${P[@]}" ps --filter name=d1 --format '{{.Status}}'
t "exec: output"                0 "=in d1" "${P[@]}" exec d1 sh -c 'echo in d1'
t "exec: exit code 5"           5 ""       "${P[@]}" exec d1 sh -c 'exit 5'
t "exec: sees init as pid 1"    0 "=sleep 1000 " "${P[@]}" exec d1 sh -c "tr '\\0' ' ' < /proc/1/cmdline"
t "exec --user 65534"           0 "=65534" "${P[@]}" exec --user 65534 d1 id -u
t "stop -t 2"                   0 "~d1$"   "${P[@]}" stop -t 2 d1
t "stopped: exited"             0 "~^exited$" "${P[@]}" inspect -f '{{.State.Status}}' d1
t "rm"                          0 "=d1"    "${P[@]}" rm d1
t "rm: gone"                    125 ""       "${P[@]}" inspect d1
t "run -d (2)"                  0 ""       "${P[@]}" "${R[@]}" -d --name d2 "$IMG" sleep 1000
t "rm -f -t 0 (kill + delete)"  0 "=d2"    "${P[@]}" rm -f -t 0 d2
# podman 4.3 sometimes loses all output of an -it container that exits at once (seen with runc
# as often as with berth: an attach race in podman/conmon); a short pause before writing avoids it.
ttyrun "run -it: a tty"  '/dev/pts/[0-9]+' "${P[@]}" "${R[@]}" --rm -it "$IMG" sh -c 'sleep 0.3; tty'
ttyrun "run -it: stdin and stdout are ttys" 'ok-tty' "${P[@]}" "${R[@]}" --rm -it "$IMG" sh -c 'sleep 0.3; test -t 0 && test -t 1 && echo ok-tty'
t "--memory 64m"                0 "=67108864" "${P[@]}" "${R[@]}" --rm --memory 64m "$IMG" cat /sys/fs/cgroup/memory/memory.limit_in_bytes
t "--pids-limit 33"             0 "=33"    "${P[@]}" "${R[@]}" --rm --pids-limit 33 "$IMG" cat /sys/fs/cgroup/pids/pids.max
t "--cpus 0.5"                  0 "=50000" "${P[@]}" "${R[@]}" --rm --cpus 0.5 "$IMG" cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us
t "--cap-drop all"              0 "~CapEff:[[:space:]]+0000000000000000" "${P[@]}" "${R[@]}" --rm --cap-drop all "$IMG" grep CapEff /proc/self/status
t "--cap-drop chown"            1 "~Operation not permitted" "${P[@]}" "${R[@]}" --rm --cap-drop chown "$IMG" chown 1 /tmp
t "--cap-add sys_admin"         0 "=1"     "${P[@]}" "${R[@]}" --rm --cap-add sys_admin "$IMG" sh -c 'v=$(grep CapEff /proc/self/status | cut -f2); echo $(( (0x$v >> 21) & 1 ))'
t "--read-only: / refused"      1 "~Read-only file system" "${P[@]}" "${R[@]}" --rm --read-only "$IMG" touch /x
t "--read-only: /tmp writable"  0 ""       "${P[@]}" "${R[@]}" --rm --read-only "$IMG" touch /tmp/x
t "--user 65534:65534"          0 "=65534:65534" "${P[@]}" "${R[@]}" --rm --user 65534:65534 "$IMG" sh -c 'echo $(id -u):$(id -g)'
t "--workdir + --env"           0 "=/tmp v" "${P[@]}" "${R[@]}" --rm -w /tmp -e V=v "$IMG" sh -c 'echo $PWD $V'
t "--network none: only lo"     0 "=lo"    "${P[@]}" "${R[@]}" --rm --network none "$IMG" ls /sys/class/net
t "--hostname"                  0 "=box1"  "${P[@]}" "${R[@]}" --rm --hostname box1 "$IMG" hostname
if [ -x /usr/bin/slirp4netns ]; then
  t "--network slirp4netns: tap0" 0 "~tap0" "${P[@]}" "${R[@]}" --rm --network slirp4netns "$IMG" ls /sys/class/net
fi
t "no container left"           0 "="      "${P[@]}" ps -aq
t "no berth state left"         0 "="      ls -A "$W/berth-root"

if [ "$ROUNDS" -gt 0 ]; then
  # Both runtimes through the same one-exec wrapper, for private state roots at equal cost.
  for r in berth runc; do
    bin=$BERTH; [ $r = runc ] && bin=$RUNC
    printf '#!/bin/sh\nexec %q --root %q "$@"\n' "$bin" "$W/bench-$r" > "$W/bin/bench-$r"
    chmod 755 "$W/bin/bench-$r"
  done
  PQ=$(printf '%q ' "${P[@]}")
  bench "$ROUNDS" \
    berth "$PQ run --rm --pull never --cgroup-parent /$CG --network none --runtime $W/bin/bench-berth $IMG true" \
    runc  "$PQ run --rm --pull never --cgroup-parent /$CG --network none --runtime $W/bin/bench-runc $IMG true"
  t "bench left no state"       0 "="      find "$W/bench-berth" "$W/bench-runc" -mindepth 1
fi
summary
