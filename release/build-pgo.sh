#!/usr/bin/env bash
# Build the berth binary with profile-guided code layout, for musl.
#
# usage: sudo release/build-pgo.sh [CARGO BUILD ARGS...]
#        e.g. release/build-pgo.sh --no-default-features --features cli
# env:   BERTH_TARGET=TRIPLE   the final build's target (default
#        x86_64-unknown-linux-musl; the host's, e.g. x86_64-unknown-linux-gnu,
#        for a glibc build)
#
# Why musl: glibc probes the CPU at every start, 0.7 ms of every command on
# a VM, where each `cpuid` traps (runtime/build/musl.rs). The target's
# standard library is installed with rustup when missing.
#
# Why: most of `berth run`'s resident memory is its own text, and the kernel
# maps 64 kB around every page fault (fault-around), so code a command runs
# that lies spread over the binary becomes resident almost whole. Built
# with a profile of the commands runc's callers use, LLVM moves every
# function the profile never reached into .text.unlikely, which the linker
# places apart from the rest, and the code a command runs ends up close
# together.
#
# Steps: an instrumented build, a workload (spec, create, start, state,
# exec, kill, delete, run, run -d, list, ps, pause/resume) on a busybox
# bundle, llvm-profdata merge, and the final build. Needs root (the workload
# runs containers) and llvm-profdata of rustc's own LLVM (`rustup component
# add llvm-tools`; a distribution's older llvm-profdata writes a format this
# rustc may not read). Prints the path of the binary built. The profile
# (target/pgo/berth.profdata) is made anew each time, never kept in git: it
# must match the source it was taken from.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$HERE"
die() { echo "build-pgo: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root: the workload runs containers"

HOST=$(rustc -vV | sed -n 's/^host: //p')
LLVM=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
TARGET=${BERTH_TARGET:-x86_64-unknown-linux-musl}
PROFDATA=$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-profdata
if [ ! -x "$PROFDATA" ]; then
	rustup component add llvm-tools >&2 || die "no llvm-profdata: rustup component add llvm-tools failed"
fi
"$PROFDATA" --version | grep -q "LLVM version $LLVM\." ||
	die "$PROFDATA is not LLVM $LLVM, rustc's"
if ! rustup target list --installed | grep -qx "$TARGET"; then
	rustup target add "$TARGET" >&2 || die "no standard library for $TARGET: rustup target add $TARGET failed"
fi

# A target directory per build (their flags differ, so each would rebuild
# everything in the other's); --target keeps RUSTFLAGS off build scripts
# and proc macros, which the workload never runs.
GEN=$HERE/target/pgo-gen
USE=$HERE/target/pgo
RAW=$GEN/raw
rm -rf "$RAW"
mkdir -p "$RAW" "$USE"

# Instrumented. Counter relocation lets the runtime keep the counters in
# the profile file itself (continuous mode, %c below): berth's init and
# exec'd processes are clones of berth that end in execve, without exit
# handlers, and their counts would otherwise be lost. Continuous mode
# writes no value profiles (indirect call targets), so none are taken:
# llvm-profdata would call every such file truncated.
# For the same target as the final build: the profile matches functions by
# their code, and std's differ between C libraries. On glibc it is linked
# dynamically: the profile data keeps every function, unused ones too, and
# some of those call symbol versions glibc's static archive lacks. The
# instrumented layout does not matter, only the counts.
BERTH_LINK=dynamic RUSTFLAGS="-Cprofile-generate=$RAW -Cllvm-args=-runtime-counter-relocation -Cllvm-args=-disable-vp" \
	cargo build --release -p berth --bin berth --target "$TARGET" --target-dir "$GEN" "$@" >&2
BIN=$GEN/$TARGET/release/berth

W=$(mktemp -d /tmp/berth-pgo.XXXXXX)
cleanup() {
	for id in $("$BIN" --root "$W/state" list -q 2>/dev/null); do
		"$BIN" --root "$W/state" delete -f "$id" || true
	done
	rm -rf "$W"
}
trap cleanup EXIT
LLVM_PROFILE_FILE="$RAW/berth-%p%c.profraw" bash "$HERE/release/pgo-workload.sh" \
	"$BIN" "$W" >&2

"$PROFDATA" merge -o "$USE/berth.profdata" "$RAW"/*.profraw
rm -rf "$RAW"

# rust-lld merges .text.unlikely.* into .text in input order unless told
# to keep the prefixes (GNU ld's default script groups them anyway).
# -disable-vp as above, or LLVM looks for the value profiles in vain.
RUSTFLAGS="-Cprofile-use=$USE/berth.profdata -Cllvm-args=-disable-vp -Clink-arg=-Wl,-z,keep-text-section-prefix" \
	cargo build --release -p berth --bin berth --target "$TARGET" --target-dir "$USE" "$@" >&2
echo "$USE/$TARGET/release/berth"
