#!/usr/bin/env bash
# Runs every berth test. Needs root (tests start real containers) and
# Debian's busybox-static (/bin/busybox) and libseccomp-dev; .ci/run installs them.
set -euo pipefail
cd "$(dirname "$0")"

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== unit and integration tests (real containers)"
cargo test --workspace

echo "== in-house OCI conformance suite (checks from inside the container)"
conformance/run-ci.sh

echo "== containerd shim end to end (private containerd 1.6, containerd installed when missing)"
shim/tests/e2e.sh

echo "== engines: podman, dockerd and containerd's runc-v2 shim running berth (installed when missing)"
conformance/engines/run-all.sh

echo "== Kubernetes CRI: a pod of two containers through containerd's CRI and our shim"
WANT_SHIMS=1 REQUIRE_STATS=1 conformance/cri/run.sh

echo "== the suite's cgroup scenarios on pure cgroup v2 (QEMU guest)"
conformance/vm/run-v2.sh

echo "== the systemd cgroup driver on a systemd guest (QEMU, Debian 12, pure cgroup v2), beside runc and crun"
conformance/vm/systemd/run.sh

echo "== the shim built without in-process berth (exec per command): lints and end to end"
cargo clippy -p containerd-shim-berth --no-default-features --all-targets -- -D warnings
SHIM_FEATURES=--no-default-features shim/tests/e2e.sh
