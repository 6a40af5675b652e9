# shellcheck shell=bash
# Sourced by guest-test.sh (as root, in the systemd guest): rootless checks through
# a user's own systemd instance. An ordinary user with /etc/subuid and /etc/subgid
# ranges gets a lingering session (loginctl enable-linger: user@UID.service and its
# user bus); then berth, runc and crun run as that user with --systemd-cgroup, and
# rootless podman runs each of them (its default systemd cgroup manager on cgroup
# v2). Each check is written as "RESULT rl-<check> <runtime> PASS|FAIL|SKIP".
# Uses res/check/ts/ms/T from guest-test.sh. Every call has a timeout.

RL=rl
RL_T=${T:-60}
rl_setup() {
	id $RL >/dev/null 2>&1 || useradd -m -s /bin/sh $RL || return 1
	RL_UID=$(id -u $RL)
	RL_HOME=$(getent passwd $RL | cut -d: -f6)
	grep -q "^$RL:" /etc/subuid || echo "$RL:100000:65536" >>/etc/subuid
	grep -q "^$RL:" /etc/subgid || echo "$RL:100000:65536" >>/etc/subgid
	RL_XDG=/run/user/$RL_UID
	RL_MGR=/sys/fs/cgroup/user.slice/user-$RL_UID.slice/user@$RL_UID.service
	timeout 30 loginctl enable-linger $RL || return 1
	for _ in $(seq 300); do
		[ -S "$RL_XDG/bus" ] && [ "$(systemctl is-active "user@$RL_UID.service")" = active ] && break
		sleep 0.2
	done
	[ -S "$RL_XDG/bus" ] || { echo "no user bus at $RL_XDG/bus"; return 1; }
	# The user's rootfs, and the runtimes where the user can run them.
	RL_ROOTFS=$RL_HOME/rootfs
	mkdir -p "$RL_ROOTFS"/{bin,proc,dev,sys,etc,t,tmp} "$RL_HOME/bin"
	cp /bin/busybox "$RL_ROOTFS/bin/"
	for a in sh sleep cat echo true dd head id; do ln -sf busybox "$RL_ROOTFS/bin/$a"; done
	cp /share/berth /share/berth-systemd "$RL_HOME/bin/"
	chown -R $RL: "$RL_HOME"
	chmod 0755 "$RL_HOME"
}

# As the user, in a clean environment with its session's variables.
rl_env() {
	echo env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$RL_HOME" USER=$RL \
		XDG_RUNTIME_DIR="$RL_XDG" DBUS_SESSION_BUS_ADDRESS="unix:path=$RL_XDG/bus"
}
as_rl() { # CMD... (in $RL_HOME)
	# shellcheck disable=SC2046
	(cd "$RL_HOME" && timeout "$RL_T" runuser -u $RL -- $(rl_env) "$@")
}
rl_bin() { case $1 in berth) echo "$RL_HOME/bin/berth" ;; runc) echo /usr/sbin/runc ;; crun) echo /usr/bin/crun ;; esac; }
rl_show() { as_rl systemctl --user show -p "$2" --value "$1" 2>/dev/null; }

# rl_bundle RT NAME SCRIPT CGPATH RESOURCES: `RT spec --rootless`, then only what the
# check needs is edited in (no jq here): the rootfs, args running /t/NAME.sh, no
# terminal, and linux.cgroupsPath / linux.resources when given.
rl_bundle() {
	local rt=$1 name=$2 script=$3 cgpath=$4 res=$5 b=$RL_HOME/b-$1-$2 ins=
	rm -rf "$b"
	mkdir -p "$b"
	printf '%s\n' "$script" >"$RL_ROOTFS/t/$name.sh"
	chown -R $RL: "$b" "$RL_ROOTFS/t"
	(cd "$b" && timeout "$RL_T" runuser -u $RL -- "$(rl_bin "$rt")" spec --rootless) || return 1
	[ -n "$cgpath" ] && ins="\"cgroupsPath\": \"$cgpath\", "
	sed -i -e "s#\"path\":[[:space:]]*\"rootfs\"#\"path\": \"$RL_ROOTFS\"#" \
		-e 's#"terminal":[[:space:]]*true#"terminal": false#' \
		-e "s#^\\([[:space:]]*\\)\"sh\"[[:space:]]*\$#\\1\"sh\", \"/t/$name.sh\"#" "$b/config.json"
	if [ -n "$res" ] && grep -q '"resources":[[:space:]]*{' "$b/config.json"; then
		sed -i "s#\"resources\":[[:space:]]*{#\"resources\": {$res, #" "$b/config.json"
	elif [ -n "$res" ]; then
		ins="$ins\"resources\": {$res}, "
	fi
	sed -i "0,/\"linux\":[[:space:]]*{/s##\"linux\": {$ins#" "$b/config.json"
	echo "$b"
}

# Nothing of the user's left: no state entry, no container process.
rl_left() { # RT
	local ids procs
	ids=$(as_rl "$(rl_bin "$1")" list -q 2>/dev/null | tr '\n' ' ')
	procs=$(ps -u $RL -o stat=,pid=,args= 2>/dev/null | awk '$1 !~ /^Z/' | grep -E '/t/|sleep 600' | awk '{print $2}' | tr '\n' ' ')
	[ -z "$ids$procs" ] && return 1
	echo "left: ids [$ids] procs [$procs]"
}

# The .scope unit holding a pid (crun puts the init one level below it).
rl_unit_of() { sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null | tr '/' '\n' | grep '\.scope$' | tail -1; }

rl_runtime() { # RT
	local rt=$1 bin b out rc id pid cg unit
	bin=$(rl_bin "$rt")
	local R=(as_rl "$bin" --systemd-cgroup)

	# spec --rootless && run, the default slice; output and exit status kept.
	b=$(rl_bundle "$rt" run 'echo out; exit 3' "" "") || { res rl-spec-run "$rt" FAIL "spec --rootless failed"; return; }
	t0=$(ts)
	out=$(cd "$b" && "${R[@]}" run --bundle "$b" "rl-run-$rt" </dev/null 2>&1)
	rc=$?
	echo "TIME $rt rootless run(systemd user) $(ms "$t0")ms" >>"$OUT"
	if [ "$rc" = 3 ] && [ "$(echo "$out" | tail -1)" = out ]; then res rl-spec-run "$rt" PASS; else
		res rl-spec-run "$rt" FAIL "rc $rc: $(echo "$out" | tail -1)"
	fi

	# run -d with a memory and pids limit: the scope in the user's instance.
	id=rl-d-$rt
	b=$(rl_bundle "$rt" d 'sleep 600' "" '"memory": {"limit": 67108864}, "pids": {"limit": 100}') || return
	# The container keeps the stdio it is given: a file, never a pipe we wait on.
	if "${R[@]}" run -d --bundle "$b" "$id" </dev/null >/tmp/rl-run.out 2>&1; then res rl-run-d-limits "$rt" PASS; else
		res rl-run-d-limits "$rt" FAIL "$(tail -1 /tmp/rl-run.out)"
	fi
	pid=$(as_rl "$bin" state "$id" 2>/dev/null | sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p')
	cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
	unit=$(rl_unit_of "$pid")
	case "$cg" in
	"/user.slice/user-$RL_UID.slice/user@$RL_UID.service/user.slice/"*.scope*) res rl-scope-in-user-slice "$rt" PASS ;;
	*) res rl-scope-in-user-slice "$rt" FAIL "init ${pid:-?} in '$cg'" ;;
	esac
	check rl-scope-active "$rt" active "$(as_rl systemctl --user is-active "$unit" 2>&1)"
	check rl-unit-delegate "$rt" yes "$(rl_show "$unit" Delegate)"
	check rl-unit-MemoryMax "$rt" 67108864 "$(rl_show "$unit" MemoryMax)"
	check rl-file-memory.max "$rt" 67108864 "$(cat "/sys/fs/cgroup$cg/memory.max" 2>&1)"
	check rl-file-pids.max "$rt" 100 "$(cat "/sys/fs/cgroup$cg/pids.max" 2>&1)"
	check rl-exec "$rt" hi "$(as_rl "$bin" exec "$id" echo hi 2>&1 | tail -1)"
	as_rl "$bin" exec "$id" sh -c 'exit 7' >/dev/null 2>&1
	check rl-exec-exit "$rt" 7 "$?"
	# 96 MiB touched under a 64 MiB limit (no swap in the guest): OOM-killed.
	as_rl "$bin" exec "$id" dd if=/dev/zero of=/dev/null bs=96M count=1 >/dev/null 2>&1
	check rl-memory-enforced "$rt" 137 "$?"
	as_rl "$bin" kill "$id" KILL >/dev/null 2>&1
	for _ in $(seq 50); do
		as_rl "$bin" state "$id" 2>/dev/null | grep -q '"status": *"stopped"' && break
		sleep 0.1
	done
	out=$(as_rl "$bin" delete "$id" 2>&1) || echo "FAIL $rt rl delete: $(echo "$out" | tail -1)" >>"$OUT"
	sleep 0.3
	if [ -n "$unit" ] && [ "$(as_rl systemctl --user is-active "$unit" 2>/dev/null)" != active ] &&
		[ ! -e "/sys/fs/cgroup$cg" ] && ! rl_left "$rt" >/dev/null; then
		res rl-kill-delete-clean "$rt" PASS
	else
		res rl-kill-delete-clean "$rt" FAIL "unit ${unit:-?} $(as_rl systemctl --user is-active "$unit" 2>&1), dir $(ls -d "/sys/fs/cgroup$cg" 2>&1 | tail -1), $(rl_left "$rt")"
	fi

	# Errors: one line naming what is missing, nothing left behind.
	rl_error rl-err-no-user-bus "$rt" 'bus|dbus|session' "" env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR=/tmp/rl-nobus
	# Debian's user@.service delegates cpu, memory and pids: io is not.
	rl_error rl-err-not-delegated "$rt" 'delegat|blockio|io controller|io\.' '"blockIO": {"weight": 500}'
}

# rl_error CHECK RT PATTERN RESOURCES [ENV-PREFIX...]: run must fail with a last line
# matching PATTERN and leave nothing behind.
rl_error() {
	local name=$1 rt=$2 pat=$3 resv=$4 b out
	shift 4
	b=$(rl_bundle "$rt" e 'sleep 600' "" "$resv") || return
	mkdir -p /tmp/rl-nobus && chown $RL: /tmp/rl-nobus
	# shellcheck disable=SC2046
	# run -d into a file: should it start, nothing waits on the container's stdio.
	if (cd "$b" && timeout "$RL_T" runuser -u $RL -- $(rl_env) "$@" "$(rl_bin "$rt")" --systemd-cgroup run -d --bundle "$b" "rl-e-$rt" </dev/null >/tmp/rl-e.out 2>&1); then
		res "$name" "$rt" FAIL "ran"
		as_rl "$(rl_bin "$rt")" delete -f "rl-e-$rt" >/dev/null 2>&1
		return
	fi
	out=$(grep -v 'level=warning' /tmp/rl-e.out | tail -1)
	if ! echo "$out" | grep -qiE "$pat"; then res "$name" "$rt" FAIL "unclear: ${out:0:200}"; return; fi
	if rl_left "$rt" >/dev/null; then res "$name" "$rt" FAIL "$(rl_left "$rt")"; return; fi
	# The state root of the run without a user bus.
	if [ -n "$(find /tmp/rl-nobus -mindepth 2 2>/dev/null)" ]; then
		res "$name" "$rt" FAIL "left: $(find /tmp/rl-nobus -mindepth 2 | head -3 | tr '\n' ' ')"
		rm -rf /tmp/rl-nobus/*
		return
	fi
	res "$name" "$rt" PASS
	echo "INFO $rt $name: ${out:0:200}" >>"$OUT"
}

# User namespaces disabled (the guest's own sysctls, restored after): the error says
# so in one line and nothing is left.
rl_userns_disabled() { # RT
	local rt=$1 key old
	for key in user.max_user_namespaces kernel.unprivileged_userns_clone; do
		old=$(sysctl -n "$key" 2>/dev/null)
		if [ -z "$old" ]; then res "rl-userns-off-${key#*.}" "$rt" SKIP; echo "INFO no sysctl $key on this kernel" >>"$OUT"; continue; fi
		sysctl -qw "$key=0" || { res "rl-userns-off-${key#*.}" "$rt" SKIP; continue; }
		local pat='namespace'
		[ "$rt" = berth ] && pat='user namespaces are disabled'
		rl_error "rl-userns-off-${key#*.}" "$rt" "$pat" ""
		sysctl -qw "$key=$old"
		[ "$(sysctl -n "$key")" = "$old" ] || echo "FAIL $rt $key not restored" >>"$OUT"
	done
}

rl_podman() { # RT: rootless podman with --runtime RT (cgroup manager: its default)
	local rt=$1 bin P out rc cid unit
	bin=$(rl_bin "$rt")
	P=(as_rl podman --runtime "$bin")
	t0=$(ts)
	out=$("${P[@]}" run --rm --network none --rootfs "$RL_ROOTFS" echo hi 2>&1)
	check rl-podman-run-rm "$rt" hi "$(echo "$out" | tail -1)"
	echo "TIME $rt rootless podman run --rm $(ms "$t0")ms" >>"$OUT"
	"${P[@]}" run --rm --network none --rootfs "$RL_ROOTFS" sh -c 'exit 42' >/dev/null 2>&1
	check rl-podman-exit-code "$rt" 42 "$?"
	cid=$("${P[@]}" run -d --network none --memory 64m --rootfs "$RL_ROOTFS" sleep 600 2>/tmp/rl-err)
	if [ -z "$cid" ]; then
		res rl-podman-run-d-memory "$rt" FAIL "$(tail -1 /tmp/rl-err)"
		return
	fi
	unit=libpod-$cid.scope
	check rl-podman-unit-MemoryMax "$rt" 67108864 "$(rl_show "$unit" MemoryMax)"
	check rl-podman-exec "$rt" 67108864 "$("${P[@]}" exec "$cid" cat /sys/fs/cgroup/memory.max 2>&1 | tail -1)"
	"${P[@]}" exec "$cid" dd if=/dev/zero of=/dev/null bs=96M count=1 >/dev/null 2>&1
	check rl-podman-memory-enforced "$rt" 137 "$?"
	"${P[@]}" rm -f -t 0 "$cid" >/dev/null 2>&1
	sleep 0.3
	if [ "$(as_rl systemctl --user is-active "$unit" 2>/dev/null)" != active ] &&
		[ -z "$("${P[@]}" ps -a -q 2>/dev/null)" ]; then
		res rl-podman-rm-clean "$rt" PASS
	else
		res rl-podman-rm-clean "$rt" FAIL "unit $(as_rl systemctl --user is-active "$unit" 2>&1), left: $("${P[@]}" ps -a -q 2>&1 | tr '\n' ' ')"
	fi
	echo "TIME $rt rootless podman checks $(ms "$t0")ms" >>"$OUT"
}

rl_main() {
	local t0 why
	t0=$(ts)
	# Not in a subshell: the setup's variables are used by every check.
	if ! rl_setup >/tmp/rl-setup.log 2>&1; then
		why=$(tail -1 /tmp/rl-setup.log)
		echo "INFO rootless setup failed: $why" >>"$OUT"
		res rl-setup berth FAIL "$why"
		return
	fi
	echo "TIME rootless setup (user, linger, user bus) $(ms "$t0")ms" >>"$OUT"
	echo "INFO delegated to user@$RL_UID.service: $(cat "$RL_MGR/cgroup.controllers" 2>&1)" >>"$OUT"
	echo "INFO rootless podman: $(as_rl podman info --format '{{.Host.CgroupManager}} cgroup{{.Host.CgroupsVersion}} rootless={{.Host.Security.Rootless}}' 2>&1 | tail -1)" >>"$OUT"
	for rt in berth runc crun; do
		t0=$(ts)
		rl_runtime "$rt"
		rl_userns_disabled "$rt"
		rl_podman "$rt"
		echo "TIME $rt rootless checks $(ms "$t0")ms" >>"$OUT"
	done
	# The session would hold up the poweroff (systemd waits for it to stop).
	timeout 30 loginctl disable-linger $RL
	timeout 30 loginctl terminate-user $RL
	pkill -KILL -u $RL 2>/dev/null
}
rl_main
