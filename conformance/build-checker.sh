#!/usr/bin/env bash
# Build berth-check as a static glibc binary, for copying into any rootfs.
#
# usage: conformance/build-checker.sh [OUT]    (default: target/conformance/berth-check)
#
# A separate --target-dir keeps the static build from invalidating the
# workspace's normal one; naming the target explicitly makes RUSTFLAGS apply
# to the binary only, not to build scripts and proc macros.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/target/conformance/berth-check}
TD=$ROOT/target/static-checker
TRIPLE=x86_64-unknown-linux-gnu

RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
	--manifest-path "$ROOT/Cargo.toml" -p berth-conformance --bin berth-check \
	--target "$TRIPLE" --target-dir "$TD"
mkdir -p "$(dirname "$OUT")"
install -m 0755 "$TD/$TRIPLE/release/berth-check" "$OUT"
# Refuse a dynamic result: inside a busybox rootfs it could not even start.
if ! LC_ALL=C ldd "$OUT" 2>&1 | grep -qE 'not a dynamic executable|statically linked'; then
	echo "build-checker: $OUT is not static" >&2
	exit 1
fi
echo "$OUT"
