#!/usr/bin/env bash
# bench/vmm-rss.sh: where the memory of `vmc run --mode vm` goes. Boots the busybox image with
# 128 MiB running `sleep`, reads the vmc process's /proc/PID/smaps while the guest sleeps, and
# prints its resident memory per mapping (guest RAM, the vmc binary, shared libraries, heap,
# stacks), then the VMM overhead as Firecracker counts it: process RSS − resident guest RAM.
#
#   bench/vmm-rss.sh
#
# Where this host's KVM cannot boot Linux it runs inside scripts/kvm-sandbox (there, files live
# on a tmpfs, so the binary's pages show as shared memory; the sizes are the same).
# Environment: VMC (default target/release/vmc), VMC_HOME (needs the busybox image).
set -euo pipefail
cd "$(dirname "$0")/.."
vmc=${VMC:-target/release/vmc}
[ -x "$vmc" ] || { echo "vmm-rss: $vmc is not built (cargo build --release -p vmc, or set VMC)" >&2; exit 1; }

inner=$(mktemp)
trap 'rm -f "$inner"' EXIT
cat >"$inner" <<'EOF'
guest_kib=$((128 * 1024))
# A first run writes out the guest init, so the measured run is a typical one.
vmc run --mode vm --rm busybox true
vmc run --mode vm --rm -m 128m busybox sleep 8 &
run=$!
sleep 6
pid=$(pidof vmc)
awk -v guest_kib="$guest_kib" '
  /^[0-9a-f]+-[0-9a-f]+ / {
    split($1, range, "-")
    name = $6 == "" ? "[anonymous]" : $6
    next
  }
  # The guest RAM mapping; the kernel may merge a few adjacent anonymous pages into it.
  /^Size:/ { if (name == "[anonymous]" && $2 >= guest_kib && $2 < guest_kib + 1024) name = "[guest RAM]"; next }
  /^Rss:/ { rss[name] += $2; total += $2 }
  END {
    printf "%10s  %s\n", "resident", "mapping"
    for (n in rss) if (rss[n] > 0) printf "%7d kB  %s\n", rss[n], n | "sort -rn"
    close("sort -rn")
    printf "process RSS %d kB, guest RAM resident %d kB: VMM overhead %.1f MiB\n",
      total, rss["[guest RAM]"], (total - rss["[guest RAM]"]) / 1024
  }' "/proc/$pid/smaps"
wait "$run"
EOF

if "$vmc" doctor --check vm >/dev/null 2>&1; then
  PATH="$(dirname "$(realpath "$vmc")"):$PATH" bash "$inner"
else
  echo "vmm-rss: this host's KVM cannot boot Linux: measuring inside scripts/kvm-sandbox" >&2
  VMC="$vmc" scripts/kvm-sandbox --script "$inner"
fi
