# shellcheck shell=bash disable=SC2034
# Sourced by the engine scripts: berth path, private work dir, argv-logging wrapper,
# one-line checks, interleaved latency bench.  Nothing here touches a host engine.
set -euo pipefail
ENG_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENG_TOP=$(cd "$ENG_HERE/../.." && pwd)

# $1 (or BERTH) names the berth binary; default: the workspace's debug build.
BERTH=${1:-${BERTH:-${CARGO_TARGET_DIR:-$ENG_TOP/target}/debug/berth}}
BERTH=$(readlink -f "$BERTH")
[ -x "$BERTH" ] || { echo "berth binary not found: $BERTH (cargo build -p berth first)" >&2; exit 2; }
RUNC=${RUNC:-/usr/sbin/runc}
ROUNDS=${ROUNDS:-10}          # latency rounds per runtime; 0 skips the bench
CALL_TIMEOUT=${CALL_TIMEOUT:-90}

[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
command -v jq >/dev/null || { echo "needs jq" >&2; exit 2; }

# Debian packages, installed only when a binary is missing.
need_pkgs() { # need_pkgs BIN PKG... ; installs PKGs when BIN is absent
  local bin=$1; shift
  [ -x "$bin" ] && return 0
  echo "installing $*" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
}

# ENG_NAME must be set by the caller.  Everything private lives in $W.
W=$(mktemp -d "/tmp/berth-eng-$ENG_NAME.XXXXXX")
trap 'rm -rf "$W"' EXIT   # until the engine script installs its own cleanup
ARGV_LOG=${ARGV_LOG_DIR:-/tmp}/berth-engines-$ENG_NAME-argv.log
: > "$ARGV_LOG"
mkdir -p "$W/bin"
# The engines call this wrapper; it records each berth command line and its exit status so
# the exact calls each engine makes are visible (ARGV_LOG).  It does not exec, to log the
# status; berth's pid-file, not this wrapper's pid, is what the engines track.
# The last config.json an engine created a container from is kept next to the log.
cat > "$W/bin/berth" <<WRAP
#!/bin/sh
"$BERTH" "\$@"
rc=\$?
printf 'rc=%s berth %s\n' "\$rc" "\$*" >> "$ARGV_LOG"
prev=
for a in "\$@"; do
  case \$prev in -b|--bundle) cp "\$a/config.json" "${ARGV_LOG%.log}-config.json" 2>/dev/null ;; esac
  case \$a in --bundle=*) cp "\${a#--bundle=}/config.json" "${ARGV_LOG%.log}-config.json" 2>/dev/null ;; esac
  prev=\$a
done
exit \$rc
WRAP
chmod 755 "$W/bin/berth"
BW=$W/bin/berth

# The busybox image, built offline into $W/img (private, deterministic).
build_image() { OUT=$W/img "$ENG_HERE/make-busybox-image.sh" >/dev/null; }

PASS=0 FAIL=0
ok()  { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1${2:+ -- $2}"; }

# t NAME WANT_RC WANT_OUT CMD...
#   Runs CMD (with a timeout), stdout+stderr captured, CRs dropped.  WANT_OUT "=text" needs the
#   whole output equal to text, "~regex" an extended-regex match, "" anything.
t() {
  local name=$1 want_rc=$2 want_out=$3; shift 3
  local out rc=0
  out=$(timeout "$CALL_TIMEOUT" "$@" 2>&1 </dev/null) || rc=$?
  out=${out//$'\r'/}
  if [ "$want_rc" != any ] && [ "$rc" != "$want_rc" ]; then
    bad "$name" "exit $rc, want $want_rc: $(printf '%s' "$out" | tail -2 | tr '\n' ' ' | cut -c1-300)"; return 0
  fi
  case $want_out in
    "") ;;
    =*) [ "$out" = "${want_out#=}" ] || { bad "$name" "output '$(printf '%s' "$out" | tr '\n' '|' | cut -c1-300)', want '${want_out#=}'"; return 0; } ;;
    "~"*) printf '%s' "$out" | grep -Eq -- "${want_out#\~}" || { bad "$name" "output '$(printf '%s' "$out" | tr '\n' '|' | cut -c1-300)' !~ /${want_out#\~}/"; return 0; } ;;
  esac
  ok "$name"
}

# ttyrun NAME REGEX CMD... : runs CMD under a pseudo-terminal (util-linux script) for -it tests.
ttyrun() {
  local name=$1 want=$2; shift 2
  local cmd out rc=0
  printf -v cmd '%q ' "$@"
  out=$(timeout "$CALL_TIMEOUT" script -qefc "$cmd" /dev/null 2>&1 </dev/null) || rc=$?
  out=${out//$'\r'/}
  if [ "$rc" = 0 ] && printf '%s' "$out" | grep -Eq -- "$want"; then ok "$name"
  else bad "$name" "exit $rc, output '$(printf '%s' "$out" | tr '\n' '|' | cut -c1-300)' !~ /$want/"; fi
}

# bench N name1 'cmd1' name2 'cmd2' : interleaved rounds (after one warm-up), median ms per
# variant, one line each.  A failing run is counted, not timed.
bench() {
  local n=$1; shift
  local -a names=() cmds=()
  while [ $# -gt 0 ]; do names+=("$1"); cmds+=("$2"); shift 2; done
  local r i t0 t1
  for i in "${!names[@]}"; do : > "$W/bench.$i"; : > "$W/bench.$i.fail"; done
  for r in $(seq 0 "$n"); do
    for i in "${!names[@]}"; do
      t0=$(date +%s%N)
      if eval "${cmds[$i]}" >/dev/null 2>>"$W/bench.$i.err" </dev/null; then
        t1=$(date +%s%N)
        [ "$r" -ge 1 ] && echo $(((t1 - t0) / 1000)) >> "$W/bench.$i"
      else
        echo x >> "$W/bench.$i.fail"
      fi
    done
  done
  for i in "${!names[@]}"; do
    local f; f=$(wc -l < "$W/bench.$i.fail")
    if [ -s "$W/bench.$i" ]; then
      sort -n "$W/bench.$i" | awk -v nm="${names[$i]}" -v f="$f" -v e="$ENG_NAME" '{a[NR]=$1}
        END{n=NR; med=(n%2)?a[(n+1)/2]:(a[n/2]+a[n/2+1])/2;
            printf "latency %s %-6s run --rm true: median %.1f ms  min %.1f  max %.1f  (n=%d, fails=%d)\n", e, nm, med/1000, a[1]/1000, a[n]/1000, n, f}'
    else
      echo "latency $ENG_NAME ${names[$i]}: all runs failed: $(tail -1 "$W/bench.$i.err" 2>/dev/null)"
    fi
  done
}

# Unmount whatever is still mounted below DIR (deepest first).
umount_below() {
  awk -v d="$1/" 'index($2,d)==1{print $2}' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
# Remove a cgroup subtree (empty dirs only) in every hierarchy.
rm_cgroup() {
  local c
  for c in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}
# Kill a daemon we started (by pid file), only if its cmdline contains MARK.
stop_pid() { # stop_pid PIDFILE MARK
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null && grep -qa -- "$2" "/proc/$pid/cmdline"; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  return 0
}

summary() {
  echo "argv log: $ARGV_LOG ($(wc -l < "$ARGV_LOG") berth calls)"
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" = 0 ]
}
