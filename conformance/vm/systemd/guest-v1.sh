# Sourced by guest-test.sh (uses its res/check/prop/gone, bundle, $T, $OUT)
# when the guest booted with systemd's hybrid or pure v1 (legacy) layout
# (systemd.unified_cgroup_hierarchy=0: v1 controllers, name=systemd, and
# in hybrid only, cgroup2 at /sys/fs/cgroup/unified): --systemd-cgroup for berth, runc and
# crun. systemd puts a scope at the same path in every hierarchy; the v1
# limits are unit properties (MemoryLimit, CPUShares, TasksMax) and files.

v1_test() {
	local rt bin id unit B pid cg st m
	echo "INFO v1: layout $(stat -f -c %T /sys/fs/cgroup) + unified $(stat -f -c %T /sys/fs/cgroup/unified 2>&1)" >>"$OUT"
	# The layout asked for on the kernel command line is the one booted:
	# legacy has no cgroup2 mount anywhere, hybrid has one at unified.
	local want=hybrid got=legacy
	grep -q 'systemd.legacy_systemd_cgroup_controller=1' /proc/cmdline && want=legacy
	grep -q ' cgroup2 ' /proc/self/mounts && got=hybrid
	check v1-layout berth "$want" "$got"
	for entry in berth:/share/berth runc:/usr/sbin/runc crun:/usr/bin/crun; do
		rt=${entry%%:*}
		bin=${entry#*:}
		local R=(timeout "$T" "$bin" --systemd-cgroup)
		id=v1-$rt
		unit=t-$rt-$id.scope
		B=/tmp/v1b-$rt
		bundle "$B" "system.slice:t-$rt:$id" '["/bin/sleep","600"]'
		if "${R[@]}" create --bundle "$B" "$id" >/tmp/err 2>&1; then res v1-create "$rt" PASS; else
			res v1-create "$rt" FAIL "$(tail -1 /tmp/err)"
			"${R[@]}" delete -f "$id" >/dev/null 2>&1
			continue
		fi
		check v1-scope-active "$rt" active "$(systemctl is-active "$unit" 2>&1)"
		check v1-unit-delegate "$rt" yes "$(prop "$unit" Delegate)"
		check v1-show-MemoryLimit "$rt" 67108864 "$(prop "$unit" MemoryLimit)"
		check v1-show-CPUShares "$rt" 1024 "$(prop "$unit" CPUShares)"
		check v1-show-TasksMax "$rt" 100 "$(prop "$unit" TasksMax)"
		pid=$("${R[@]}" state "$id" 2>/dev/null | sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p')
		# the init is in the scope in every v1 hierarchy it has a line for
		for m in memory pids cpu,cpuacct name=systemd; do
			cg=$(awk -F: -v c="$m" '$2==c{print $3}' "/proc/$pid/cgroup" 2>/dev/null)
			case "$cg" in
			"/system.slice/$unit" | "/system.slice/$unit"/*) res "v1-init-in-scope-$m" "$rt" PASS ;;
			*) res "v1-init-in-scope-$m" "$rt" FAIL "init '$pid' in '$cg'" ;;
			esac
		done
		cg=$(awk -F: '$2=="memory"{print $3}' "/proc/$pid/cgroup" 2>/dev/null)
		check v1-file-memory.limit_in_bytes "$rt" 67108864 "$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes" 2>&1)"
		cg=$(awk -F: '$2=="cpu,cpuacct"{print $3}' "/proc/$pid/cgroup" 2>/dev/null)
		check v1-file-cpu.cfs_quota_us "$rt" 50000 "$(cat "/sys/fs/cgroup/cpu,cpuacct$cg/cpu.cfs_quota_us" 2>&1)"
		cg=$(awk -F: '$2=="pids"{print $3}' "/proc/$pid/cgroup" 2>/dev/null)
		check v1-file-pids.max "$rt" 100 "$(cat "/sys/fs/cgroup/pids$cg/pids.max" 2>&1)"
		"${R[@]}" start "$id" >/tmp/err 2>&1 && res v1-start "$rt" PASS || res v1-start "$rt" FAIL "$(tail -1 /tmp/err)"
		"${R[@]}" pause "$id" >/tmp/err 2>&1
		check v1-pause "$rt" paused "$("${R[@]}" state "$id" 2>/dev/null | sed -n 's/^ *"status": *"\([a-z]*\)".*/\1/p')"
		"${R[@]}" resume "$id" >/tmp/err 2>&1
		check v1-resume "$rt" running "$("${R[@]}" state "$id" 2>/dev/null | sed -n 's/^ *"status": *"\([a-z]*\)".*/\1/p')"
		"${R[@]}" update --memory 134217728 --pids-limit 50 "$id" >/tmp/err 2>&1 ||
			echo "FAIL $rt v1 update: $(tail -1 /tmp/err)" >>"$OUT"
		check v1-update-MemoryLimit "$rt" 134217728 "$(prop "$unit" MemoryLimit)"
		check v1-update-TasksMax "$rt" 50 "$(prop "$unit" TasksMax)"
		"${R[@]}" kill "$id" KILL >/dev/null 2>&1
		"${R[@]}" delete -f "$id" >/tmp/err 2>&1 || echo "FAIL $rt v1 delete: $(tail -1 /tmp/err)" >>"$OUT"
		sleep 0.5
		st=$(prop "$unit" LoadState)/$(prop "$unit" ActiveState)
		case "$st" in
		not-found/* | */inactive)
			if [ -e "/sys/fs/cgroup/memory/system.slice/$unit" ] || [ -e "/sys/fs/cgroup/pids/system.slice/$unit" ]; then
				res v1-delete-removes-unit "$rt" FAIL "unit $st, cgroup directories left"
			else res v1-delete-removes-unit "$rt" PASS; fi ;;
		*) res v1-delete-removes-unit "$rt" FAIL "unit $st" ;;
		esac
	done
}

v1_test
