#!/bin/bash
# Runs in the systemd guest (see run.sh) as a service once boot is done:
# berth, runc and crun with --systemd-cgroup on the same bundle, each check
# written to /share/results as "RESULT <check> <runtime> PASS|FAIL|SKIP",
# with "FAIL <runtime> <check>: <why>" lines and "TIME" figures.
# Every runtime call has a timeout: the guest is emulated.
exec >/dev/ttyS0 2>&1
OUT=/share/results
: >"$OUT"
T=$(cat /share/rt-timeout 2>/dev/null || echo 60)
ts() { date +%s%N; }
ms() { echo $((($(ts) - $1) / 1000000)); }
res() { echo "RESULT $1 $2 $3" >>"$OUT"; [ "$3" = FAIL ] && echo "FAIL $2 $1: $4" >>"$OUT"; echo "$2 $1 $3 $4"; }
check() { # check NAME RT EXPECTED ACTUAL
	if [ "$3" = "$4" ]; then res "$1" "$2" PASS; else res "$1" "$2" FAIL "want '$3', got '$4'"; fi
}
prop() { systemctl show -p "$2" --value "$1" 2>/dev/null; }
gone() { # the unit is not loaded (or inactive) and its cgroup directory is gone
	local u=$1 load active
	load=$(prop "$u" LoadState)
	active=$(prop "$u" ActiveState)
	[ "$load" = not-found ] || [ "$active" = inactive ] || return 1
	[ ! -e "/sys/fs/cgroup/system.slice/$u" ]
}

systemctl is-system-running --wait >/dev/null 2>&1
echo "TIME boot-to-test $(awk '{printf "%d", $1}' /proc/uptime)s" >>"$OUT"
echo "INFO systemd $(systemctl --version | head -1) controllers: $(cat /sys/fs/cgroup/cgroup.controllers)" >>"$OUT"

ROOTFS=/tmp/rootfs
mkdir -p $ROOTFS/bin $ROOTFS/proc $ROOTFS/dev $ROOTFS/sys $ROOTFS/etc
cp /bin/busybox $ROOTFS/bin/
for a in sh sleep cat true; do ln -sf busybox $ROOTFS/bin/$a; done

bundle() { # bundle DIR CGROUPSPATH ARGS-JSON
	mkdir -p "$1"
	cat >"$1/config.json" <<JSON
{"ociVersion":"1.0.2",
 "process":{"terminal":false,"user":{"uid":0,"gid":0},"args":$3,"env":["PATH=/bin"],"cwd":"/"},
 "root":{"path":"$ROOTFS","readonly":true},
 "hostname":"c",
 "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
   {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755","size=65536k"]},
   {"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]}],
 "linux":{"cgroupsPath":"$2",
   "resources":{"memory":{"limit":67108864},"cpu":{"shares":1024,"quota":50000,"period":100000},
     "pids":{"limit":100},"devices":[{"allow":false,"access":"rwm"}]},
   "namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}]}}
JSON
}

RUNTIMES="berth:/share/berth runc:/usr/sbin/runc crun:/usr/bin/crun"
# GUEST_PARTS (run.sh): core = the runtime and podman checks, restore and
# the conformance scenarios; engines = docker, containerd (both shims) and
# the CRI pod test; rootless = the checks as an ordinary user through its
# own systemd instance; shim, cri, conf, restore = that part alone; v1 = the
# hybrid-layout checks; all = core, engines and rootless.
PARTS=$(cat /share/parts 2>/dev/null)
case "$PARTS" in all | core) ;; *) RUNTIMES= ;; esac
for entry in $RUNTIMES; do
	rt=${entry%%:*}
	bin=${entry#*:}
	R=(timeout "$T" "$bin" --systemd-cgroup)
	id=c-$rt
	unit=t-$rt-$id.scope
	dir=/sys/fs/cgroup/system.slice/$unit
	B=/tmp/b-$rt
	bundle "$B" "system.slice:t-$rt:$id" '["/bin/sleep","600"]'

	t0=$(ts)
	if "${R[@]}" create --bundle "$B" "$id" >/tmp/err 2>&1; then
		res create "$rt" PASS
	else
		res create "$rt" FAIL "$(tail -1 /tmp/err)"
	fi
	echo "TIME $rt create(systemd) $(ms "$t0")ms" >>"$OUT"
	check scope-active "$rt" active "$(systemctl is-active "$unit" 2>&1)"
	check unit-slice "$rt" system.slice "$(prop "$unit" Slice)"
	check unit-delegate "$rt" yes "$(prop "$unit" Delegate)"
	check show-MemoryMax "$rt" 67108864 "$(prop "$unit" MemoryMax)"
	check show-CPUWeight "$rt" 39 "$(prop "$unit" CPUWeight)"
	check show-TasksMax "$rt" 100 "$(prop "$unit" TasksMax)"
	check show-CPUQuotaPerSecUSec "$rt" 500ms "$(prop "$unit" CPUQuotaPerSecUSec)"
	check show-DevicePolicy "$rt" strict "$(prop "$unit" DevicePolicy)"
	pid=$("${R[@]}" state "$id" 2>/dev/null | sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p')
	# The init's own cgroup: the scope (berth, runc) or one below it (crun
	# puts the container in <scope>/container and limits that).
	cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
	case "$cg" in
	"/system.slice/$unit" | "/system.slice/$unit"/*) res init-in-scope "$rt" PASS ;;
	*) res init-in-scope "$rt" FAIL "init $pid in '$cg'" ;;
	esac
	dir=/sys/fs/cgroup$cg
	check file-memory.max "$rt" 67108864 "$(cat "$dir/memory.max" 2>&1)"
	check file-cpu.max "$rt" "50000 100000" "$(cat "$dir/cpu.max" 2>&1)"
	check file-pids.max "$rt" 100 "$(cat "$dir/pids.max" 2>&1)"

	"${R[@]}" start "$id" >/tmp/err 2>&1 && res start "$rt" PASS || res start "$rt" FAIL "$(tail -1 /tmp/err)"
	"${R[@]}" exec "$id" sh -c 'echo x >/dev/null' >/tmp/err 2>&1 &&
		res exec-dev-null "$rt" PASS || res exec-dev-null "$rt" FAIL "$(tail -1 /tmp/err)"
	ps_out=$("${R[@]}" ps "$id" 2>&1)
	case "$ps_out" in *"$pid"*) res ps "$rt" PASS ;; *) res ps "$rt" FAIL "no pid $pid in: $(echo "$ps_out" | tail -1)" ;; esac
	"${R[@]}" pause "$id" >/tmp/err 2>&1
	check pause "$rt" 1 "$(cat "$dir/cgroup.freeze" 2>&1)"
	"${R[@]}" resume "$id" >/tmp/err 2>&1
	check resume "$rt" 0 "$(cat "$dir/cgroup.freeze" 2>&1)"

	"${R[@]}" update --memory 134217728 --pids-limit 50 --cpu-share 2048 "$id" >/tmp/err 2>&1 ||
		echo "FAIL $rt update: $(tail -1 /tmp/err)" >>"$OUT"
	check update-MemoryMax "$rt" 134217728 "$(prop "$unit" MemoryMax)"
	check update-TasksMax "$rt" 50 "$(prop "$unit" TasksMax)"
	check update-CPUWeight "$rt" 79 "$(prop "$unit" CPUWeight)"
	check update-file-memory.max "$rt" 134217728 "$(cat "$dir/memory.max" 2>&1)"

	"${R[@]}" kill "$id" KILL >/dev/null 2>&1
	t0=$(ts)
	"${R[@]}" delete -f "$id" >/tmp/err 2>&1 || echo "FAIL $rt delete: $(tail -1 /tmp/err)" >>"$OUT"
	echo "TIME $rt delete(systemd) $(ms "$t0")ms" >>"$OUT"
	if gone "$unit"; then res delete-removes-unit "$rt" PASS; else
		res delete-removes-unit "$rt" FAIL "LoadState=$(prop "$unit" LoadState) ActiveState=$(prop "$unit" ActiveState) dir=$(ls -d "$dir" 2>&1)"
	fi

	# SIGKILL to the runtime while it creates, once the unit exists: what is
	# left must go with delete -f.
	id2=k-$rt
	unit2=t-$rt-$id2.scope
	bundle "$B" "system.slice:t-$rt:$id2" '["/bin/sleep","600"]'
	"${R[@]}" create --bundle "$B" "$id2" >/dev/null 2>&1 &
	cpid=$!
	for _ in $(seq 200); do
		[ "$(systemctl is-active "$unit2" 2>/dev/null)" = active ] && break
		kill -0 $cpid 2>/dev/null || break
		sleep 0.02
	done
	kill -9 $cpid 2>/dev/null
	# kill the timeout wrapper's child, the runtime itself
	pkill -9 -P $cpid 2>/dev/null
	wait $cpid 2>/dev/null
	"${R[@]}" delete -f "$id2" >/dev/null 2>&1
	sleep 1
	if gone "$unit2"; then res sigkill-create-then-delete "$rt" PASS; else
		res sigkill-create-then-delete "$rt" FAIL "LoadState=$(prop "$unit2" LoadState) ActiveState=$(prop "$unit2" ActiveState) procs=$(cat /sys/fs/cgroup/system.slice/$unit2/cgroup.procs 2>/dev/null | tr '\n' ' ')"
		systemctl stop "$unit2" >/dev/null 2>&1
		systemctl reset-failed "$unit2" >/dev/null 2>&1
	fi
	if [ "$rt" = berth ]; then
		# nor its D-Bus helper, which dies with the berth that started it
		check sigkill-no-helper-left "$rt" "" "$(pgrep -a -x berth-systemd | tr '\n' ' ')"
	fi

	# run latency with the systemd driver, 5 runs, median
	bundle "$B" "system.slice:t-$rt:r" '["/bin/true"]'
	times=()
	for i in 1 2 3 4 5; do
		t0=$(ts)
		"${R[@]}" run --bundle "$B" "r$i-$rt" >/dev/null 2>&1 </dev/null
		times+=("$(ms "$t0")")
		timeout "$T" "$bin" delete -f "r$i-$rt" >/dev/null 2>&1
	done
	if [ "$rt" = berth ]; then
		# one more, with berth's own timings of its systemd calls
		"${R[@]}" --debug --log /tmp/berth-debug.log run --bundle "$B" "r6-$rt" >/dev/null 2>&1 </dev/null
		grep -o 'systemd: [^"]*' /tmp/berth-debug.log | sed 's/^/INFO /' >>"$OUT"
	fi
	echo "TIME $rt run(systemd) median $(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)ms of ${times[*]}" >>"$OUT"

	# podman with its default systemd cgroup manager and this runtime
	t0=$(ts)
	cid=$(timeout 180 podman --runtime "$bin" run -d --network none --memory 64m --rootfs $ROOTFS /bin/sleep 600 2>/tmp/err)
	if [ -n "$cid" ]; then
		check podman-unit-MemoryMax "$rt" 67108864 "$(prop "libpod-$cid.scope" MemoryMax)"
		check podman-exec-memory.max "$rt" 67108864 "$(timeout 120 podman exec "$cid" cat /sys/fs/cgroup/memory.max 2>&1)"
		timeout 120 podman rm -f -t 0 "$cid" >/dev/null 2>&1
		if gone "libpod-$cid.scope"; then res podman-rm-removes-unit "$rt" PASS; else res podman-rm-removes-unit "$rt" FAIL "unit left"; fi
	else
		res podman-run "$rt" FAIL "$(tail -1 /tmp/err)"
	fi
	echo "TIME $rt podman(run-d+exec+rm) $(ms "$t0")ms" >>"$OUT"
done
echo "INFO podman $(podman info --format '{{.Host.CgroupManager}} cgroup{{.Host.CgroupsVersion}}' 2>&1)" >>"$OUT"
case "$PARTS" in v1) . /share/guest-v1.sh ;; esac
case "$PARTS" in all | core | restore) . /share/guest-restore.sh ;; esac
case "$PARTS" in all | core | conf) . /share/guest-conformance.sh ;; esac
case "$PARTS" in all | rootless) . /share/rootless-guest.sh ;; esac
case "$PARTS" in all | engines | shim) . /share/guest-engines.sh ;; esac
case "$PARTS" in all | engines | cri) . /share/guest-cri.sh ;; esac
# berth's D-Bus helper lives only as long as one command or shim operation.
check no-helper-left-at-end berth "" "$(pgrep -a -x berth-systemd | tr '\n' ' ')"
echo DONE >>"$OUT"
sync
