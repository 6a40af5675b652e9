# Sourced by guest-test.sh (uses its res/check/prop/gone and $ROOTFS, $T):
# docker with native.cgroupdriver=systemd and containerd with SystemdCgroup,
# each with berth, runc and crun; then containerd through berth's own shim
# (guest-shim.sh).
# Each container: the unit holds the memory limit, the container sees it,
# and removing the container removes the unit.

engine_checks() { # engine_checks ENGINE RT PID UNIT EXEC... (EXEC runs a command in the container)
	local eng=$1 rt=$2 pid=$3 unit=$4 cg
	shift 4
	check "$eng-unit-MemoryMax" "$rt" 67108864 "$(prop "$unit" MemoryMax)"
	# the init's own cgroup (crun uses one below the unit's)
	cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
	check "$eng-file-memory.max" "$rt" 67108864 "$(cat "/sys/fs/cgroup$cg/memory.max" 2>&1)"
	# an exec joins the init's cgroup: both seen from inside the container
	check "$eng-exec-in-cgroup" "$rt" yes \
		"$(timeout 120 "$@" /bin/sh -c '[ "$(cat /proc/self/cgroup)" = "$(cat /proc/1/cgroup)" ] && echo yes || cat /proc/self/cgroup /proc/1/cgroup' 2>&1 | tr '\n' ' ' | sed 's/ $//')"
}


if [ "$PARTS" != shim ]; then
# --- docker (its own config: systemd cgroup driver, no network setup) ---
mkdir -p /etc/docker
cat >/etc/docker/daemon.json <<JSON
{"exec-opts":["native.cgroupdriver=systemd"],"iptables":false,"ip-masq":false,"bridge":"none",
 "runtimes":{"berth":{"path":"/share/berth"},"crun":{"path":"/usr/bin/crun"}}}
JSON
t0=$(ts)
timeout 180 systemctl start containerd.service docker.service
echo "TIME docker+containerd start $(ms "$t0")ms" >>"$OUT"
tar -C "$ROOTFS" -cf /tmp/rootfs.tar .
timeout 120 docker import /tmp/rootfs.tar bb:local >/dev/null 2>&1
echo "INFO docker $(docker info --format '{{.CgroupDriver}} cgroup{{.CgroupVersion}}' 2>&1)" >>"$OUT"
for rt in berth runc crun; do
	t0=$(ts)
	# The guest kernel has AppArmor but no apparmor_parser: unconfined.
	cid=$(timeout 180 docker run -d --runtime "$rt" --network none --security-opt apparmor=unconfined \
		--memory 64m bb:local /bin/sleep 600 2>/tmp/err)
	if [ -z "$cid" ]; then
		res docker-run "$rt" FAIL "$(tail -1 /tmp/err)"
		continue
	fi
	sleep 1
	st=$(docker inspect -f '{{.State.Status}} exit={{.State.ExitCode}} {{.State.Error}}' "$cid" 2>&1)
	case "$st" in
	running*) res docker-run "$rt" PASS ;;
	*) res docker-run "$rt" FAIL "$st; logs: $(docker logs "$cid" 2>&1 | tail -2 | tr '\n' ' ')" ;;
	esac
	engine_checks docker "$rt" "$(docker inspect -f '{{.State.Pid}}' "$cid")" "docker-$cid.scope" docker exec "$cid"
	timeout 120 docker rm -f "$cid" >/dev/null 2>&1
	if gone "docker-$cid.scope"; then res docker-rm-removes-unit "$rt" PASS; else
		res docker-rm-removes-unit "$rt" FAIL "$(prop "docker-$cid.scope" ActiveState)"
	fi
	echo "TIME $rt docker(run-d+exec+rm) $(ms "$t0")ms" >>"$OUT"
done
timeout 60 systemctl stop docker.service docker.socket >/dev/null 2>&1
else
	timeout 180 systemctl start containerd.service
fi

# --- containerd: runc-v2 shim with SystemdCgroup (ctr --runc-systemd-cgroup) ---
C=(timeout "${CTR_TIMEOUT:-120}" ctr -n berth-sd)
ctr_run() { # ctr_run NAME ID RUNTIME-ARGS...
	local name=$1 id=$2
	shift 2
	t0=$(ts)
	local C=(timeout "${CTR_TIMEOUT:-120}" ctr -n berth-sd)
	if ! "${C[@]}" run -d --rootfs --memory-limit 67108864 --cgroup "system.slice:ctr:$id" "$@" \
		"$ROOTFS" "$id" /bin/sleep 600 >/tmp/err 2>&1; then
		res "$name-run" "$rt" FAIL "$(tail -1 /tmp/err)"
		[ -n "${CTR_DIAG:-}" ] && "$CTR_DIAG" "$id"
		journalctl -u containerd --no-pager -o cat 2>&1 | grep -a -i "$id\|berth" | tail -6 | sed 's/^/INFO containerd: /' >>"$OUT"
		ps -eo pid,ppid,stat,wchan:24,args | grep -a -i -e shim -e berth -e "$id" | grep -v grep |
			sed 's/^/INFO ps: /' >>"$OUT"
		"${C[@]}" task rm -f "$id" >/dev/null 2>&1
		"${C[@]}" container rm "$id" >/dev/null 2>&1
		return
	fi
	res "$name-run" "$rt" PASS
	engine_checks "$name" "$rt" "$("${C[@]}" task ls 2>/dev/null | awk -v i="$id" '$1==i{print $2}')" \
		"ctr-$id.scope" "${C[@]}" task exec --exec-id e1 "$id"
	"${C[@]}" task kill -s KILL "$id" >/dev/null 2>&1
	for _ in $(seq 50); do
		case "$("${C[@]}" task ls 2>/dev/null | awk -v i="$id" '$1==i{print $3}')" in STOPPED | "") break ;; esac
		sleep 0.2
	done
	"${C[@]}" task rm "$id" >/dev/null 2>&1
	"${C[@]}" container rm "$id" >/dev/null 2>&1
	if gone "ctr-$id.scope"; then res "$name-rm-removes-unit" "$rt" PASS; else
		res "$name-rm-removes-unit" "$rt" FAIL "$(prop "ctr-$id.scope" ActiveState)"
	fi
	echo "TIME $rt $name(run-d+exec+rm) $(ms "$t0")ms" >>"$OUT"
}
RUNC_V2="berth:/share/berth runc:/usr/sbin/runc crun:/usr/bin/crun"
[ "$PARTS" = shim ] && RUNC_V2=
for entry in $RUNC_V2; do
	rt=${entry%%:*}
	ctr_run containerd-runc-v2 "cr-$rt" --runtime io.containerd.runc.v2 --runc-binary "${entry#*:}" --runc-systemd-cgroup
done
. /share/guest-shim.sh
