#!/usr/bin/env bash
# bench/stdio-throughput.sh: how fast a VM's stdin and stdout move bytes. Pipes SIZE bytes of
# random data through `vmc run --mode vm --rm -i busybox cat` and checks they come back
# unchanged, for each vmc binary given, in ONE session (where this host's KVM cannot boot
# Linux, ONE scripts/kvm-sandbox session). Before each run it touches 256 MiB of memory, as
# METHODOLOGY.md asks of sandbox timings. For each binary it prints the time of a run of
# `true` (boot and teardown), of the run through `cat`, and the throughput of the difference.
#
#   bench/stdio-throughput.sh [--size BYTES] VMC [VMC...]
#
# e.g. the serial path of an older build against the vsock channel of this one:
#   bench/stdio-throughput.sh /tmp/old/target/release/vmc target/release/vmc
# Environment: VMC_HOME (needs the busybox image).
set -euo pipefail
cd "$(dirname "$0")/.."
size=$((1 << 20))
if [ "${1:-}" = --size ]; then size=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: bench/stdio-throughput.sh [--size BYTES] VMC [VMC...]" >&2; exit 2; }

inner=$(mktemp)
trap 'rm -f "$inner"' EXIT
{
  echo "size=$size"
  cat <<'EOF'
# Seconds since boot, to the hundredth.
now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# Touches 256 MiB of memory (a tmpfs file written, then freed).
churn() { dd if=/dev/zero of=/tmp/churn bs=1M count=256 2>/dev/null; rm -f /tmp/churn; }
head -c "$size" /dev/urandom > /tmp/input
want=$(sha256sum < /tmp/input | cut -d' ' -f1)
for vmc in "$@"; do
  # A first run writes out the guest init and the initramfs cache.
  "$vmc" run --mode vm --rm busybox true
  churn; start=$(now)
  "$vmc" run --mode vm --rm -i busybox true < /dev/null
  boot=$(elapsed "$start" "$(now)")
  churn; start=$(now)
  got=$("$vmc" run --mode vm --rm -i busybox cat < /tmp/input | sha256sum | cut -d' ' -f1)
  total=$(elapsed "$start" "$(now)")
  [ "$got" = "$want" ] && same=yes || same=NO
  awk -v vmc="$vmc" -v size="$size" -v boot="$boot" -v total="$total" -v same="$same" 'BEGIN {
    copy = total - boot; rate = copy > 0 ? size / copy / 1024 : 0
    printf "%s: true %.2f s, cat of %d bytes %.2f s (unchanged: %s): %.2f s for the bytes, %.0f KiB/s\n",
      vmc, boot, size, total, same, copy, rate }'
done
EOF
} > "$inner"

if "$1" doctor --check vm >/dev/null 2>&1; then
  sh "$inner" "$@"
else
  files=() names=()
  for vmc in "$@"; do
    # Each binary under its own name inside the sandbox (both may be called vmc).
    copy=$(mktemp -d)/vmc-$((${#files[@]} + 1))
    cp "$vmc" "$copy"
    files+=(--file "$copy") names+=("/sandbox/files/$(basename "$copy")")
  done
  { echo "set -- ${names[*]}"; cat "$inner"; } > "$inner.sandbox"
  status=0
  VMC="$1" scripts/kvm-sandbox --timeout 1800 "${files[@]}" --script "$inner.sandbox" || status=$?
  rm -f "$inner.sandbox"
  for ((i = 1; i < ${#files[@]}; i += 2)); do rm -rf "$(dirname "${files[$i]}")"; done
  exit $status
fi
