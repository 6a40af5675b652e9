# Sourced by guest-test.sh (uses its res/check/prop/gone, bundle, $T, $OUT):
# checkpoint and restore with --systemd-cgroup, for berth, runc and crun.
# A checkpointed container's unit goes; the restored one gets its unit back
# (the scope holds the restored init, with the config's limits), and delete
# removes it again.
# The container's stdio are pipes, as an engine gives them (CRIU cannot dump
# an fd on a file of a mount the container does not see, such as the
# host's /dev/null); they are kept open by a sleep and a cat.

rt_bg() { # rt_bg ID RUNTIME-ARGS... : run the runtime with pipe stdio, wait for "running"
	local id=$1 i
	shift
	sleep 10000 | "$@" 2>&1 | tee /tmp/err >/dev/null &
	for i in $(seq 100); do
		[ "$("${R[@]}" state "$id" 2>/dev/null | sed -n 's/^ *"status": *"\([a-z]*\)".*/\1/p')" = running ] && return 0
		sleep 0.3
	done
	return 1
}

restore_test() {
	local rt bin id unit B img pid cg st
	command -v criu >/dev/null || {
		echo "INFO restore: no criu in the guest" >>"$OUT"
		return
	}
	echo "INFO restore: $(criu --version 2>&1 | head -1), kernel $(uname -r)" >>"$OUT"
	for entry in berth:/share/berth runc:/usr/sbin/runc crun:/usr/bin/crun; do
		rt=${entry%%:*}
		bin=${entry#*:}
		local R=(timeout "$T" "$bin" --systemd-cgroup)
		id=cr-$rt
		unit=t-$rt-$id.scope
		B=/tmp/rb-$rt
		img=/tmp/ck-$rt
		rm -rf "$img"
		bundle "$B" "system.slice:t-$rt:$id" '["/bin/sleep","600"]'
		t0=$(ts)
		if ! "$bin" checkpoint --help >/dev/null 2>&1; then
			res restore-checkpoint "$rt" SKIP "$rt has no checkpoint command (built without CRIU)"
			continue
		fi
		if ! rt_bg "$id" "${R[@]}" run -d --bundle "$B" "$id"; then
			res restore-run "$rt" FAIL "$(tail -1 /tmp/err)"
			continue
		fi
		if "${R[@]}" checkpoint --image-path "$img" "$id" >/tmp/err 2>&1; then
			res restore-checkpoint "$rt" PASS
		else
			res restore-checkpoint "$rt" FAIL "$(tail -1 /tmp/err)"
			"${R[@]}" delete -f "$id" >/dev/null 2>&1
			continue
		fi
		if gone "$unit"; then res restore-checkpoint-removes-unit "$rt" PASS; else
			res restore-checkpoint-removes-unit "$rt" FAIL "$(prop "$unit" ActiveState)"
		fi
		# checkpoint leaves a stopped container behind with runc; restore wants the id free
		"${R[@]}" delete "$id" >/dev/null 2>&1
		if rt_bg "$id" "${R[@]}" restore -d --image-path "$img" --bundle "$B" "$id"; then
			res restore "$rt" PASS
		else
			res restore "$rt" FAIL "$(tail -1 /tmp/err)"
			"${R[@]}" delete -f "$id" >/dev/null 2>&1
			continue
		fi
		st=$("${R[@]}" state "$id" 2>/dev/null)
		pid=$(echo "$st" | sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p')
		check restore-status "$rt" running "$(echo "$st" | sed -n 's/^ *"status": *"\([a-z]*\)".*/\1/p')"
		check restore-scope-active "$rt" active "$(systemctl is-active "$unit" 2>&1)"
		cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
		case "$cg" in
		"/system.slice/$unit" | "/system.slice/$unit"/*) res restore-init-in-scope "$rt" PASS ;;
		*) res restore-init-in-scope "$rt" FAIL "init '$pid' in '$cg'" ;;
		esac
		check restore-unit-MemoryMax "$rt" 67108864 "$(prop "$unit" MemoryMax)"
		check restore-file-memory.max "$rt" 67108864 "$(cat "/sys/fs/cgroup$cg/memory.max" 2>&1)"
		"${R[@]}" delete -f "$id" >/tmp/err 2>&1 || echo "FAIL $rt restore delete: $(tail -1 /tmp/err)" >>"$OUT"
		if gone "$unit"; then res restore-delete-removes-unit "$rt" PASS; else
			res restore-delete-removes-unit "$rt" FAIL "$(prop "$unit" ActiveState)"
			systemctl stop "$unit" >/dev/null 2>&1
		fi
		echo "TIME $rt run+checkpoint+restore+delete(systemd) $(ms "$t0")ms" >>"$OUT"
		rm -rf "$img"
	done
}

restore_test
