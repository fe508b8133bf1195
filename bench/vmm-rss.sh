#!/usr/bin/env bash
# bench/vmm-rss.sh: where the memory of `vmc run --mode vm` goes. Boots IMAGE with the given
# guest memory running COMMAND, reads the vmc process's /proc/PID/smaps every second while it
# runs and prints the last reading taken while the guest RAM was still mapped (the guest is
# then running COMMAND; make it live a few seconds past boot): resident memory per mapping
# (guest RAM, the vmc binary, shared libraries, heap, stacks), then the VMM overhead as
# Firecracker counts it: process RSS − resident guest RAM.
#
#   bench/vmm-rss.sh [--image IMAGE] [--memory SIZE|default] [-- COMMAND [ARG...]]
#
# Defaults: busybox, 128m, `sleep 8`. `--memory default` passes no -m (VM mode's default,
# 256 MiB). The issue's figure: bench/vmm-rss.sh --image debian:python3 --memory default --
# python3 -c 'import time; time.sleep(8)'. A first run of `true` (same image and memory) comes
# before the measured one: it writes out the guest init and builds the image's caches, so the
# measured run is a typical one.
#
# Where this host's KVM cannot boot Linux it runs inside scripts/kvm-sandbox (there, files live
# on a tmpfs, so the binary's pages show as shared memory; the sizes are the same). The sandbox
# copies only $VMC_HOME/images in: the warm-up run builds the image's caches there.
# Environment: VMC (default target/release/vmc), VMC_HOME (needs the image).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "vmm-rss: $*" >&2; exit 1; }
image=busybox
memory=128m
command=(sleep 8)
while [ $# -gt 0 ]; do
  case $1 in
    --image) [ $# -ge 2 ] || die "--image needs an image name"; image=$2; shift 2 ;;
    --memory) [ $# -ge 2 ] || die "--memory needs a size (e.g. 256m) or 'default'"; memory=$2; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; [ $# -gt 0 ] || die "no command after --"; command=("$@"); break ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# Prints SIZE (Docker's units: b, k, m, g; a plain number is bytes) in KiB.
size_kib() {
  local number unit
  [[ $1 =~ ^([0-9]+)([bBkKmMgG]?)$ ]] || return 1
  number=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2],,}
  case $unit in
    '' | b) echo $((number / 1024)) ;;
    k) echo "$number" ;;
    m) echo $((number * 1024)) ;;
    g) echo $((number * 1024 * 1024)) ;;
  esac
}
if [ "$memory" = default ]; then
  memory_flag='' guest_kib=$((256 * 1024))
else
  guest_kib=$(size_kib "$memory") || die "--memory '$memory' is not a size like 128m or 1g (or 'default')"
  [ "$guest_kib" -gt 0 ] || die "--memory '$memory' is too small"
  memory_flag="-m $memory"
fi
single_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
quoted_command=
for word in "${command[@]}"; do quoted_command+=" $(single_quote "$word")"; done

vmc=${VMC:-target/release/vmc}
[ -x "$vmc" ] || die "$vmc is not built (cargo build --release -p vmc, or set VMC)"

inner=$(mktemp)
trap 'rm -f "$inner"' EXIT
# Runs in busybox sh inside the sandbox, or in bash here. Its parameters come as RSS_* variables.
cat >"$inner" <<'EOF'
set -e
# shellcheck disable=SC2086 # RSS_MEMORY_FLAG is empty or two words
vmc run --mode vm --rm $RSS_MEMORY_FLAG "$RSS_IMAGE" true
sample=$(mktemp) reading=$(mktemp)
eval "set -- $RSS_COMMAND"
# A simple command in the background: $! is vmc's own process.
# shellcheck disable=SC2086
vmc run --mode vm --rm $RSS_MEMORY_FLAG "$RSS_IMAGE" "$@" &
run=$!
# The process's smaps is empty once it has ended; a reading without the guest RAM mapping was
# taken during teardown. Either leaves the previous reading in place.
while kill -0 "$run" 2>/dev/null; do
  sleep 1
  if awk -v guest_kib="$RSS_GUEST_KIB" -f "$RSS_AWK" "/proc/$run/smaps" >"$reading" 2>/dev/null \
    && grep -q ' kB  \[guest RAM\]$' "$reading"; then
    cp "$reading" "$sample"
  fi
done
status=0
wait "$run" || status=$?
[ "$status" -eq 0 ] || { echo "vmm-rss: the measured run exited with status $status" >&2; exit 1; }
[ -s "$sample" ] || { echo "vmm-rss: no reading of the run's smaps (did it end within a second?)" >&2; exit 1; }
cat "$sample"
rm -f "$sample" "$reading"
EOF

settings=(RSS_IMAGE="$image" RSS_MEMORY_FLAG="$memory_flag" RSS_GUEST_KIB="$guest_kib"
  RSS_COMMAND="$quoted_command")
echo "vmm-rss: $image, guest memory ${memory}, command:${quoted_command}" >&2
if "$vmc" doctor --check vm >/dev/null 2>&1; then
  env "${settings[@]}" RSS_AWK=bench/smaps-rss.awk \
    PATH="$(dirname "$(realpath "$vmc")"):$PATH" bash "$inner"
else
  echo "vmm-rss: this host's KVM cannot boot Linux: measuring inside scripts/kvm-sandbox" >&2
  sandbox_env=()
  for setting in "${settings[@]}" RSS_AWK=/sandbox/files/smaps-rss.awk; do sandbox_env+=(--env "$setting"); done
  VMC="$vmc" scripts/kvm-sandbox "${sandbox_env[@]}" --file bench/smaps-rss.awk --script "$inner"
fi
