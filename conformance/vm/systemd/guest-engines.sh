# Sourced by guest-test.sh (uses its res/check/prop/gone and $ROOTFS, $T):
# docker with native.cgroupdriver=systemd and containerd with SystemdCgroup,
# each with berth, runc and crun; plus containerd through berth's own shim.
# Each container: the unit holds the memory limit, the container sees it,
# and removing the container removes the unit.

engine_checks() { # engine_checks ENGINE RT CID UNIT EXEC... (EXEC runs a command in the container)
	local eng=$1 rt=$2 cid=$3 unit=$4
	shift 4
	check "$eng-unit-MemoryMax" "$rt" 67108864 "$(prop "$unit" MemoryMax)"
	check "$eng-exec-memory.max" "$rt" 67108864 "$(timeout 120 "$@" cat /sys/fs/cgroup/memory.max 2>&1)"
}

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
	cid=$(timeout 180 docker run -d --runtime "$rt" --network none --memory 64m bb:local /bin/sleep 600 2>/tmp/err)
	if [ -z "$cid" ]; then
		res docker-run "$rt" FAIL "$(tail -1 /tmp/err)"
		continue
	fi
	res docker-run "$rt" PASS
	engine_checks docker "$rt" "$cid" "docker-$cid.scope" docker exec "$cid"
	timeout 120 docker rm -f "$cid" >/dev/null 2>&1
	if gone "docker-$cid.scope"; then res docker-rm-removes-unit "$rt" PASS; else
		res docker-rm-removes-unit "$rt" FAIL "$(prop "docker-$cid.scope" ActiveState)"
	fi
	echo "TIME $rt docker(run-d+exec+rm) $(ms "$t0")ms" >>"$OUT"
done
timeout 60 systemctl stop docker.service docker.socket >/dev/null 2>&1

# --- containerd: runc-v2 shim with SystemdCgroup (ctr --runc-systemd-cgroup) ---
C=(timeout 120 ctr -n berth-sd)
ctr_run() { # ctr_run NAME ID RUNTIME-ARGS...
	local name=$1 id=$2
	shift 2
	t0=$(ts)
	if ! "${C[@]}" run -d --rootfs --memory-limit 67108864 --cgroup "system.slice:ctr:$id" "$@" \
		"$ROOTFS" "$id" /bin/sleep 600 >/tmp/err 2>&1; then
		res "$name-run" "$rt" FAIL "$(tail -1 /tmp/err)"
		"${C[@]}" container rm "$id" >/dev/null 2>&1
		return
	fi
	res "$name-run" "$rt" PASS
	engine_checks "$name" "$rt" "$id" "ctr-$id.scope" "${C[@]}" task exec --exec-id e1 "$id"
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
for entry in berth:/share/berth runc:/usr/sbin/runc crun:/usr/bin/crun; do
	rt=${entry%%:*}
	ctr_run containerd-runc-v2 "cr-$rt" --runtime io.containerd.runc.v2 --runc-binary "${entry#*:}" --runc-systemd-cgroup
done
if [ -x /share/containerd-shim-berth-v2 ]; then
	ln -sf /share/containerd-shim-berth-v2 /usr/local/bin/containerd-shim-berth-v2
	rt=berth
	ctr_run containerd-berth-shim cb-berth --runtime io.containerd.berth.v2 --runc-systemd-cgroup
fi
