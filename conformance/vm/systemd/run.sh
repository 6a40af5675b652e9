#!/usr/bin/env bash
# The systemd test host: a Debian 12 guest with systemd as PID 1 on pure
# cgroup v2, booted under QEMU, running guest-test.sh (next to this file) as a
# service. It checks berth --systemd-cgroup against runc and crun side by
# side, alone and under podman, docker and containerd at their systemd cgroup
# settings (guest-engines.sh), and prints one table row per check.
#
# usage: conformance/vm/systemd/run.sh [RUNTIME]
#   RUNTIME   default: the workspace's target/debug/berth (built here, with
#             the shim and the D-Bus helper berth-systemd next to it;
#             BERTH_SHIM and BERTH_SYSTEMD_HELPER name other binaries)
# Environment:
#   BERTH_VM_CACHE   where the built image is kept (default /var/cache/berth-vm),
#                    keyed by a hash of the image recipe below; delete to rebuild.
#   VM_TIMEOUT       seconds for the whole guest run (default 900).
#   RT_TIMEOUT       seconds for each runtime call in the guest (default 60).
#   BUILD_ONLY=1     build (or find) the image and stop.
#   GUEST_PARTS=core     the runtime and podman checks, restore and the
#                        conformance scenarios (one CI stage);
#   GUEST_PARTS=engines  docker, containerd (both shims) and the CRI pod test
#                        (another stage);
#   GUEST_PARTS=rootless the rootless checks (rootless-guest.sh: an ordinary
#                        user's systemd instance, rootless podman; a third stage);
#                        all (the default) is the three in one boot;
#   GUEST_PARTS=shim     only containerd through berth's own shim;
#   GUEST_PARTS=cri      only the CRI pod test (conformance/cri) in a kubelet-style
#                        slice with SystemdCgroup = true.
#   GUEST_PARTS=restore  only checkpoint/restore with the systemd driver;
#   GUEST_PARTS=conf     only the conformance suite's cgroup scenarios with
#                        --systemd-cgroup (berth, runc, crun).
#   GUEST_CGROUP=hybrid  boot systemd's hybrid layout (v1 controllers, cgroup2 at
#                        /sys/fs/cgroup/unified) and run only the v1 checks.
#   GUEST_CGROUP=legacy  boot systemd's pure v1 layout (no cgroup2 at all:
#                        systemd tracks its units in name=systemd) and run
#                        only the v1 checks.
#   BERTH_CRI_TEST       a berth-cri-test binary (default: built here).
# Needs debootstrap, qemu-system-x86 and e2fsprogs (installed when missing).
# Measured on a 2-core host under TCG (shared with other work): image build
# about 170 s (once per recipe), boot to the test 17-35 s, the runtime and
# podman checks 50-80 s, docker and containerd 1.5-4 min; 4-7 min in all.
# The guest takes both host cores: never run two guests at once.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
RT=${1:-$ROOT/target/debug/berth}
CACHE=${BERTH_VM_CACHE:-/var/cache/berth-vm}
ts() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(ts)" 'BEGIN{printf "%.1f", b-a}'; }
say() { echo "systemd-vm: $*" >&2; }

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# --- the image: built once per recipe (this function's text is the key) ---
# dbus-user-session gives a user's systemd instance its bus ($XDG_RUNTIME_DIR/bus),
# uidmap the newuidmap/newgidmap rootless podman needs (rootless-guest.sh).
build_image() {
	local dir=$1 r=$1/root mirror
	mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
	rm -rf "$r"
	# podman needs containernetworking-plugins named, or debootstrap cannot resolve it.
	timeout 1200 debootstrap --variant=minbase \
		--include=systemd-sysv,dbus,dbus-user-session,uidmap,udev,kmod,procps,iproute2,linux-image-amd64,initramfs-tools,runc,crun,podman,containernetworking-plugins,docker.io,containerd,busybox-static,criu \
		bookworm "$r" "$mirror" >"$dir/debootstrap.log" 2>&1 ||
		{ tail -20 "$dir/debootstrap.log" >&2; return 1; }
	echo guest >"$r/etc/hostname"
	printf '%s\n' '/dev/vda / ext4 rw,noatime 0 1' \
		'share /share 9p trans=virtio,version=9p2000.L,msize=262144,cache=mmap,nofail 0 0' >"$r/etc/fstab"
	mkdir -p "$r/share"
	chroot "$r" passwd -d root >/dev/null
	chroot "$r" systemctl mask serial-getty@ttyS0.service getty@tty1.service podman-restart.service \
		apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true
	chroot "$r" systemctl set-default multi-user.target >/dev/null 2>&1
	# Started by the test when it gets to them, with its own configuration.
	chroot "$r" systemctl disable docker.service docker.socket containerd.service >/dev/null 2>&1 || true
	# The test runs from the share, as a service after boot. Type=simple: a
	# oneshot would keep boot from finishing (is-system-running stays "starting").
	cat >"$r/etc/systemd/system/berth-test.service" <<'UNIT'
[Unit]
Description=berth systemd driver checks
After=multi-user.target share.mount
RequiresMountsFor=/share
[Service]
Type=simple
ExecStart=/bin/bash /share/guest-test.sh
ExecStopPost=/bin/systemctl --no-block poweroff
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
UNIT
	chroot "$r" systemctl enable berth-test.service >/dev/null 2>&1
	mkdir -p "$dir/kernel"
	cp "$r"/boot/vmlinuz-* "$r"/boot/initrd.img-* "$dir/kernel/"
	rm -f "$dir/img.raw"
	truncate -s 3G "$dir/img.raw"
	mkfs.ext4 -q -F -d "$r" "$dir/img.raw"
	rm -rf "$r"
}

key=$(declare -f build_image | sha256sum | cut -c1-16)
IMG=$CACHE/systemd-$key
if [ ! -s "$IMG/img.raw" ]; then
	mkdir -p "$CACHE"
	rm -rf "$IMG.tmp"
	mkdir -p "$IMG.tmp"
	t0=$(ts)
	say "building the guest image (debootstrap, once per recipe) in $IMG"
	build_image "$IMG.tmp"
	rm -rf "$IMG"
	mv "$IMG.tmp" "$IMG"
	# images of older recipes are not used again
	find "$CACHE" -maxdepth 1 -name 'systemd-*' ! -path "$IMG" -exec rm -rf {} +
	say "image built in $(since "$t0") s"
fi
[ "${BUILD_ONLY:-0}" = 1 ] && exit 0

# GUEST_CGROUP=hybrid or legacy boots systemd's hybrid or pure v1 layout and
# runs the v1 checks there (guest-v1.sh).
legacy=0
case "${GUEST_CGROUP:-v2}" in
v2) unified=1 PARTS=${GUEST_PARTS:-all} ;;
hybrid) unified=0 PARTS=v1 ;;
legacy) unified=0 legacy=1 PARTS=v1 ;;
*) say "GUEST_CGROUP: v2, hybrid or legacy, not ${GUEST_CGROUP}"; exit 2 ;;
esac
cri=0
case "$PARTS" in all | engines | cri) cri=1 ;; esac
if [ "$RT" = "$ROOT/target/debug/berth" ]; then
	cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p berth -p containerd-shim-berth
fi
if [ "$cri" = 1 ]; then
	# the CRI pod test's client (k8s-cri generates its bindings with protoc)
	# and its images, built offline here
	for p in protoc:protobuf-compiler jq:jq; do
		command -v "${p%%:*}" >/dev/null ||
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${p#*:}" >&2
	done
	[ -e /bin/busybox ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >&2
	CRI_TEST=${BERTH_CRI_TEST:-$ROOT/target/debug/berth-cri-test}
	[ -n "${BERTH_CRI_TEST:-}" ] || cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p berth-cri-test
fi
conf=0
case "$PARTS" in all | core | conf) conf=1 ;; esac
if [ "$conf" = 1 ]; then
	# the conformance driver and its static checker
	cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p berth-conformance
	"$ROOT/conformance/build-checker.sh" >/dev/null
fi
SHARE=$(mktemp -d /tmp/berth-sd.XXXXXX)
trap 'rm -rf "$SHARE"' EXIT
cp "$RT" "$SHARE/berth"
# The systemd driver's D-Bus helper, next to berth and the shim (where they look).
HELPER=${BERTH_SYSTEMD_HELPER:-$(dirname "$RT")/berth-systemd}
[ -x "$HELPER" ] || { say "no $HELPER: berth's systemd driver needs its D-Bus helper beside it"; exit 1; }
cp "$HELPER" "$SHARE/berth-systemd"
cp "$HERE"/guest-*.sh "$HERE/rootless-guest.sh" "$SHARE/"
# berth's shim, for containerd's io.containerd.berth.v2 runtime
SHIM=${BERTH_SHIM:-$(dirname "$RT")/containerd-shim-berth-v2}
[ -x "$SHIM" ] && cp "$SHIM" "$SHARE/"
echo "${RT_TIMEOUT:-60}" >"$SHARE/rt-timeout"
echo "$PARTS" >"$SHARE/parts"
if [ "$conf" = 1 ]; then
	cp "$ROOT/target/debug/berth-conformance" "$ROOT/target/conformance/berth-check" "$SHARE/"
fi
if [ "$cri" = 1 ]; then
	cp "$CRI_TEST" "$ROOT/conformance/cri/berth-cri-eth0" "$SHARE/"
	mkdir -p "$SHARE/cri-img"
	OUT=$SHARE/img "$ROOT/conformance/engines/make-busybox-image.sh" >/dev/null
	mv "$SHARE/img/busybox-oci.tar" "$SHARE/cri-img/busybox.tar"
	OUT=$SHARE/img REF=localhost/pause:latest CMD_JSON='["sleep","2147483647"]' \
		"$ROOT/conformance/engines/make-busybox-image.sh" >/dev/null
	mv "$SHARE/img/busybox-oci.tar" "$SHARE/cri-img/pause.tar"
	rm -rf "$SHARE/img"
fi

# A TCG guest has been seen to wedge now and then with no output: a boot
# that did not finish (no DONE) is tried once more; a finished one is final.
for attempt in 1 2; do
	rm -f "$SHARE/results" "$SHARE/console.log"
	t0=$(ts)
	rc=0
	# -snapshot: the cached image is never written; each boot starts clean.
	timeout "${VM_TIMEOUT:-900}" qemu-system-x86_64 -accel tcg -m 2048 -smp 2 -snapshot \
		-kernel "$(ls "$IMG"/kernel/vmlinuz-* | head -1)" \
		-initrd "$(ls "$IMG"/kernel/initrd.img-* | head -1)" \
		-append "root=/dev/vda rw console=ttyS0 quiet systemd.unified_cgroup_hierarchy=$unified systemd.legacy_systemd_cgroup_controller=$legacy" \
		-drive file="$IMG/img.raw",format=raw,if=virtio \
		-virtfs "local,path=$SHARE,mount_tag=share,security_model=passthrough,id=share" \
		-device virtio-rng-pci -nic none -display none -serial "file:$SHARE/console.log" \
		-monitor none -no-reboot </dev/null || rc=$?
	say "guest run $attempt took $(since "$t0") s (qemu exit $rc)"
	if grep -aqs '^DONE' "$SHARE/results"; then break; fi
	say "the guest did not finish; console tail:"
	tail -20 "$SHARE/console.log" >&2 || true
done
if [ ! -s "$SHARE/results" ]; then
	say "no results from the guest"
	echo "0 passed, 1 failed"
	exit 1
fi
grep -a '^TIME \|^INFO ' "$SHARE/results" | sed 's/^[A-Z]* /systemd-vm: /' >&2 || true
# One row per check, a column per runtime.
awk '$1=="RESULT"{k=$2; r=$3; v[k,r]=$4; if(!(k in seen)){seen[k]=1; order[n++]=k}}
	END{printf "%-34s %-6s %-6s %-6s\n","check","berth","runc","crun";
	for(i=0;i<n;i++){k=order[i]; printf "%-34s %-6s %-6s %-6s\n",k,
	(v[k,"berth"]?v[k,"berth"]:"-"),(v[k,"runc"]?v[k,"runc"]:"-"),(v[k,"crun"]?v[k,"crun"]:"-")}}' \
	"$SHARE/results"
grep -a '^FAIL ' "$SHARE/results" >&2 || true
# The stage fails on a berth failure, or when the guest did not finish;
# runc's and crun's rows are for comparison.
# berth's rows are the stage's checks.
passed=$(grep -ac '^RESULT [^ ]* berth PASS' "$SHARE/results" || true)
failed=$(grep -ac '^RESULT [^ ]* berth FAIL' "$SHARE/results" || true)
grep -aq '^DONE' "$SHARE/results" || { say "the guest did not finish"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
