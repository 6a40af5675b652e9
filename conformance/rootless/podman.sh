#!/bin/bash
# Rootless podman 4.3 as an ordinary user, with berth, runc and crun as its runtime side by
# side: the engine checks of the root podman suite (output, exit codes, stdin, -d, exec,
# stop, rm, -it), plus what becomes of a memory limit on a host that delegates no cgroup.
#
#   conformance/rootless/podman.sh [BERTH]      RUNTIMES="berth runc crun"
#
# podman runs the runtime as root of its own user namespace (mapped through newuidmap from
# the user's /etc/subuid range), in its own mount namespace. Inside it, a wrapper hides the
# hybrid layout's cgroup2 mount under an empty tmpfs for crun 1.8, which refuses that layout.
# Exit status: non-zero if a berth check fails; runc and crun rows are for comparison.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "rootless/podman.sh: run me as root (I create the test user)" >&2; exit 2; }
for p in podman:podman conmon:conmon slirp4netns:slirp4netns fuse-overlayfs:fuse-overlayfs newuidmap:uidmap; do
	command -v "${p%%:*}" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${p#*:}" >/dev/null ||
		{ echo "cannot install ${p#*:}" >&2; exit 1; }
done
. "$HERE/lib.sh"
CALL_TIMEOUT=${CALL_TIMEOUT:-90}

W=$WORK
mkdir -p "$W"/{home,root,runroot,tmp,img}
cat >"$W/bin/crun-nounified" <<'EOF'
#!/bin/sh
exec unshare -m --propagation slave sh -c 'mount -t tmpfs -o ro none /sys/fs/cgroup/unified 2>/dev/null; exec /usr/bin/crun "$@"' crun "$@"
EOF
chmod 755 "$W/bin/crun-nounified"
cat >"$W/containers.conf" <<CONF
[containers]
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/events.log"
tmp_dir = "$W/tmp"
lock_type = "file"
CONF
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$W/root" "$W/runroot" >"$W/storage.conf"
: >"$W/registries.conf"
OUT=$W/img "$REPO/conformance/engines/make-busybox-image.sh" >/dev/null || exit 1
chown -R "$RL_USER:" "$W"

# podman as the user with private state; a script, so timeout and script(1) can run it.
cat >"$W/bin/pm" <<PM
#!/bin/sh
exec runuser -u $RL_USER -- env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin USER=$RL_USER \\
	HOME=$W/home XDG_RUNTIME_DIR=$W/xdg CONTAINERS_CONF=$W/containers.conf \\
	CONTAINERS_STORAGE_CONF=$W/storage.conf CONTAINERS_REGISTRIES_CONF=$W/registries.conf \\
	podman --root $W/root --runroot $W/runroot --tmpdir $W/tmp --cgroup-manager cgroupfs \\
	--events-backend file "\$@"
PM
chmod 755 "$W/bin/pm"
pm() { "$W/bin/pm" "$@"; }
IMG=localhost/bb:latest
"$W/bin/pm" import -q "$W/img/rootfs.tar" "$IMG" >"$W/import.log" 2>&1 || { echo "podman import failed" >&2; exit 1; }

rt_path() { case $1 in berth) echo "$W/bin/berth" ;; runc) command -v runc ;; crun) echo "$W/bin/crun-nounified" ;; esac; }

# c NAME WANT_RC WANT_OUT CMD... : one check; WANT_OUT "=text" (whole output, podman's warnings
# dropped) or "~regex". Prints "ok" or the reason, returns 0/1.
c() {
	local want_rc=$1 want=$2 out rc=0
	shift 2
	out=$(timeout "$CALL_TIMEOUT" "$@" 2>&1 </dev/null) || rc=$?
	out=$(printf '%s' "${out//$'\r'/}" | grep -v 'level=warning.*not a shared mount')
	[ "$rc" = "$want_rc" ] || { echo "exit $rc, want $want_rc: $(printf '%s' "$out" | tail -1 | cut -c1-160)"; return 1; }
	case $want in
	=*) [ "$out" = "${want#=}" ] || { echo "output '$(printf '%s' "$out" | tr '\n' '|' | cut -c1-160)'"; return 1; } ;;
	"~"*) printf '%s' "$out" | grep -Eq -- "${want#\~}" || { echo "output '$(printf '%s' "$out" | tr '\n' '|' | cut -c1-160)'"; return 1; } ;;
	esac
	echo ok
}
tty_c() { # WANT_REGEX CMD... under a pseudo-terminal
	local want=$1 cmd out rc=0
	shift
	printf -v cmd '%q ' "$@"
	out=$(timeout "$CALL_TIMEOUT" script -qefc "$cmd" /dev/null 2>&1 </dev/null) || rc=$?
	out=${out//$'\r'/}
	if [ "$rc" = 0 ] && printf '%s' "$out" | grep -Eq -- "$want"; then echo ok; else
		echo "exit $rc, output '$(printf '%s' "$out" | tr '\n' '|' | cut -c1-160)'"
		return 1
	fi
}

checks() { # RT: prints "NAME<TAB>RESULT" lines
	local rt=$1 R
	R=(run --pull never --runtime "$(rt_path "$rt")")
	local n="d-$rt-$$"
	printf 'run --rm: output\t%s\n' "$(c 0 "=hello" "$W/bin/pm" "${R[@]}" --rm "$IMG" echo hello)"
	printf 'run --rm: exit code 7\t%s\n' "$(c 7 "" "$W/bin/pm" "${R[@]}" --rm "$IMG" sh -c 'exit 7')"
	printf 'run --rm: stdin closed\t%s\n' "$(c 0 "=x" "$W/bin/pm" "${R[@]}" --rm "$IMG" sh -c 'cat; echo x')"
	printf 'run: uid 0 is the user\t%s\n' "$(c 0 "~^ +0 +$RL_UID +1" "$W/bin/pm" "${R[@]}" --rm "$IMG" head -1 /proc/self/uid_map)"
	printf 'run -d\t%s\n' "$(c 0 "~^[0-9a-f]{64}$" "$W/bin/pm" "${R[@]}" -d --name "$n" "$IMG" sleep 1000)"
	printf 'exec: output\t%s\n' "$(c 0 "=in d" "$W/bin/pm" exec "$n" sh -c 'echo in d')"
	printf 'exec: exit code 5\t%s\n' "$(c 5 "" "$W/bin/pm" exec "$n" sh -c 'exit 5')"
	printf 'exec --user 65534\t%s\n' "$(c 0 "=65534" "$W/bin/pm" exec --user 65534 "$n" id -u)"
	printf 'stop -t 2\t%s\n' "$(c 0 "~$n" "$W/bin/pm" stop -t 2 "$n")"
	printf 'stopped: exited\t%s\n' "$(c 0 "=exited" "$W/bin/pm" inspect -f '{{.State.Status}}' "$n")"
	printf 'rm\t%s\n' "$(c 0 "=$n" "$W/bin/pm" rm "$n")"
	printf 'run -d, rm -f -t 0\t%s\n' "$(c 0 "" "$W/bin/pm" "${R[@]}" -d --name "$n-2" "$IMG" sleep 1000 >/dev/null; c 0 "=$n-2" "$W/bin/pm" rm -f -t 0 "$n-2")"
	printf 'run -it: a tty\t%s\n' "$(tty_c '/dev/pts/[0-9]+' "$W/bin/pm" "${R[@]}" --rm -it "$IMG" sh -c 'sleep 0.3; tty')"
	# No delegation here: podman itself drops the limit on cgroup v1 (with a warning), so the
	# container runs unlimited whatever the runtime.
	printf -- '--memory 64m (no delegation)\t%s\n' "$(c 0 "~not supported|ignored" "$W/bin/pm" "${R[@]}" --rm --memory 64m "$IMG" true)"
	printf 'no container left\t%s\n' "$(c 0 "=" "$W/bin/pm" ps -aq)"
	# podman passes no --root: each runtime keeps its state under $XDG_RUNTIME_DIR.
	printf 'no runtime state left\t%s\n' "$(c 0 "=" find "$W/xdg/$rt" -mindepth 1 -maxdepth 1)"
}

declare -A RES
NAMES=()
RUNTIMES=${RUNTIMES:-berth runc crun}
for rt in $RUNTIMES; do
	while IFS=$'\t' read -r name res; do
		[ -n "${RES[$name,berth]+x}${RES[$name,runc]+x}${RES[$name,crun]+x}" ] || NAMES+=("$name")
		RES[$name,$rt]=$res
	done < <(checks "$rt")
	pm rm -af -t 0 >/dev/null 2>&1
done
fail=0 passed=0 failed=0
printf '%-30s' CHECK
for rt in $RUNTIMES; do printf ' %-8s' "$rt"; done
echo
for name in "${NAMES[@]}"; do
	printf '%-30s' "$name"
	for rt in $RUNTIMES; do
		r=${RES[$name,$rt]:-?}
		[ "$r" = ok ] && printf ' %-8s' ok || printf ' %-8s' FAIL
		if [ "$rt" = berth ]; then
			[ "$r" = ok ] && passed=$((passed + 1)) || { failed=$((failed + 1)) fail=1; }
		fi
	done
	echo
done
for name in "${NAMES[@]}"; do
	for rt in $RUNTIMES; do
		r=${RES[$name,$rt]:-?}
		[ "$r" = ok ] || echo "  $rt: $name: $r"
	done
done

# Only berth's rows count; runc's and crun's are there to compare.
echo "$passed passed, $failed failed"
exit $fail
