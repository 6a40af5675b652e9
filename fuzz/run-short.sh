#!/usr/bin/env bash
# A short run of every fuzz target (CI): SECONDS each (default 20), starting
# from the corpora here. Needs the nightly toolchain and cargo-fuzz; both are
# installed when missing. Long runs: cargo +nightly fuzz run -O <target>.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build -O
passed=0 failed=0 failing=
for t in $(cargo +nightly fuzz list); do
    echo "-- fuzz $t for ${secs}s"
    # The run writes new inputs to a scratch copy, so the checkout stays clean.
    scratch=$(mktemp -d)
    cp -r "corpus/$t/." "$scratch/"
    if ! cargo +nightly fuzz run -O "$t" "$scratch" -- -max_total_time="$secs" -rss_limit_mb=2048 \
        >"$scratch.log" 2>&1; then
        tail -40 "$scratch.log"
        failed=$((failed + 1))
        failing="$failing $t"
        continue
    fi
    grep -E 'DONE' "$scratch.log" || true
    passed=$((passed + 1))
    rm -rf "$scratch" "$scratch.log"
done
[ -z "$failing" ] || echo "failed:$failing (their inputs are in fuzz/artifacts)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
