#!/usr/bin/env bash
# Runs every berth test stage, each one even when an earlier one failed, then
# prints a table (stage, passed, failed, skipped, seconds) and the closing
# line "N passed, N failed, N skipped" over all checks. Exit status 1 if any
# check failed, or a stage failed or checked nothing.
#
# Needs root (tests start real containers), Debian's busybox-static
# (/bin/busybox) and libseccomp-dev; .ci/run installs them. The engine, CRI
# and VM stages install what they miss (see README.md, "What the tests do").
#
# Env: STAGES="cargo-test conformance"   run only these stages (names as in the table)
#      BERTH_TEST_LOGS=DIR              keep each stage's output there
#                                       (default: a new /tmp/berth-tests.XXXXXX)
set -uo pipefail
cd "$(dirname "$0")"

LOGS=${BERTH_TEST_LOGS:-$(mktemp -d /tmp/berth-tests.XXXXXX)}
mkdir -p "$LOGS"
# Tests that cannot check anything on this host write "SKIP <test>: <why>"
# here (runtime/tests/skip/mod.rs); cargo counts them as passed.
export BERTH_SKIP_LOG=$LOGS/cargo-skips
: >"$BERTH_SKIP_LOG"

rows=()
total_p=0 total_f=0 total_s=0 bad=0

wanted() { [ -z "${STAGES:-}" ] || [[ " $STAGES " == *" $1 "* ]]; }

# stage NAME KIND CMD...
#   KIND lint:  one check, passed when CMD exits 0
#        cargo: the sum of cargo's "test result:" lines, counted skips apart
#        suite: the sum of the "N passed, N failed[, N skipped]" lines
# Whatever the counts say, a non-zero exit is at least one failure, and a
# stage that checked nothing fails.
stage() {
	local name=$1 kind=$2
	shift 2
	wanted "$name" || return 0
	echo "== $name: $*"
	local log=$LOGS/$name.log t0 rc p=0 f=0 s=0 note=""
	t0=$(date +%s)
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	local secs=$(($(date +%s) - t0))
	case $kind in
	lint)
		if [ "$rc" = 0 ]; then p=1; else f=1; fi
		;;
	cargo)
		read -r p f s < <(grep -aE '^test result: ' "$log" |
			sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/' |
			awk '{p+=$1; f+=$2; s+=$3} END {print p+0, f+0, s+0}')
		local skipped
		skipped=$(wc -l <"$BERTH_SKIP_LOG")
		p=$((p - skipped)) s=$((s + skipped))
		;;
	suite)
		read -r p f s < <(tr -d '\r' <"$log" |
			grep -aE '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' |
			awk '{p+=$1; f+=$3; s+=$5} END {print p+0, f+0, s+0}')
		;;
	esac
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1 note="exit status $rc"
	fi
	if [ "$p" = 0 ] && [ "$f" = 0 ]; then
		f=1 note="checked nothing"
	fi
	[ "$f" = 0 ] || bad=1
	total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
	rows+=("$(printf '%-22s %7s %7s %7s %7s  %s' "$name" "$p" "$f" "$s" "$secs" "$note")")
}

stage format lint cargo fmt --all -- --check
stage clippy lint cargo clippy --workspace --all-targets -- -D warnings
# Unit and integration tests (real containers); every test binary runs.
stage cargo-test cargo cargo test --workspace --no-fail-fast
# berth killed at every step (a test-only build), damaged state, full disk,
# EMFILE, races: nothing left after delete -f. Counts its own cases.
stage faults suite cargo test -p berth --features fault-injection --test faults -- --nocapture
# A short run of each cargo-fuzz target (nightly; cargo-fuzz installed when missing).
stage fuzz suite fuzz/run-short.sh 20
# The in-house OCI conformance suite (checks from inside the container).
stage conformance suite conformance/run-ci.sh
# The same suite and the sealing, seccomp and lifecycle tests against the
# musl release build (the target is installed with rustup when missing).
stage musl suite conformance/musl.sh
# Rootless: an ordinary user runs berth directly and under rootless podman
# (runc and crun side by side; only berth's rows count).
stage rootless suite conformance/rootless/run.sh
stage rootless-podman suite conformance/rootless/podman.sh
# The containerd shim end to end (private containerd 1.6).
stage shim-e2e suite shim/tests/e2e.sh
# podman, dockerd and containerd's runc-v2 shim running berth.
stage engines suite conformance/engines/run-all.sh
# Kubernetes CRI: a pod of two containers through containerd's CRI and our shim.
stage cri suite env WANT_SHIMS=1 REQUIRE_STATS=1 conformance/cri/run.sh
# The suite's cgroup scenarios on pure cgroup v2 (QEMU guest).
stage cgroup-v2-vm suite conformance/vm/run-v2.sh
# The CVE regression tests (runtime/tests/cve.rs) on that guest's kernel
# (Debian 12's 6.1), which decides whether `#!/proc/self/exe` gets through.
stage cve-v2-vm suite conformance/vm/cve-v2.sh
# The systemd cgroup driver on a systemd guest (QEMU, Debian 12, pure cgroup
# v2; the image is built once per recipe): the runtime checks, restore, the
# suite's cgroup scenarios, the engines at their systemd settings (containerd
# through both shims) and the CRI pod in a kubelet-style slice, and rootless
# containers through a user's own systemd instance, beside runc and crun.
# Then the same image booted with systemd's hybrid layout (v1 controllers
# beside cgroup2), and with its pure v1 layout.
stage systemd-vm suite env GUEST_PARTS=core conformance/vm/systemd/run.sh
stage systemd-vm-engines suite env GUEST_PARTS=engines conformance/vm/systemd/run.sh
stage systemd-vm-rootless suite env GUEST_PARTS=rootless conformance/vm/systemd/run.sh
stage systemd-vm-hybrid suite env GUEST_CGROUP=hybrid conformance/vm/systemd/run.sh
stage systemd-vm-legacy suite env GUEST_CGROUP=legacy conformance/vm/systemd/run.sh
# The shim's two other ways to run berth: the default build exec'ing the
# berth binary for every command, and the build with berth's code linked in
# (its helper a fork of the shim).
stage shim-exec-e2e suite env BERTH_SHIM_EXEC=1 shim/tests/e2e.sh
stage shim-inproc-clippy lint cargo clippy -p containerd-shim-berth --features in-process --all-targets -- -D warnings
stage shim-inproc-e2e suite env SHIM_FEATURES=--features=in-process shim/tests/e2e.sh

if [ -s "$BERTH_SKIP_LOG" ]; then
	echo "== skipped cargo tests"
	cat "$BERTH_SKIP_LOG"
fi
echo "== summary (logs in $LOGS)"
printf '%-22s %7s %7s %7s %7s  %s\n' stage passed failed skipped secs note
printf '%s\n' "${rows[@]}"
if [ "${#rows[@]}" = 0 ]; then
	echo "no stage matches STAGES=${STAGES:-}"
	bad=1
fi
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$bad" = 0 ]
