#!/usr/bin/env bash
# The musl build of berth, the one published figures are of (release/
# build-pgo.sh; runtime/build/musl.rs says why): build it for
# x86_64-unknown-linux-musl, run the in-house conformance suite against it,
# then the integration tests that exercise what differs from the glibc
# build (the entry point's sealing, seccomp through the glibc libseccomp
# archive, the whole lifecycle) with BERTH_TEST_BINARY pointing at it.
# Installs the target's standard library with rustup when missing.
# Prints "N passed, N failed, N skipped" lines; exits non-zero on a failure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=x86_64-unknown-linux-musl

[ "$(id -u)" = 0 ] || { echo "musl: the suite creates containers and needs root" >&2; exit 2; }
if ! rustup target list --installed | grep -qx "$TARGET"; then
	rustup target add "$TARGET"
fi
cargo build --quiet --release -p berth --bin berth --target "$TARGET"
BIN=$ROOT/target/$TARGET/release/berth
# A static PIE: position-independent (ELF type DYN) and no interpreter.
# readelf comes with binutils, which the C toolchain the build needs brings.
if ! readelf -h "$BIN" | grep -q 'Type: *DYN' || readelf -l "$BIN" | grep -q 'program interpreter'; then
	echo "musl: $BIN is not a static PIE" >&2
	exit 1
fi

rc=0
BERTH_RUNTIME=$BIN conformance/run-ci.sh || rc=1

log=$(mktemp /tmp/berth-musl-tests.XXXXXX)
skips=$(mktemp /tmp/berth-musl-skips.XXXXXX)
trap 'rm -f "$log" "$skips"' EXIT
# A test that skips (runtime/tests/skip) says why in this file, and cargo
# counts it as passed: it is counted as skipped here.
BERTH_SKIP_LOG=$skips BERTH_TEST_BINARY=$BIN cargo test -p berth --test cve --test lifecycle \
	--test seccomp --test exec --test bad_input 2>&1 | tee "$log" || rc=1
grep -aE '^test result: ' "$log" |
	sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/' |
	awk -v skipped="$(wc -l <"$skips")" '{p+=$1; f+=$2; s+=$3}
		END {printf "%d passed, %d failed, %d skipped\n", p - skipped, f, s + skipped}'
exit $rc
