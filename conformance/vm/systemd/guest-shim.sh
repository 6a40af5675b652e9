# Sourced by guest-engines.sh after its containerd checks (uses ctr_run, res,
# and containerd already running): containerd through berth's own shim,
# io.containerd.berth.v2, with SystemdCgroup = true.
# On a failure, what the shim, its helper and berth were doing is logged.

shim_diag() { # shim_diag ID : processes, their kernel stacks, the logs
	local id=$1 p t f scope=/sys/fs/cgroup/system.slice/ctr-$1.scope
	ps -eo pid,ppid,stat,wchan:28,comm,args --ppid 2 -N | sed 's/^/INFO ps: /' >>"$OUT"
	for p in $(pgrep -f 'containerd-shim-berth-v2|berth') $(cat "$scope/cgroup.procs" 2>/dev/null); do
		echo "INFO proc $p cg=$(cut -d: -f3 "/proc/$p/cgroup" 2>/dev/null) syscall=$(cut -d' ' -f1-3 "/proc/$p/syscall" 2>/dev/null)" >>"$OUT"
		echo "INFO fds $p: $(cd "/proc/$p/fd" 2>/dev/null && for f in *; do printf '%s>%s ' "$f" "$(readlink "$f")"; done)" >>"$OUT"
		for t in /proc/$p/task/*; do
			echo "INFO stack $p/${t##*/} $(cat "$t/comm" 2>/dev/null): $(grep -o '[a-z_0-9]*+' "$t/stack" 2>/dev/null | tr -d + | tr '\n' ' ' | cut -c1-200)" >>"$OUT"
		done
	done
	echo "INFO scope procs: $(tr '\n' ' ' <"$scope/cgroup.procs" 2>&1)" >>"$OUT"
	for f in $(find /run/containerd -name 'log.json' -path "*$id*" 2>/dev/null); do
		tail -5 "$f" | sed "s|^|INFO log.json: |" >>"$OUT"
	done
	systemctl list-units --all --no-legend "*$id*" 2>&1 | sed 's/^/INFO unit: /' >>"$OUT"
	journalctl --no-pager -o cat --since=-3min 2>&1 | grep -a -i -e "$id" -e berth -e shim | grep -v 'cri plugin' | tail -10 |
		sed 's/^/INFO journal: /' >>"$OUT"
}

if [ -x /share/containerd-shim-berth-v2 ]; then
	ln -sf /share/containerd-shim-berth-v2 /usr/local/bin/containerd-shim-berth-v2
	rt=berth
	# ctr passes runc's flags only to runc-v2; other shims get a config file
	echo 'SystemdCgroup = true' >/tmp/berth-shim.toml
	CTR_TIMEOUT=40 CTR_DIAG=shim_diag \
		ctr_run containerd-berth-shim cb-berth --runtime io.containerd.berth.v2 --runtime-config-path /tmp/berth-shim.toml
fi
