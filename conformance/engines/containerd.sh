#!/bin/bash
# containerd 1.6 with the STOCK io.containerd.runc.v2 shim running berth as its runc binary.
# A private containerd (own root, state, sockets, config), our own namespace and fifo dir:
# every containerd on a host shares /run/containerd/{fifo,s,runc}.
#   conformance/engines/containerd.sh [BERTH]      ROUNDS=N (latency rounds, 0 = skip)
ENG_NAME=containerd
. "$(dirname "$0")/lib.sh"
need_pkgs /usr/bin/containerd containerd
need_pkgs /usr/bin/ctr containerd
NS=berth-eng-$$                 # also the cgroup parent ctr uses: /<ns>/<id>
SOCK=$W/run/containerd.sock
FIFO=$W/fifo
cleanup() {
  set +e
  if [ -S "$SOCK" ]; then
    for c in $(C tasks ls -q 2>/dev/null); do C tasks kill -s SIGKILL "$c" >/dev/null 2>&1; done
    sleep 0.3
    for c in $(C tasks ls -q 2>/dev/null); do C tasks delete -f "$c" >/dev/null 2>&1; done
    for c in $(C containers ls -q 2>/dev/null); do C containers delete "$c" >/dev/null 2>&1; done
    for i in $(C images ls -q 2>/dev/null); do C images rm "$i" >/dev/null 2>&1; done
    ctr -a "$SOCK" namespaces rm "$NS" >/dev/null 2>&1
  fi
  stop_pid "$W/containerd.pid" "$W/config.toml"
  umount_below "$W"
  rm_cgroup "$NS"
  rmdir /run/containerd/runc/"$NS" /run/containerd/s 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
C() { ctr -a "$SOCK" -n "$NS" "$@"; }
mkdir -p "$W"/{root,run,opt,cni} "$FIFO"

# The runc shim's options (BinaryName, Root) come from the runtime table for CRI clients; ctr
# passes the same runc options per container (--runc-binary), which is what this script uses.
containerd config default |
  sed -e "s|^root = .*|root = \"$W/root\"|" \
      -e "s|^state = .*|state = \"$W/run\"|" \
      -e "/^\[grpc\]/,/^\[/ s|^  address = .*|  address = \"$SOCK\"|" \
      -e "/^\[ttrpc\]/,/^\[/ s|^  address = .*|  address = \"$SOCK.ttrpc\"|" \
      -e "s|path = \"/opt/containerd\"|path = \"$W/opt\"|" \
      -e "s|bin_dir = \"/opt/cni/bin\"|bin_dir = \"/usr/lib/cni\"|" \
      -e "s|conf_dir = \"/etc/cni/net.d\"|conf_dir = \"$W/cni\"|" \
      -e "s|stream_server_port = .*|stream_server_port = \"0\"|" \
      -e "s|restrict_oom_score_adj = false|restrict_oom_score_adj = true|" > "$W/config.toml"
cat >> "$W/config.toml" <<CONF

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
            BinaryName = "$BW"
            SystemdCgroup = false
CONF
setsid containerd --config "$W/config.toml" >"$W/containerd.log" 2>&1 </dev/null &
echo $! > "$W/containerd.pid"
for _ in $(seq 100); do ctr -a "$SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr -a "$SOCK" version >/dev/null 2>&1 || { echo "containerd did not start:" >&2; tail -20 "$W/containerd.log" >&2; exit 1; }

build_image
C images import "$W/img/busybox-oci.tar" >/dev/null
IMG=localhost/busybox:latest
CT=(ctr -a "$SOCK" -n "$NS")
RUN=(run --fifo-dir "$FIFO" --runc-binary "$BW")

t "run --rm: output"            0 "=hello" "${CT[@]}" "${RUN[@]}" --rm "$IMG" r1 echo hello
t "run --rm: exit code 7"       7 ""       "${CT[@]}" "${RUN[@]}" --rm "$IMG" r2 sh -c 'exit 7'
t "run --rm: cgroup /<ns>/<id>" 0 "~memory:/$NS/r3" "${CT[@]}" "${RUN[@]}" --rm "$IMG" r3 cat /proc/self/cgroup
t "run -d"                      0 ""       "${CT[@]}" "${RUN[@]}" -d "$IMG" d1 sleep 1000
t "task ls: RUNNING"            0 "~d1 +[0-9]+ +RUNNING" "${CT[@]}" tasks ls
t "task exec: output"           0 "=in d1" "${CT[@]}" tasks exec --fifo-dir "$FIFO" --exec-id e1 d1 sh -c 'echo in d1'
t "task exec: exit code 5"      5 ""       "${CT[@]}" tasks exec --fifo-dir "$FIFO" --exec-id e2 d1 sh -c 'exit 5'
t "task ps (runtime ps)"        0 "~^[0-9]+ "  "${CT[@]}" tasks ps d1
t "task pause"                  0 ""       "${CT[@]}" tasks pause d1
t "task ls: PAUSED"             0 "~d1 +[0-9]+ +PAUSED" "${CT[@]}" tasks ls
t "task resume"                 0 ""       "${CT[@]}" tasks resume d1
t "task kill SIGTERM (pid 1 ignores)" 0 "" "${CT[@]}" tasks kill d1
t "task kill -a SIGKILL"        0 ""       "${CT[@]}" tasks kill -a -s SIGKILL d1
t "task ls: STOPPED"            0 "~d1 +[0-9]+ +STOPPED" sh -c "for i in \$(seq 50); do $(printf '%q ' "${CT[@]}") tasks ls | grep -q 'd1.*STOPPED' && break; sleep 0.1; done; $(printf '%q ' "${CT[@]}") tasks ls"
t "task delete: exit 137"       0 "~137"   "${CT[@]}" tasks delete d1
t "container delete"            0 ""       "${CT[@]}" containers delete d1
t "run -d (2)"                  0 ""       "${CT[@]}" "${RUN[@]}" -d "$IMG" d2 sleep 1000
t "task delete -f (running)"    0 ""       "${CT[@]}" tasks delete -f d2
t "container delete (2)"        0 ""       "${CT[@]}" containers delete d2
ttyrun "run -t: a tty"  '/dev/pts/[0-9]+' "${CT[@]}" "${RUN[@]}" --rm -t "$IMG" r4 tty
# ctr's default spec mounts no cgroupfs: read the limit from the host side.
t "run -d --memory-limit 64m"   0 ""       "${CT[@]}" "${RUN[@]}" -d --memory-limit 67108864 "$IMG" m1 sleep 1000
t "memory.limit_in_bytes"       0 "=67108864" cat "/sys/fs/cgroup/memory/$NS/m1/memory.limit_in_bytes"
t "task delete -f (m1)"         0 ""       "${CT[@]}" tasks delete -f m1
t "container delete (m1)"       0 ""       "${CT[@]}" containers delete m1
t "no task left"                0 "="      "${CT[@]}" tasks ls -q
t "no berth state left"         0 "="      sh -c "ls /run/containerd/runc/$NS 2>/dev/null"

if [ "$ROUNDS" -gt 0 ]; then
  CQ=$(printf '%q ' "${CT[@]}")
  bench "$ROUNDS" \
    berth "$CQ run --rm --fifo-dir $FIFO --runc-binary $BERTH $IMG b1 true" \
    runc  "$CQ run --rm --fifo-dir $FIFO --runc-binary $RUNC $IMG b2 true"
fi
summary
