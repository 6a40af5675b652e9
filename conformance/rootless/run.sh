#!/bin/bash
# Rootless checks on this host: as root, make an ordinary user with /etc/subuid and
# /etc/subgid ranges, then run the same checks as that user with berth, runc and crun
# side by side and print one table (check x runtime).
#
#   conformance/rootless/run.sh [BERTH]       (default: target/debug/berth, built if missing)
#   RUNTIMES="berth runc crun"  RL_USER=berth-rootless
#
# Error checks pass when the runtime fails with a one-line message naming the cause
# AND leaves nothing behind (no state entry, no process of the user).
# crun 1.8 refuses a hybrid cgroup layout, and the private mount namespace that hides
# /sys/fs/cgroup/unified needs root: crun runs as the user inside such a namespace
# made by root here (the user's view is then a pure v1 host).
# Exit status: non-zero if a berth check fails; runc and crun rows are for comparison.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "rootless/run.sh: run me as root (I create the test user)" >&2; exit 2; }

. "$HERE/lib.sh"

bin_of() { case $1 in berth) echo "$WORK/bin/berth" ;; runc) command -v runc ;; crun) command -v crun ;; esac; }

# A fresh bundle from `RT spec --rootless`, edited by the jq filter $2.
bundle() { # RT FILTER -> prints the bundle path
	local rt=$1 filter=$2 b
	b=$(mktemp -d "$WORK/b.XXXX")
	chmod 0755 "$b"
	chown -R "$RL_USER:" "$b"
	(cd "$b" && as_user "$rt" "$(bin_of "$rt")" spec --rootless) || return 1
	jq --arg r "$WORK/rootfs" ".root.path = \$r | .process.terminal = false | $filter" "$b/config.json" >"$b/c" && mv "$b/c" "$b/config.json"
	chown "$RL_USER:" "$b/config.json"
	echo "$b"
}

rt_cmd() { # RT BUNDLE ARGS... (runs in the bundle as the user)
	local rt=$1 b=$2
	shift 2
	(cd "$b" && as_user "$rt" "$(bin_of "$rt")" "$@")
}

# Nothing of the user's may be left: no state entry, no process.
left_behind() { # RT
	local ids procs
	ids=$(as_user "$1" "$(bin_of "$1")" list -q 2>/dev/null)
	# Zombies are not the runtime's: this VM's pid 1 reaps orphans lazily.
	procs=$(ps -u "$RL_USER" -o stat=,pid=,comm= 2>/dev/null | awk '$1 !~ /^Z/ { print $2, $3 }')
	[ -z "$ids$procs" ] && return 1
	echo "left: ids [$ids] procs [$procs]"
}

# --- checks: each prints a short reason and returns 0 (pass) or 1 -----------------
uid() { echo "rl$$-$RANDOM$RANDOM"; }

check_spec() {
	local b
	b=$(bundle "$1" '.') || { echo "spec failed"; return 1; }
	jq -e '.linux.namespaces | any(.type == "user")' "$b/config.json" >/dev/null || { echo "no user namespace"; return 1; }
	if jq -e '.linux.uidMappings == null' "$b/config.json" >/dev/null; then
		echo "user ns, no mappings (the runtime maps the caller at run)"
		return 0
	fi
	jq -e --argjson u "$RL_UID" '.linux.uidMappings == [{"containerID":0,"hostID":$u,"size":1}]' "$b/config.json" >/dev/null ||
		{ echo "uidMappings not the caller's"; return 1; }
	echo "user ns, own id mapped"
}

check_run() {
	local b out rc
	b=$(bundle "$1" '.process.args = ["sh","-c","echo out; id -u; cat /proc/self/setgroups; exit 3"]') || return 1
	out=$(rt_cmd "$1" "$b" run "$(uid)" 2>&1)
	rc=$?
	[ "$rc" = 3 ] || { echo "rc $rc: $out"; return 1; }
	case "$(echo "$out" | tr '\n' ' ')" in
	"out 0 "*) ;;
	*) echo "output: $out"; return 1 ;;
	esac
	left_behind "$1" && return 1
	echo "exit 3, uid 0, setgroups $(echo "$out" | tail -1)"
}

check_lifecycle() {
	local rt=$1 b id out rc
	b=$(bundle "$rt" '.process.args = ["sleep","300"]') || return 1
	id=$(uid)
	# The container keeps the stdio it is given: never a pipe we wait on.
	rt_cmd "$rt" "$b" run -d "$id" </dev/null >"$b/run.out" 2>&1 || { echo "run -d: $(tail -1 "$b/run.out")"; return 1; }
	as_user "$rt" "$(bin_of "$rt")" state "$id" | jq -e '.status == "running"' >/dev/null || { echo "not running"; return 1; }
	out=$(as_user "$rt" "$(bin_of "$rt")" exec "$id" sh -c 'echo hi; id -u' 2>&1)
	[ "$(echo "$out" | tr '\n' ' ')" = "hi 0 " ] || { echo "exec: $out"; return 1; }
	as_user "$rt" "$(bin_of "$rt")" exec "$id" sh -c 'exit 7' 2>/dev/null
	rc=$?
	[ "$rc" = 7 ] || { echo "exec exit status $rc, not 7"; return 1; }
	out=$(as_user "$rt" "$(bin_of "$rt")" kill "$id" KILL 2>&1) || { echo "kill: $out"; return 1; }
	for _ in $(seq 50); do
		as_user "$rt" "$(bin_of "$rt")" state "$id" 2>/dev/null | jq -e '.status == "stopped"' >/dev/null && break
		sleep 0.1
	done
	out=$(as_user "$rt" "$(bin_of "$rt")" delete "$id" 2>&1) || { echo "delete: $out"; return 1; }
	left_behind "$rt" && return 1
	echo "run -d, exec (exit 7 kept), kill, delete"
}

check_delete_force() {
	local rt=$1 b id out
	b=$(bundle "$rt" '.process.args = ["sleep","300"]') || return 1
	id=$(uid)
	# The container keeps the stdio it is given: never a pipe we wait on.
	rt_cmd "$rt" "$b" run -d "$id" </dev/null >"$b/run.out" 2>&1 || { echo "run -d: $(tail -1 "$b/run.out")"; return 1; }
	out=$(as_user "$rt" "$(bin_of "$rt")" delete -f "$id" 2>&1) || { echo "delete -f: $out"; return 1; }
	left_behind "$rt" && return 1
	echo "delete -f of a running container"
}

check_multirange() {
	local rt=$1 b out f
	f=".linux.uidMappings = [{containerID:0,hostID:$RL_UID,size:1},{containerID:1,hostID:$SUB_UID,size:65536}]
	   | .linux.gidMappings = [{containerID:0,hostID:$RL_GID,size:1},{containerID:1,hostID:$SUB_GID,size:65536}]
	   | .process.user = {uid:1000,gid:1000}
	   | .process.args = [\"sh\",\"-c\",\"id -u; id -g; wc -l < /proc/self/uid_map; cat /proc/self/setgroups\"]"
	b=$(bundle "$rt" "$f") || return 1
	out=$(rt_cmd "$rt" "$b" run "$(uid)" 2>&1) || { echo "$(echo "$out" | tail -1)"; return 1; }
	[ "$(echo "$out" | tr -s ' \n' ' ')" = "1000 1000 2 allow " ] || { echo "output: $out"; return 1; }
	left_behind "$rt" && return 1
	echo "newuidmap/newgidmap: uid/gid 1000 in the container"
}

# An error check: the run must fail, say something matching $3 in its last line, and
# leave nothing behind.
expect_error() { # RT FILTER PATTERN
	local rt=$1 b out
	b=$(bundle "$rt" "$2") || return 1
	out=$(rt_cmd "$rt" "$b" run "$(uid)" </dev/null 2>&1) && { echo "ran: $out"; return 1; }
	out=$(echo "$out" | grep -v 'level=warning' | tail -1)
	echo "$out" | grep -qiE "$3" || { echo "unclear: $out"; return 1; }
	left_behind "$rt" && return 1
	echo "${out:0:150}"
}

# Supplementary groups need a gid map written by newgidmap (setgroups stays allowed).
check_groups() {
	local rt=$1 b out f
	f=".linux.uidMappings = [{containerID:0,hostID:$RL_UID,size:1},{containerID:1,hostID:$SUB_UID,size:65536}]
	   | .linux.gidMappings = [{containerID:0,hostID:$RL_GID,size:1},{containerID:1,hostID:$SUB_GID,size:65536}]
	   | .process.user = {uid:1000,gid:1000,additionalGids:[5]}
	   | .process.args = [\"id\",\"-G\"]"
	b=$(bundle "$rt" "$f") || return 1
	out=$(rt_cmd "$rt" "$b" run "$(uid)" 2>&1) || { echo "$(echo "$out" | tail -1 | cut -c1-150)"; return 1; }
	[ "$out" = "1000 5" ] || { echo "output: $out"; return 1; }
	left_behind "$rt" && return 1
	echo "additionalGids [5] with newgidmap"
}
check_groups_denied() { expect_error "$1" '.process.user.additionalGids = [0]' 'group'; }
check_limit() { expect_error "$1" '.linux.resources = {memory: {limit: 33554432}}' 'memory'; }
check_cgroups_path() { expect_error "$1" ".linux.cgroupsPath = \"/rl-not-delegated-$$\"" 'cgroup|permission denied'; }
check_subuid() {
	expect_error "$1" ".linux.uidMappings = [{containerID:0,hostID:$RL_UID,size:1},{containerID:1,hostID:$((SUB_UID + 70000)),size:10}]" \
		'subuid|newuidmap|mapping|map'
}
check_no_userns() {
	expect_error "$1" '.linux.namespaces |= map(select(.type != "user")) | del(.linux.uidMappings, .linux.gidMappings)' \
		'user namespace|userns|namespace'
}
check_unmapped_gid() {
	expect_error "$1" '.mounts |= map(if .destination == "/dev/pts" then .options += ["gid=5"] else . end)' 'gid'
}
check_sysfs() {
	local rt=$1 b out
	b=$(bundle "$rt" '.mounts |= map(if .destination == "/sys" then {destination:"/sys",type:"sysfs",source:"sysfs",options:["nosuid","noexec","nodev","ro"]} else . end)
		| .process.args = ["sh","-c","test -e /sys/kernel && echo sys"]') || return 1
	out=$(rt_cmd "$rt" "$b" run "$(uid)" 2>&1) || { echo "$(echo "$out" | tail -1 | cut -c1-150)"; return 1; }
	[ "$out" = sys ] || { echo "output: $out"; return 1; }
	left_behind "$rt" && return 1
	echo "sysfs without a netns: host /sys bound"
}
check_no_xdg() {
	local rt=$1 b out
	b=$(bundle "$rt" '.') || return 1
	out=$(cd "$b" && NO_XDG=1 as_user "$rt" "$(bin_of "$rt")" run "$(uid)" </dev/null 2>&1) && { echo "ran"; return 1; }
	out=$(echo "$out" | tail -1)
	echo "$out" | grep -qi 'permission denied' || { echo "unclear: $out"; return 1; }
	echo "${out:0:150}"
}
check_rootless_false() {
	local rt=$1 b out
	b=$(bundle "$rt" '.') || return 1
	out=$(rt_cmd "$rt" "$b" --rootless false run "$(uid)" </dev/null 2>&1) && { echo "ran without a cgroup"; return 1; }
	out=$(echo "$out" | grep -v 'level=warning' | tail -1)
	echo "$out" | grep -qiE 'cgroup' || { echo "unclear: $out"; return 1; }
	left_behind "$rt" && return 1
	echo "${out:0:150}"
}
# A cgroup delegated to the user (its session moved in by root): limits are enforced,
# pause works, delete removes the container's cgroup.
check_delegated() {
	local rt=$1 b id out name="berth-rl-$rt-$$" mem
	DELEG_PROCS=$(delegate "$name" | tr '\n' ' ')
	export DELEG_PROCS
	b=$(bundle "$rt" ".linux.cgroupsPath = \"/$name/c\" | .linux.resources = {memory: {limit: 33554432}, pids: {limit: 20}}
		| .process.args = [\"sleep\",\"300\"]") || { undelegate "$name"; return 1; }
	id=$(uid)
	if ! rt_cmd "$rt" "$b" run -d "$id" </dev/null >"$b/run.out" 2>&1; then
		echo "run -d: $(tail -1 "$b/run.out" | cut -c1-150)"
		undelegate "$name"
		return 1
	fi
	if [ -e /sys/fs/cgroup/memory ]; then mem=/sys/fs/cgroup/memory/$name/c/memory.limit_in_bytes; else mem=/sys/fs/cgroup/$name/c/memory.max; fi
	out=$(cat "$mem" 2>&1)
	as_user "$rt" "$(bin_of "$rt")" pause "$id" >/dev/null 2>&1 &&
		as_user "$rt" "$(bin_of "$rt")" state "$id" | jq -e '.status == "paused"' >/dev/null && paused=1 || paused=0
	as_user "$rt" "$(bin_of "$rt")" resume "$id" >/dev/null 2>&1
	as_user "$rt" "$(bin_of "$rt")" delete -f "$id" >/dev/null 2>&1
	local left=0
	[ -d "${mem%/*}" ] && left=1
	unset DELEG_PROCS
	undelegate "$name"
	[ "$out" = 33554432 ] || { echo "memory limit reads '$out'"; return 1; }
	[ "$paused" = 1 ] || { echo "pause failed"; return 1; }
	[ "$left" = 0 ] || { echo "container cgroup left after delete -f"; return 1; }
	left_behind "$rt" && return 1
	echo "limit enforced, pause, delete -f removes the cgroup"
}
check_pause() {
	local rt=$1 b id out
	b=$(bundle "$rt" '.process.args = ["sleep","300"]') || return 1
	id=$(uid)
	rt_cmd "$rt" "$b" run -d "$id" </dev/null >"$b/run.out" 2>&1 || { echo "run -d: $(tail -1 "$b/run.out")"; return 1; }
	out=$(as_user "$rt" "$(bin_of "$rt")" pause "$id" 2>&1)
	local rc=$?
	as_user "$rt" "$(bin_of "$rt")" delete -f "$id" >/dev/null 2>&1
	[ "$rc" != 0 ] || { echo "paused without a cgroup"; return 1; }
	out=$(echo "$out" | tail -1)
	echo "$out" | grep -qi 'cgroup' || { echo "unclear: $out"; return 1; }
	left_behind "$rt" && return 1
	echo "${out:0:150}"
}

# A live "user namespaces disabled": in a user namespace of its own the user sets
# user.max_user_namespaces to 0 (a per-user-namespace limit: the host's setting is
# never touched) and runs the container from there, where the kernel refuses the
# container's user namespace. Skips (status 2) where the host cannot do that.
check_userns_disabled() {
	local rt=$1 b out pat='namespace'
	[ "$rt" = berth ] && pat='user namespaces are (disabled|unavailable)'
	local set0='echo 0 >/proc/sys/user/max_user_namespaces || exit 99; exec "$@"'
	out=$(as_user "$rt" timeout 20 unshare --user --map-root-user sh -c "$set0" sh true 2>&1) ||
		{ echo "skip: cannot set user.max_user_namespaces in a user namespace here: $(echo "$out" | tail -1)"; return 2; }
	b=$(bundle "$rt" '.') || return 1
	out=$(cd "$b" && as_user "$rt" timeout 60 unshare --user --map-root-user sh -c "$set0" sh "$(bin_of "$rt")" run "$(uid)" </dev/null 2>&1) &&
		{ echo "ran: $out"; return 1; }
	out=$(echo "$out" | grep -v 'level=warning' | tail -1)
	echo "$out" | grep -qiE "$pat" || { echo "unclear: $out"; return 1; }
	left_behind "$rt" && return 1
	echo "${out:0:150}"
}
# --systemd-cgroup as the user on a host without a user bus (no systemd here) or
# without cgroup v2: one line saying which.
check_systemd_user() {
	local rt=$1 b out
	b=$(bundle "$rt" '.') || return 1
	out=$(rt_cmd "$rt" "$b" --systemd-cgroup run "$(uid)" </dev/null 2>&1) && { echo "ran: $out"; return 1; }
	out=$(echo "$out" | grep -v 'level=warning' | tail -1)
	echo "$out" | grep -qiE 'cgroup v2|cgroup v1|bus|systemd' || { echo "unclear: $out"; return 1; }
	left_behind "$rt" && return 1
	echo "${out:0:150}"
}

CHECKS=(spec run lifecycle delete_force multirange groups groups_denied sysfs limit cgroups_path subuid no_userns unmapped_gid no_xdg rootless_false pause delegated userns_disabled systemd_user)
RUNTIMES=${RUNTIMES:-berth runc crun}
fail=0 passed=0 failed=0 skipped=0
printf '%-15s %-6s %s\n' CHECK RUNTIME RESULT
for c in "${CHECKS[@]}"; do
	for rt in $RUNTIMES; do
		why=$("check_$c" "$rt" 2>&1)
		r=$?
		why=$(echo "$why" | tail -1)
		case $r in 0) st=ok ;; 2) st=skip ;; *) st=FAIL ;; esac
		if [ "$rt" = berth ]; then
			case $r in
			0) passed=$((passed + 1)) ;;
			2) skipped=$((skipped + 1)) ;;
			*) failed=$((failed + 1)) fail=1 ;;
			esac
		fi
		printf '%-15s %-6s %-4s %s\n' "$c" "$rt" "$st" "$why"
		# A failed check may leave the user's processes: never let them leak into the next.
		pkill -KILL -u "$RL_USER" 2>/dev/null
		rm -rf "$WORK/xdg"/*
	done
done
# Only berth's rows count; runc's and crun's are there to compare.
echo "$passed passed, $failed failed, $skipped skipped"
exit $fail
