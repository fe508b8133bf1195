#!/usr/bin/env bash
# bench/supervisor-rss.sh: what the supervisor of a detached container costs. Starts
# `vmc run -d IMAGE sleep 30`, reads the supervisor's /proc/PID/smaps while the workload runs
# and prints its resident memory mapping by mapping (bench/smaps-rss.awk), then one line:
#   vmc supervisor RSS N kB (private N kB)
# "private" leaves out pages shared with other processes (libc, the vmc binary's pages that
# another vmc has in memory): what one more run adds. Where podman is installed it does the
# same for `podman run -d` and prints conmon's line beside it.
#
#   bench/supervisor-rss.sh [--image IMAGE]
#
# Environment: VMC (default target/release/vmc), VMC_HOME (needs the image). Root.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "supervisor-rss: $*" >&2; exit 1; }
image=busybox
while [ $# -gt 0 ]; do
  case $1 in
    --image) [ $# -ge 2 ] || die "--image needs an image name"; image=$2; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
vmc=${VMC:-target/release/vmc}
[ -x "$vmc" ] || die "no vmc binary at $vmc: build it (cargo build --release -p vmc) or set VMC"

# report NAME PID: the mapping table and the summary line of process PID.
report() {
  local name=$1 pid=$2 rss private
  echo "== $name (pid $pid)"
  # No mapping is guest RAM here: a size no mapping has.
  awk -v guest_kib=1099511627776 -f bench/smaps-rss.awk "/proc/$pid/smaps" | grep -v "VMM overhead" | head -12
  rss=$(awk '/^Rss:/ { s += $2 } END { print s + 0 }' "/proc/$pid/smaps_rollup")
  private=$(awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s + 0 }' "/proc/$pid/smaps_rollup")
  echo "$name RSS $rss kB (private $private kB)"
}

id=$("$vmc" run -d --rm "$image" sleep 30) || die "vmc run -d failed"
trap '"$vmc" rm -f "$id" >/dev/null 2>&1 || true' EXIT
pid=$(pgrep -f "vmc-supervisor $id" | head -1) || die "no supervisor for run $id"
# Let the start settle (the log thread and the control thread are waiting by then).
sleep 1
report "vmc supervisor" "$pid"

if command -v podman >/dev/null 2>&1; then
  if cid=$(podman run -d --rm "$image" sleep 30 2>/dev/null); then
    sleep 1
    cpid=$(pgrep -f "conmon .*${cid:0:12}" | head -1 || true)
    [ -n "$cpid" ] && report conmon "$cpid"
    podman rm -f "$cid" >/dev/null 2>&1 || true
  else
    echo "conmon: podman cannot run $image here"
  fi
else
  echo "conmon: podman is not installed"
fi
