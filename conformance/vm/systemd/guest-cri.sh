# Sourced by guest-test.sh (uses its res, $OUT): the CRI pod test
# (conformance/cri's berth-cri-test) against a private containerd 1.6 with
# its CRI plugin, each pod in a kubelet-style slice
# (kubepods-besteffort-pod<uid>.slice, so containerd passes the cgroupsPath
# `<slice>:cri-containerd:<id>`) and every handler at SystemdCgroup = true:
# berth through its own shim, runc and crun through the runc-v2 shim.
# Each of the test's checks becomes a row "cri-<check>".
# Needs in /share: berth-cri-test, berth-cri-eth0, cri-img/{busybox,pause}.tar.

cri_rows() { # cri_rows RT < berth-cri-test output
	local line name
	while IFS= read -r line; do
		case "$line" in
		"ok   "*) name=${line#ok   } st=PASS why= ;;
		"FAIL "*) name=${line#FAIL } st=FAIL why=${name#* -- } name=${name%% -- *} ;;
		"note "*) echo "INFO cri $1: ${line#note }" >>"$OUT"; continue ;;
		*) continue ;;
		esac
		# names as in the CRI test, made one word: sandbox/container ids are not in them
		name=$(echo "$name" | tr 'A-Z' 'a-z' | sed 's/([^)]*)//g; s/[^a-z0-9.]\{1,\}/-/g; s/^-//; s/-$//')
		res "cri-$name" "$1" "$st" "$why"
	done
}

cri_test() {
	local W=/tmp/cri S rt t0 uid rc
	S=$W/run/containerd.sock
	mkdir -p $W/{root,run,opt,cni,cni-bin,berth,runc,crun,logs}
	ln -sf /usr/lib/cni/loopback $W/cni-bin/loopback
	cp /share/berth-cri-eth0 $W/cni-bin/
	chmod +x $W/cni-bin/berth-cri-eth0
	cat >$W/cni/10-cri.conflist <<'CONF'
{ "cniVersion": "1.0.0", "name": "berth-cri",
  "plugins": [ { "type": "loopback" }, { "type": "berth-cri-eth0" } ] }
CONF
	# berth's shim reads its options from a file (CRI hands it only ConfigPath)
	printf 'SystemdCgroup = true\nRoot = "%s"\n' "$W/berth" >$W/berth-shim.toml
	containerd config default |
		sed -e "s|^root = .*|root = \"$W/root\"|" \
			-e "s|^state = .*|state = \"$W/run\"|" \
			-e "/^\[grpc\]/,/^\[/ s|^  address = .*|  address = \"$S\"|" \
			-e "/^\[ttrpc\]/,/^\[/ s|^  address = .*|  address = \"$S.ttrpc\"|" \
			-e "s|path = \"/opt/containerd\"|path = \"$W/opt\"|" \
			-e "s|bin_dir = \"/opt/cni/bin\"|bin_dir = \"$W/cni-bin\"|" \
			-e "s|conf_dir = \"/etc/cni/net.d\"|conf_dir = \"$W/cni\"|" \
			-e "s|stream_server_port = .*|stream_server_port = \"0\"|" \
			-e "s|sandbox_image = .*|sandbox_image = \"localhost/pause:latest\"|" \
			-e "/runtimes.runc.options\]/,/^$/ s|SystemdCgroup = false|SystemdCgroup = true|" \
			-e "/runtimes.runc.options\]/,/^$/ s|Root = \"\"|Root = \"$W/runc\"|" >$W/config.toml
	cat >>$W/config.toml <<CONF

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
          runtime_type = "io.containerd.berth.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
            ConfigPath = "$W/berth-shim.toml"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
            BinaryName = "/usr/bin/crun"
            Root = "$W/crun"
            SystemdCgroup = true
CONF
	grep -q 'SystemdCgroup = true' $W/config.toml || echo "FAIL runc cri: SystemdCgroup not set in the config" >>"$OUT"
	t0=$(ts)
	setsid containerd --config $W/config.toml >$W/containerd.log 2>&1 </dev/null &
	local cpid=$!
	for _ in $(seq 300); do ctr -a $S version >/dev/null 2>&1 && break; sleep 0.2; done
	for i in busybox pause; do
		timeout 120 ctr -a $S -n k8s.io images import /share/cri-img/$i.tar >/dev/null 2>&1 ||
			echo "FAIL berth cri: import $i: $(tail -1 $W/containerd.log)" >>"$OUT"
	done
	echo "TIME cri containerd up+images $(ms "$t0")ms" >>"$OUT"
	for entry in berth:io.containerd.berth.v2:containerd-shim-berth-v2 \
		runc:io.containerd.runc.v2:containerd-shim-runc-v2 crun:io.containerd.runc.v2:containerd-shim-runc-v2; do
		IFS=: read -r rt rtype shim <<<"$entry"
		uid=$(tr - _ </proc/sys/kernel/random/uuid)
		t0=$(ts)
		rc=0
		timeout 300 /share/berth-cri-test --socket $S --work $W --berth-root "$W/$rt" \
			--handler "$rt" --runtime-type "$rtype" --shim "$shim" --timeout 60 \
			--systemd --cgroup-parent "kubepods-besteffort-pod$uid.slice" \
			--want-shims 1 --require-stats >$W/out-$rt 2>&1 || rc=$?
		cri_rows "$rt" <$W/out-$rt
		grep -q '^ok ' $W/out-$rt || res cri-run "$rt" FAIL "rc $rc: $(tail -2 $W/out-$rt | tr '\n' ' ')"
		[ "$rc" = 0 ] || grep -a 'level=error' $W/containerd.log | tail -3 | cut -c1-300 | sed "s/^/INFO cri $rt containerd: /" >>"$OUT"
		echo "TIME $rt cri-pod $(ms "$t0")ms" >>"$OUT"
	done
	kill "$cpid" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.2; done
	timeout 60 systemctl stop kubepods.slice >/dev/null 2>&1
}

if [ -x /share/berth-cri-test ]; then
	# the CRI plugin finds a shim on containerd's PATH
	ln -sf /share/containerd-shim-berth-v2 /usr/local/bin/containerd-shim-berth-v2
	cri_test
else
	echo "INFO cri: no berth-cri-test in the share; the CRI pod test did not run" >>"$OUT"
fi
