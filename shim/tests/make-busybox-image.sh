#!/bin/bash
# Build a busybox container image fully offline from the Debian busybox-static package.
# Outputs (under $OUT, default /tmp/berth-shim-e2e/img):
#   rootfs/             unpacked root filesystem (busybox + applet symlinks + /etc/passwd ...)
#   rootfs.tar          flat rootfs tarball  (for `podman import`, `docker import`)
#   oci/                OCI image layout     (for `skopeo`, `umoci`, `podman load`)
#   busybox-oci.tar     tar of the OCI layout (for `ctr images import`, `podman load`)
# Image reference inside the layout: $REF (default localhost/busybox:latest)
# Pause-like sandbox image for CRI:
#   OUT=/tmp/enginelab/pause REF=localhost/pause:latest CMD_JSON='["sleep","2147483647"]' make-busybox-image.sh
# Needs: busybox-static, tar, sha256sum, jq.  Deterministic (mtime=0, sorted, uid/gid 0).
set -euo pipefail
OUT=${OUT:-/tmp/berth-shim-e2e/img}
REF=${REF:-localhost/busybox:latest}
BB=${BB:-/bin/busybox}
CMD_JSON=${CMD_JSON:-'["sh"]'}   # image default command, e.g. '["sleep","2147483647"]' for a pause image

file -L "$BB" 2>/dev/null | grep -q 'statically linked' || { echo "need static busybox (apt-get install busybox-static)" >&2; exit 1; }

rm -rf "$OUT"; mkdir -p "$OUT"
R=$OUT/rootfs
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,var/tmp,run,home}
chmod 1777 "$R/tmp" "$R/var/tmp"
install -m 0755 "$BB" "$R/bin/busybox"
# one symlink per applet, at the path busybox itself reports (bin/sh, usr/bin/env, ...)
"$BB" --list-full | while read -r p; do
  [ "$p" = bin/busybox ] && continue
  [ -e "$R/$p" ] || ln -s /bin/busybox "$R/$p"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
: > "$R/etc/hosts"; : > "$R/etc/resolv.conf"; echo busybox > "$R/etc/hostname"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$R" -cf "$OUT/rootfs.tar" .

# ---- OCI image layout, written by hand (uncompressed layer) ----
L=$OUT/oci; B=$L/blobs/sha256; mkdir -p "$B"
put() { # file mediatype -> prints descriptor json
  local d; d=$(sha256sum "$1" | cut -d' ' -f1); local s; s=$(stat -c %s "$1")
  mv "$1" "$B/$d"; jq -cn --arg m "$2" --arg d "sha256:$d" --argjson s "$s" '{mediaType:$m,digest:$d,size:$s}'
}
cp "$OUT/rootfs.tar" "$OUT/layer.tmp"
DIFFID=sha256:$(sha256sum "$OUT/layer.tmp" | cut -d' ' -f1)
LAYER=$(put "$OUT/layer.tmp" application/vnd.oci.image.layer.v1.tar)
jq -cn --arg diff "$DIFFID" --argjson cmd "$CMD_JSON" '{
  created:"1970-01-01T00:00:00Z", architecture:"amd64", os:"linux",
  config:{Env:["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],Cmd:$cmd,WorkingDir:"/"},
  rootfs:{type:"layers",diff_ids:[$diff]},
  history:[{created:"1970-01-01T00:00:00Z",created_by:"make-busybox-image.sh"}]}' > "$OUT/config.tmp"
CONFIG=$(put "$OUT/config.tmp" application/vnd.oci.image.config.v1+json)
jq -cn --argjson c "$CONFIG" --argjson l "$LAYER" \
  '{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",config:$c,layers:[$l]}' > "$OUT/manifest.tmp"
MANIFEST=$(put "$OUT/manifest.tmp" application/vnd.oci.image.manifest.v1+json)
# io.containerd.image.name -> ctr import uses it verbatim; ref.name "latest" -> skopeo/podman oci:DIR:latest
jq -cn --argjson m "$MANIFEST" --arg ref "$REF" \
  '{schemaVersion:2,manifests:[$m + {platform:{architecture:"amd64",os:"linux"},
     annotations:{"io.containerd.image.name":$ref,"org.opencontainers.image.ref.name":"latest"}}]}' > "$L/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$L/oci-layout"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$L" -cf "$OUT/busybox-oci.tar" oci-layout index.json blobs
echo "image: $REF"
echo "  rootfs tar : $OUT/rootfs.tar ($(du -h "$OUT/rootfs.tar" | cut -f1))"
echo "  OCI layout : $OUT/oci  (manifest $(echo "$MANIFEST" | jq -r .digest))"
echo "  OCI archive: $OUT/busybox-oci.tar"
