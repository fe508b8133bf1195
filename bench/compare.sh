#!/usr/bin/env bash
# bench/compare.sh: vmc's comparison in one go. The same image and command run as a KVM
# microVM and as a container (startup per phase, memory over time, VMM overhead against
# Firecracker's published figures), then the container mode against crun and runc.
#
#   bench/compare.sh [--out DIR] [--runs N] [--warmup K] [--memory SIZE]
#
# Defaults: busybox running /bin/true, 10 measured runs per mode after 1 warm-up, --memory 128m
# (the guest size of Firecracker's published overhead figure), the memory scenario (the
# vmc-workload image allocates 64 MiB, holds 1 s, frees, holds 1 s), the report in
# vmc-bench-compare-<UTC time>/ (report.md is the one to read).
#
# Where this host's KVM boots Linux (`vmc doctor` says "KVM probe ok"), both modes run here,
# interleaved: `vmc bench --modes vm,container`. Otherwise the VM mode runs inside
# scripts/kvm-sandbox (QEMU TCG emulating a host with KVM): its report comes back out as a tar
# stream on the sandbox's stdout into DIR/vm-sandbox/. The container mode then runs here and
# `vmc bench --add-report` puts both in one report, which states that the VM ran on emulated
# KVM (its boot times measure the emulator; its memory figures stand).
# Last, bench/container-peers.sh writes DIR/container-peers/.
#
# Environment: VMC (default: target/release/vmc, built here), VMC_HOME (the image store; the
# default images are made with scripts/make-default-images.sh when missing), CARGO_TARGET_DIR.
# Needs root (containers, crun, runc).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

out=vmc-bench-compare-$(date -u +%Y%m%dT%H%M%SZ)
runs=10
warmup=1
memory=128m
image=busybox
command=(/bin/true)

die() { echo "compare: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
    --runs) [ $# -ge 2 ] || die "--runs needs a number"; runs=$2; shift 2 ;;
    --warmup) [ $# -ge 2 ] || die "--warmup needs a number"; warmup=$2; shift 2 ;;
    --memory) [ $# -ge 2 ] || die "--memory needs a size"; memory=$2; shift 2 ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number"
[[ $warmup =~ ^[0-9]+$ ]] || die "--warmup must be a number"
[ "$(id -u)" -eq 0 ] || die "needs root (containers, crun and runc create cgroups): run it with sudo"

target_dir=${CARGO_TARGET_DIR:-target}
if [ -z "${VMC:-}" ]; then
  echo "compare: building vmc (release)" >&2
  cargo build --quiet --release -p vmc
  VMC=$target_dir/release/vmc
fi
vmc=$(realpath "$VMC")
[ -x "$vmc" ] || die "$vmc is not an executable vmc binary (set VMC)"
export VMC=$vmc

if ! "$vmc" inspect busybox >/dev/null 2>&1 || ! "$vmc" inspect vmc-workload >/dev/null 2>&1; then
  echo "compare: importing the default images" >&2
  scripts/make-default-images.sh
fi

mkdir -p "$out"
out=$(realpath "$out")
bench_options=(--runs "$runs" --warmup "$warmup" --memory "$memory" --memory-scenario)

if "$vmc" doctor 2>/dev/null | grep -q '\[ok  \] KVM probe'; then
  echo "compare: this host's KVM boots Linux: both modes run here" >&2
  # Two processes: a VM run leaves the VMM's seccomp filter on its thread, which then may not
  # start containers; the container half adds the VM report to its own.
  "$vmc" bench --modes vm "${bench_options[@]}" --out "$out/vm" "$image" -- "${command[@]}"
  "$vmc" bench --modes container "${bench_options[@]}" --add-report "$out/vm/report.json" \
    --out "$out" "$image" -- "${command[@]}"
else
  echo "compare: this host's KVM cannot boot Linux: the VM mode runs inside scripts/kvm-sandbox" >&2
  inner=$(mktemp)
  trap 'rm -f "$inner"' EXIT
  # Inside the sandbox: the bench's table goes to stderr, the report directory to stdout
  # (TERM=dumb: its console is a serial line, no place for a progress bar).
  cat >"$inner" <<EOF
set -e
TERM=dumb vmc bench --modes vm ${bench_options[*]} --out /tmp/vm-report $image -- ${command[*]} >&2
tar -C /tmp/vm-report -cf - .
EOF
  mkdir -p "$out/vm-sandbox"
  # One VM run takes seconds under emulation: allow a minute per run, plus the sandbox's boot.
  timeout_seconds=$(( (runs + warmup + 1) * 60 + 300 ))
  status=0
  scripts/kvm-sandbox --timeout "$timeout_seconds" --script "$inner" >"$out/vm-sandbox.tar" || status=$?
  [ "$status" -eq 0 ] || die "the VM benchmark inside scripts/kvm-sandbox failed (exit $status; its messages are above)"
  tar -C "$out/vm-sandbox" -xf "$out/vm-sandbox.tar" \
    || die "the VM report did not come back out of the sandbox intact ($out/vm-sandbox.tar)"
  rm -f "$out/vm-sandbox.tar"
  "$vmc" bench --modes container "${bench_options[@]}" --add-report "$out/vm-sandbox/report.json" \
    --out "$out" "$image" -- "${command[@]}"
fi

bench/container-peers.sh --out "$out/container-peers"
echo "compare: report in $out/report.md, container peers in $out/container-peers/" >&2
