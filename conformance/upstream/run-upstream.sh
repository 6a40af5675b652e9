#!/usr/bin/env bash
# Run the OCI runtime-tools validation executables (built outside this repo,
# see README.md) against one runtime, one test at a time, and count the TAP
# results ourselves.
#
# usage: run-upstream.sh --suite DIR --runtime PATH [--out DIR] [--mask-unified]
#                        [--timeout SECS] [--tests "a b"]
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
KNOWN_FILE="$HERE/known-bugs.tsv"
TAP_AWK="$HERE/tap-count.awk"
LOCK_FILE=${RUN_UPSTREAM_LOCK:-/run/lock/run-upstream.lock}
UNIFIED=/sys/fs/cgroup/unified

die() { echo "run-upstream: $*" >&2; exit 2; }
usage() {
	sed -n '6,7p' "$SELF" | sed 's/^# *//' >&2
	exit 2
}

SUITE='' RUNTIME_BIN='' OUT='' MASK=0 TIMEOUT=60 TESTS=''
while [ $# -gt 0 ]; do
	case $1 in
	--suite) SUITE=${2:?}; shift 2 ;;
	--runtime) RUNTIME_BIN=${2:?}; shift 2 ;;
	--out) OUT=${2:?}; shift 2 ;;
	--mask-unified) MASK=1; shift ;;
	--timeout) TIMEOUT=${2:?}; shift 2 ;;
	--tests) TESTS=${2:?}; shift 2 ;;
	-h | --help) usage ;;
	*) echo "run-upstream: unknown argument: $1" >&2; usage ;;
	esac
done
if [ -z "$SUITE" ] || [ -z "$RUNTIME_BIN" ]; then usage; fi
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer: $TIMEOUT"
SUITE=$(realpath -e "$SUITE") || die "suite dir not found"
[ -x "$SUITE/runtimetest" ] || die "$SUITE/runtimetest missing: build the suite first (README.md)"
[ -f "$SUITE/rootfs-amd64.tar.gz" ] || die "$SUITE/rootfs-amd64.tar.gz missing"
RT=$(command -v "$RUNTIME_BIN") || die "runtime not found: $RUNTIME_BIN"
RT=$(realpath -e "$RT")
[ -x "$RT" ] || die "runtime not executable: $RT"
[ -n "$OUT" ] || OUT=/tmp/run-upstream-$(basename "$RT")-$(date +%Y%m%d-%H%M%S)
OUT=$(realpath -m "$OUT")

# ---- outer half of --mask-unified: lock, make the mask cgroup, re-exec ----
# The inner run is marked by RUN_UPSTREAM_MASK_CG and inherits the lock fd.
if [ -z "${RUN_UPSTREAM_MASK_CG:-}" ]; then
	mkdir -p "$(dirname "$LOCK_FILE")"
	exec 9>"$LOCK_FILE" || die "cannot open lock $LOCK_FILE"
	flock -n 9 || die "another suite run holds $LOCK_FILE; suites must not overlap"
	if [ "$MASK" = 1 ]; then
		[ -f "$UNIFIED/cgroup.controllers" ] || die "no cgroup2 mounted at $UNIFIED"
		cg="$UNIFIED/run-upstream-mask-$$"
		mkdir "$cg" || die "cannot create $cg"
		[ -z "$(cat "$cg/cgroup.controllers")" ] ||
			{ rmdir "$cg"; die "$cg still lists controllers; the mask would not help"; }
		# Also on Ctrl-C. Runtimes may have created test cgroups inside the mask.
		trap 'find "$cg" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
		      rmdir "$cg" || echo "run-upstream: could not remove $cg" >&2' EXIT
		RUN_UPSTREAM_MASK_CG=$cg unshare -m --propagation private -- \
			"$SELF" --suite "$SUITE" --runtime "$RT" --out "$OUT" \
			--timeout "$TIMEOUT" ${TESTS:+--tests "$TESTS"}
		exit $?
	fi
else
	mount --bind "$RUN_UPSTREAM_MASK_CG" "$UNIFIED" || die "cannot mask $UNIFIED"
	echo "run-upstream: $UNIFIED masked by $RUN_UPSTREAM_MASK_CG (private mount namespace)"
fi

# ---- setup ----
mkdir -p "$OUT/state" "$OUT/tmp" "$OUT/logs" "$OUT/bin" || die "cannot create $OUT"
rm -f "$OUT"/logs/* "$OUT/results.tsv" "$OUT/failures.txt" "$OUT/summary.txt" "$OUT/cleanup.log"
WRAP="$OUT/bin/runtime"
printf '#!/bin/bash\nexec %q --root %q "$@"\n' "$RT" "$OUT/state" >"$WRAP"
chmod +x "$WRAP"

declare -A KNOWN_PAT KNOWN_ANY
if [ -f "$KNOWN_FILE" ]; then
	while IFS=$'\t' read -r kt ktag kmatch _; do
		case $kt in '' | '#'*) continue ;; esac
		case $ktag in ENV | TEST) ;; *) die "$KNOWN_FILE: $kt: tag must be ENV or TEST, got '$ktag'" ;; esac
		[ -n "$kmatch" ] || die "$KNOWN_FILE: $kt: empty match column"
		[ "$kmatch" = '*' ] && KNOWN_ANY[$kt]=1
		KNOWN_PAT[$kt]+="$kmatch"$'\n'
	done <"$KNOWN_FILE"
fi

if [ -n "$TESTS" ]; then
	read -ra LIST <<<"$TESTS"
else
	LIST=()
	for f in "$SUITE"/validation/*/*.t; do LIST+=("$(basename "$f" .t)"); done
fi
for t in "${LIST[@]}"; do
	[ -x "$SUITE/validation/$t/$t.t" ] || die "no built test executable: validation/$t/$t.t"
done

# ---- cleanup between tests; prints a short summary such as "ctr:1,mnt:6" ----
# Where test cgroups can appear: every cgroup mount point, and our own cgroup
# path inside it when that is not the root.
CG_BASES=()
while read -r mp; do
	CG_BASES+=("$mp")
	while IFS=: read -r _ _ own; do
		[ "$own" != / ] && [ -d "$mp$own" ] && CG_BASES+=("$mp$own")
	done </proc/self/cgroup
done < <(awk '{ for (i = 7; $i != "-"; i++); if ($(i+1) ~ /^cgroup2?$/ && !seen[$5]++) print $5 }' \
	/proc/self/mountinfo)

cleanup() {
	local t=$1 n_ctr=0 n_mnt=0 n_dir=0 n_cg=0 id mp prev="" m out=()
	for id in "$OUT"/state/*/; do
		[ -d "$id" ] || continue
		id=$(basename "$id")
		"$WRAP" kill "$id" KILL >/dev/null 2>&1
		if "$WRAP" delete -f "$id" >>"$OUT/cleanup.log" 2>&1; then
			echo "$t: deleted container $id" >>"$OUT/cleanup.log"
		else
			echo "$t: FAILED to delete container $id" >>"$OUT/cleanup.log"
			rm -rf "$OUT/state/$id"
		fi
		n_ctr=$((n_ctr + 1))
	done
	# Mount points are octal-escaped in mountinfo; only unmount the top ones.
	while read -r mp; do
		[ -n "$prev" ] && [[ $mp == "$prev"/* ]] && continue
		prev=$mp
		umount -R -l "$mp" && echo "$t: unmounted $mp" >>"$OUT/cleanup.log"
		n_mnt=$((n_mnt + 1))
	done < <(awk '{ print $5 }' /proc/self/mountinfo |
		while read -r m; do printf '%b\n' "$m"; done |
		grep -F "$OUT/tmp/" | sort -u)
	for m in "$OUT"/tmp/* "$OUT"/tmp/.[!.]*; do
		[ -e "$m" ] || continue
		rm -rf --one-file-system "$m" && echo "$t: removed $m" >>"$OUT/cleanup.log"
		n_dir=$((n_dir + 1))
	done
	# The cgroup tests use fixed names: /cgrouptest at a hierarchy's root, and
	# testdir/cgrouptest/... relative to the caller's own cgroup (non-root in
	# the memory hierarchy here). Only those places are touched.
	while read -r m; do
		if rmdir "$m" 2>/dev/null; then
			echo "$t: removed cgroup $m" >>"$OUT/cleanup.log"
			n_cg=$((n_cg + 1))
		else
			echo "$t: cgroup $m not removable (busy?)" >>"$OUT/cleanup.log"
		fi
	done < <(for b in "${CG_BASES[@]}"; do
		for m in "$b/cgrouptest" "$b/testdir"; do
			[ -d "$m" ] && find "$m" -xdev -depth -type d 2>/dev/null
		done
	done)
	[ $n_ctr -gt 0 ] && out+=("ctr:$n_ctr")
	[ $n_mnt -gt 0 ] && out+=("mnt:$n_mnt")
	[ $n_dir -gt 0 ] && out+=("dir:$n_dir")
	[ $n_cg -gt 0 ] && out+=("cg:$n_cg")
	local IFS=,
	echo "${out[*]:--}"
}

# A failure is KNOWN only if every failing result ("N - description") of the
# test matches a glob of the known-bugs table; a harness error is covered only
# by a '*' row.
all_known() {
	local t=$1 harness=$2 fails=$3 line pat hit
	[ -n "${KNOWN_ANY[$t]:-}" ] && return 0
	[ -n "${KNOWN_PAT[$t]:-}" ] || return 1
	[ "$harness" = 0 ] || return 1
	while IFS= read -r line; do
		hit=0
		while IFS= read -r pat; do
			# shellcheck disable=SC2053 # the pattern is a glob on purpose
			[ -n "$pat" ] && [[ $line == $pat ]] && { hit=1; break; }
		done <<<"${KNOWN_PAT[$t]}"
		[ $hit = 1 ] || return 1
	done <"$fails"
	return 0
}

# ---- main loop ----
row() { printf '%-32s %5s %6s %5s %7s  %-6s %s\n' "$@"; }
{
	echo "suite:   $SUITE"
	echo "runtime: $RT ($("$RT" --version 2>/dev/null | head -1))"
	echo "out:     $OUT"
	row test ok not-ok skip seconds status cleaned
} | tee "$OUT/summary.txt"
printf 'test\tok\tnotok\tskip\ttodo\tseconds\trc\tstatus\tnote\tcleaned\n' >"$OUT/results.tsv"

T_OK=0 T_FAIL=0 T_SKIP=0 N_PASS=0 N_FAIL=0 N_KNOWN=0 K_FAIL=0 N_HARN=0
start_all=$(date +%s%N)
for t in "${LIST[@]}"; do
	tap="$OUT/logs/$t.tap" err="$OUT/logs/$t.err" fails="$OUT/logs/$t.fails"
	: >"$fails"
	t0=$(date +%s%N)
	(cd "$SUITE" && RUNTIME="$WRAP" TMPDIR="$OUT/tmp" \
		exec timeout -k 5 "$TIMEOUT" "./validation/$t/$t.t") >"$tap" 2>"$err" </dev/null 9>&-
	rc=$?
	t1=$(date +%s%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	read -r ok notok skip todo nres plans planned yamlerr < <(awk -v fails="$fails" -f "$TAP_AWK" "$tap")

	note=""
	if [ $rc = 124 ] || [ $rc = 137 ]; then note="timeout"
	elif [ $rc != 0 ] && [ "$notok" = 0 ]; then note="exit $rc"
	# Negative *_fail tests print nothing at all and exit 0 when they pass.
	elif [ "$plans" = 0 ] && [ -s "$tap" ]; then note="no plan"
	elif [ "$planned" != "$nres" ]; then note="plan $planned != $nres results"
	elif [ "$nres" = 0 ] && [ "$yamlerr" -gt 0 ]; then note="yaml error"
	fi
	harness=0
	if [ -n "$note" ] && [ "$notok" = 0 ]; then
		harness=1
		echo "harness: $note" >>"$fails"
	elif [ "$nres" = 0 ]; then
		ok=1 # a clean 1..0 or silent exit 0 is one passed check
	fi
	fail=$((notok + harness))

	if [ $fail = 0 ]; then status=PASS; N_PASS=$((N_PASS + 1))
	elif all_known "$t" "$harness" <(grep -v '^harness: ' "$fails"); then
		status=KNOWN; N_KNOWN=$((N_KNOWN + 1)); K_FAIL=$((K_FAIL + fail))
	else status=FAIL; N_FAIL=$((N_FAIL + 1))
	fi
	N_HARN=$((N_HARN + harness))
	skip=$((skip + todo))
	T_OK=$((T_OK + ok)) T_FAIL=$((T_FAIL + fail)) T_SKIP=$((T_SKIP + skip))

	cleaned=$(cleanup "$t")
	row "$t" "$ok" "$fail" "$skip" "$secs" "$status" "$cleaned${note:+  ($note)}" |
		tee -a "$OUT/summary.txt"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$ok" "$fail" "$skip" "$todo" \
		"$secs" "$rc" "$status" "$note" "$cleaned" >>"$OUT/results.tsv"
	if [ $fail -gt 0 ]; then
		{
			echo "== $t ($status)"
			awk '/^not ok/ && toupper($0) !~ / # *TODO/ { p = 1; c = 0; print; next }
			     p && /^[ \t]/ && c++ < 12 { print; next } { p = 0 }' "$tap"
			if [ $harness = 1 ]; then
				echo "  harness: $note; last TAP lines, then stderr:"
				if [ "$note" = "yaml error" ]; then
					grep -m1 -E '^[[:space:]]+"?error' "$tap"
				else
					tail -n 3 "$tap"
				fi | sed 's/^/    /'
				head -n 5 "$err" | sed 's/^/    /'
			fi
		} >>"$OUT/failures.txt"
	fi
done
wall=$(awk -v a="$start_all" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
{
	echo "totals: tests ${#LIST[@]}: $N_PASS PASS, $N_FAIL FAIL, $N_KNOWN KNOWN;" \
		"assertions: $T_OK ok, $T_FAIL not-ok ($K_FAIL known), $T_SKIP skip;" \
		"harness errors $N_HARN; wall ${wall}s"
	echo "$T_OK passed, $T_FAIL failed"
} | tee -a "$OUT/summary.txt"
[ $N_FAIL = 0 ]
