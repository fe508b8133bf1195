#!/usr/bin/env bash
# Container startup against its peers: ONE hyperfine run of
#   vmc run --mode container --rm -m 64m busybox true
#   crun run   (OCI bundle from `crun spec`: /bin/true, all namespaces, memory limit 64m)
#   runc run   (the same bundle)
# on the same busybox root filesystem, then prints the ratios vmc/crun and vmc/runc.
#
# Every command goes through the same wrapper: a private mount namespace in which the cgroup2
# mount at /sys/fs/cgroup/unified is unmounted (crun and runc refuse the v1 "hybrid" layout;
# see /work/shared/notes/anchors.md), and a fresh container id per run.
#
# Usage: bench/container-peers.sh [--out DIR] [--runs N] [--warmup N]
# Environment: VMC (default target/release/vmc), VMC_HOME (vmc's image store).
# Needs root, hyperfine, crun, runc, jq, unshare, and the busybox image in vmc's store
# (scripts/make-default-images.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

out=bench/results
runs=40
warmup=5
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "container-peers: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

vmc=$(realpath -m "${VMC:-target/release/vmc}")
die() { echo "container-peers: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (crun and runc create cgroups): run it with sudo"
for tool in hyperfine crun runc jq unshare; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install $tool"
done
[ -x "$vmc" ] || die "$vmc not found: cargo build --release -p vmc (or set VMC)"
"$vmc" run --mode container --rm -m 64m busybox true \
  || die "'vmc run --mode container --rm -m 64m busybox true' failed: import the image with scripts/make-default-images.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The bundle's rootfs: the same tree scripts/make-default-images.sh imports as "busybox".
rootfs=$work/bundle/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,root,home,tmp,var,run}
chmod 1777 "$rootfs/tmp"
install -m 755 /bin/busybox "$rootfs/bin/busybox"
while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$rootfs/$(dirname "$applet")"
  ln -sf /bin/busybox "$rootfs/$applet"
done < <(/bin/busybox --list-full)
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"

(cd "$work/bundle" && crun spec)
jq '.process.terminal = false
  | .process.args = ["/bin/true"]
  | .linux.namespaces = [{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}]
  | .linux.resources.memory = {"limit": 67108864}' \
  "$work/bundle/config.json" >"$work/config.json"
mv "$work/config.json" "$work/bundle/config.json"

# peer.sh RUNTIME: one run, with the cgroup2 mount hidden and a unique container id.
cat >"$work/peer.sh" <<EOF
#!/bin/sh
id=peers-\$\$-\$(date +%s%N)
case \$1 in
  vmc)  set -- "$vmc" run --mode container --rm -m 64m busybox true ;;
  crun) set -- crun run --bundle "$work/bundle" "\$id" ;;
  runc) set -- runc run --bundle "$work/bundle" "\$id" ;;
esac
exec unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "\$@"' sh "\$@"
EOF
chmod +x "$work/peer.sh"
for peer in vmc crun runc; do
  "$work/peer.sh" "$peer" || die "$peer does not run /bin/true on this host"
done

mkdir -p "$out"
json=$out/container-peers.json
hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$json" \
  --command-name vmc "$work/peer.sh vmc" \
  --command-name crun "$work/peer.sh crun" \
  --command-name runc "$work/peer.sh runc"

mean() { jq -r --arg name "$1" '.results[] | select(.command == $name) | .mean' "$json"; }
vmc_mean=$(mean vmc)
crun_mean=$(mean crun)
runc_mean=$(mean runc)
awk -v v="$vmc_mean" -v c="$crun_mean" -v r="$runc_mean" 'BEGIN {
  printf "mean: vmc %.1f ms, crun %.1f ms, runc %.1f ms\n", v * 1000, c * 1000, r * 1000
  printf "vmc/crun = %.2f   vmc/runc = %.2f\n", v / c, v / r
}'
echo "results: $json"
