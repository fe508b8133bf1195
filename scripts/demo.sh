#!/usr/bin/env bash
# The main job: the default busybox image run both ways, with each run's annotated timeline.
# VM mode runs directly where this host's KVM can boot Linux, else inside scripts/kvm-sandbox
# (an emulated KVM host) — and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
vmc=${VMC:-$PWD/target/release/vmc}
workload='echo "hello from $(hostname): kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPU(s), $(grep MemTotal /proc/meminfo | tr -s " ")"'

echo "== container mode: the host's kernel, namespaces and a cgroup (memory limit 256m)"
"$vmc" run --mode container --rm -m 256m --trace busybox sh -c "$workload"

echo
echo "== VM mode: its own kernel on 256 MiB of statically allocated guest RAM"
if "$vmc" doctor --kvm-can-run-linux >/dev/null 2>&1; then
  "$vmc" run --mode vm --rm -m 256m --trace busybox sh -c "$workload"
else
  echo "   this host's KVM cannot run Linux guests (see 'vmc doctor'): running VM mode inside"
  echo "   scripts/kvm-sandbox, a KVM host emulated by QEMU TCG — expect seconds, not milliseconds."
  VMC="$vmc" scripts/kvm-sandbox vmc run --mode vm --rm -m 256m --trace busybox sh -c "$workload"
fi
