# Sourced by guest-test.sh (uses its res, $OUT, $T): the in-house
# conformance suite's cgroup scenarios with --systemd-cgroup (the driver's
# --systemd-cgroup gives every case the cgroupsPath
# system.slice:<prefix>:<case>), for berth, runc and crun. One row per
# scenario, "conf-<scenario>". Scenarios about cgroupsPath forms systemd has
# no equivalent of (relative paths, a foreign parent) are left out.
# Needs in /share: berth-conformance, berth-check (static).

conformance_test() {
	local names=() n rt bin t0 line
	while read -r n _; do
		case $n in
		linux_cgroups_relative_* | linux_cgroups_*_v1) ;;
		linux_cgroups_* | delete_resources) names+=(--scenario "$n") ;;
		esac
	done < <(/share/berth-conformance --list 2>/dev/null)
	if [ ${#names[@]} = 0 ]; then
		res conf-list berth FAIL "no cgroup scenario in the driver's --list"
		return
	fi
	for entry in berth:/share/berth runc:/usr/sbin/runc crun:/usr/bin/crun; do
		rt=${entry%%:*}
		bin=${entry#*:}
		t0=$(ts)
		timeout 600 /share/berth-conformance --runtime "$bin" --checker /share/berth-check \
			--systemd-cgroup --timeout "$T" --workdir "/tmp/conf-$rt" -v "${names[@]}" >"/tmp/conf-$rt.out" 2>&1
		while read -r line; do
			set -- $line
			case "$2" in
			PASS | FAIL | SKIP) res "conf-$1" "$rt" "$2" "${*:7}" ;;
			esac
		done <"/tmp/conf-$rt.out"
		grep -q '^scenarios: ' "/tmp/conf-$rt.out" || res conf-run "$rt" FAIL "$(tail -2 "/tmp/conf-$rt.out" | tr '\n' ' ')"
		# the failed assertions, for the log
		grep -a '^ *not ok\|^   ' "/tmp/conf-$rt.out" | head -8 | cut -c1-250 | sed "s/^/INFO conf $rt: /" >>"$OUT"
		echo "TIME $rt conformance(systemd) $(ms "$t0")ms" >>"$OUT"
	done
}

if [ -x /share/berth-conformance ]; then
	conformance_test
else
	echo "INFO conformance: no berth-conformance in the share; not run" >>"$OUT"
fi
