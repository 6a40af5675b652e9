# shellcheck shell=bash
# Sourced by the rootless scripts (as root): the berth binary, an ordinary user with
# /etc/subuid and /etc/subgid ranges, a work directory it owns, and as_user.
# Sets BERTH RL_USER RL_UID RL_GID SUB_UID SUB_GID WORK (removed at exit).
BERTH=${1:-$REPO/target/debug/berth}
if [ ! -x "$BERTH" ]; then
	(cd "$REPO" && cargo build -q -p berth --bin berth --bin berth-systemd) || exit 1
fi
if ! command -v newuidmap >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq uidmap >/dev/null || exit 1
fi
RL_USER=${RL_USER:-berth-rootless}
id "$RL_USER" >/dev/null 2>&1 || useradd -M -d /nonexistent -s /bin/sh "$RL_USER" || exit 1
RL_UID=$(id -u "$RL_USER")
RL_GID=$(id -g "$RL_USER")
for f in subuid subgid; do
	grep -q "^$RL_USER:" /etc/$f || echo "$RL_USER:$((200000 + RL_UID * 65536)):65536" >>/etc/$f
done
SUB_UID=$(awk -F: -v u="$RL_USER" '$1 == u { print $2; exit }' /etc/subuid)
SUB_GID=$(awk -F: -v u="$RL_USER" '$1 == u { print $2; exit }' /etc/subgid)

# Everything the user touches lives under a world-searchable directory it owns: a
# container's mapped root must be able to reach the bundle.
WORK=$(mktemp -d /var/tmp/berth-rootless.XXXXXX)
chmod 0755 "$WORK"
mkdir -p "$WORK/bin" "$WORK/xdg"
cp "$BERTH" "$WORK/bin/berth"
# The systemd driver's D-Bus helper goes with it (berth looks next to itself).
HELPER=$(dirname "$BERTH")/berth-systemd
[ ! -x "$HELPER" ] || cp "$HELPER" "$WORK/bin/"
bash "$REPO/bundles/build-rootfs.sh" "$WORK/rootfs" >/dev/null || exit 1
chown -R "$RL_USER:" "$WORK"
chmod 0700 "$WORK/xdg"
cleanup() {
	pkill -KILL -u "$RL_USER" 2>/dev/null
	rm -rf "$WORK"
	# Cgroups a check delegated (named berth-rl-RUNTIME-PID), if it was interrupted.
	sleep 0.2
	find /sys/fs/cgroup -maxdepth 2 -type d -name "berth-rl-*-$$" 2>/dev/null | while read -r d; do
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
}
trap cleanup EXIT

# Run a command as the user, in a clean environment. With crun: inside a private
# mount namespace root makes without the hybrid layout's cgroup2 mount, which crun 1.8
# refuses (an ordinary user cannot make that namespace itself).
as_user() { # RT CMD...
	local rt=$1
	shift
	local env=(env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$WORK" USER="$RL_USER"
		XDG_RUNTIME_DIR="${XDG:-$WORK/xdg}")
	[ -n "${NO_XDG:-}" ] && env=(env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$WORK" USER="$RL_USER")
	# With DELEG_PROCS (see delegate): first move into those cgroups, as a
	# login manager would put the user's session into its delegated cgroup.
	local pre='for p in ${DELEG_PROCS:-}; do [ -e "$p" ] || continue; echo $$ > "$p" || exit 125; done; exec "$@"'
	if [ "$rt" = crun ]; then
		unshare -m --propagation slave sh -c 'umount -l /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh \
			sh -c "$pre" sh runuser -u "$RL_USER" -- "${env[@]}" "$@"
	else
		sh -c "$pre" sh runuser -u "$RL_USER" -- "${env[@]}" "$@"
	fi
}


# delegate NAME: a cgroup NAME owned by the user in every hierarchy, with NAME/shell for
# the user's processes (set DELEG_PROCS to its cgroup.procs files) and controllers
# enabled for NAME's children on cgroup v2. Prints the cgroup.procs paths.
delegate() {
	local name=$1 h d
	for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[ -e "$h/cgroup.procs" ] || continue
		[ "$h" = /sys/fs/cgroup/ ] && [ -e /sys/fs/cgroup/memory ] && continue
		d=${h%/}/$name
		mkdir -p "$d/shell"
		if [ -e "$d/cpuset.cpus" ]; then # v1 cpuset: children need their parent's sets
			cat "${h%/}/cpuset.cpus" >"$d/cpuset.cpus"
			cat "${h%/}/cpuset.mems" >"$d/cpuset.mems"
			cat "$d/cpuset.cpus" >"$d/shell/cpuset.cpus"
			cat "$d/cpuset.mems" >"$d/shell/cpuset.mems"
		fi
		if [ -e "$d/cgroup.subtree_control" ] && [ -s "${h%/}/cgroup.controllers" ]; then
			for c in $(cat "$d/cgroup.controllers"); do echo "+$c" >"$d/cgroup.subtree_control" 2>/dev/null; done
		fi
		chown -R "$RL_USER:" "$d"
		echo "$d/shell/cgroup.procs"
	done
}
undelegate() { # NAME
	local d
	for d in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	return 0
}
