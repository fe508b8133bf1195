#!/usr/bin/env bash
# Container startup against its peers, like with like: ONE hyperfine run of
#   vmc    vmc run --mode container --rm -m 64m busybox true
#   crun   crun run: an OCI bundle with Docker's default confinement (the 14 capabilities in
#          bounding/effective/permitted, inheritable and ambient empty; Docker's seccomp
#          profile; Docker's masked and read-only paths; /sys and the cgroup fs read-only;
#          no_new_privs off as in Docker), all namespaces, a 64m memory limit, /bin/true
#   runc   runc run on the same bundle
#   bwrap  bwrap --unshare-all --ro-bind ROOTFS / --proc /proc --dev /dev /bin/true
#          (no cgroup, no seccomp: the floor of a namespaced start)
# on the same busybox root filesystem, then prints the ratios vmc/crun, vmc/runc, vmc/bwrap.
#
# Everything runs inside ONE private mount namespace made once around hyperfine, in which the
# cgroup2 mount at /sys/fs/cgroup/unified is unmounted (crun and runc refuse the v1 "hybrid"
# layout). No wrapper per run: one costs more than vmc's whole run (anchors.md).
#
# The seccomp profile is vmc's Docker-format default profile (SECCOMP_PROFILE to use another file
# in Docker's format), converted with jq to the runtime spec's linux.seccomp: the rules whose
# includes/excludes (caps, arches, minKernel) hold for the 14 capabilities, amd64 and this kernel.
#
# Usage: bench/container-peers.sh [--out DIR] [--runs N] [--warmup N]
# Environment: VMC (default target/release/vmc), VMC_HOME (vmc's image store),
#              SECCOMP_PROFILE (default crates/vmc-container/src/security/docker-default-seccomp.json).
# Needs root, hyperfine, crun, runc, bwrap, jq, unshare, and the busybox image in vmc's store
# (scripts/make-default-images.sh). x86_64 only (the profile's architecture).
set -euo pipefail
cd "$(dirname "$0")/.."

out=bench/results
runs=60
warmup=5
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "container-peers: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

vmc=$(realpath -m "${VMC:-target/release/vmc}")
profile=${SECCOMP_PROFILE:-crates/vmc-container/src/security/docker-default-seccomp.json}
die() { echo "container-peers: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (crun and runc create cgroups): run it with sudo"
[ "$(uname -m)" = x86_64 ] || die "the seccomp conversion is written for x86_64, this is $(uname -m)"
for tool in hyperfine crun runc bwrap jq unshare; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install $tool"
done
[ -x "$vmc" ] || die "$vmc not found: cargo build --release -p vmc (or set VMC)"
[ -f "$profile" ] || die "seccomp profile $profile not found (set SECCOMP_PROFILE to a Docker-format profile)"

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

# Docker's default capabilities, masked paths and read-only paths (moby's oci defaults).
caps='["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW",
  "CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT",
  "CAP_KILL","CAP_AUDIT_WRITE"]'
masked='["/proc/asound","/proc/acpi","/proc/kcore","/proc/keys","/proc/latency_stats",
  "/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi","/sys/firmware",
  "/sys/devices/virtual/powercap"]'
readonly_paths='["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]'

# Docker's profile format -> runtime-spec linux.seccomp, evaluated as moby does for a container:
# a rule applies when all its includes.caps are held, none of its excludes.caps, the arch is in
# includes.arches (if any) and not in excludes.arches, and the kernel is >= includes.minKernel
# and < excludes.minKernel (if given).
kernel=$(uname -r | sed -E 's/^([0-9]+)\.([0-9]+).*/\1.\2/')
jq --argjson caps "$caps" --arg goarch amd64 --arg arch SCMP_ARCH_X86_64 --arg kernel "$kernel" '
  def version: split(".") | map(tonumber);
  def holds($f; $want):
    (($f.caps // []) | if $want then all(. as $c | any($caps[]; . == $c))
                                 else any(. as $c | any($caps[]; . == $c)) | not end)
    and (($f.arches // []) as $a | if $want then ($a == [] or any($a[]; . == $goarch))
                                            else (any($a[]; . == $goarch) | not) end)
    and ($f.minKernel as $min | $min == null
         or (if $want then ($kernel | version) >= ($min | version)
             else ($kernel | version) < ($min | version) end));
  {
    defaultAction,
    defaultErrnoRet,
    architectures: (if .archMap then [.archMap[] | select(.architecture == $arch)
                      | .architecture, (.subArchitectures // [])[]]
                    else .architectures end),
    syscalls: [.syscalls[]
      | select(holds(.includes // {}; true) and holds(.excludes // {}; false))
      | {names: (.names // [.name]), action, errnoRet,
         args: (if (.args // []) == [] then null
                else [.args[] | {index, value, valueTwo: (.valueTwo // 0), op}] end)}
      | with_entries(select(.value != null))]
  } | with_entries(select(.value != null))' "$profile" >"$work/seccomp.json" \
  || die "cannot convert $profile (Docker's seccomp profile format expected)"
echo "seccomp: $profile -> $(jq '.syscalls | length' "$work/seccomp.json") rules for $(jq -c .architectures "$work/seccomp.json"), kernel $kernel"

(cd "$work/bundle" && crun spec)
# config.json for COMMAND...: the bundle with Docker's confinement running COMMAND.
bundle_config() {
  local args
  args=$(printf '%s\n' "$@" | jq -R . | jq -s .)
  jq --argjson caps "$caps" --argjson masked "$masked" --argjson ro "$readonly_paths" \
     --argjson args "$args" --slurpfile seccomp "$work/seccomp.json" '
    .process.terminal = false
    | .process.args = $args
    | .process.noNewPrivileges = false
    | .process.capabilities = {bounding: $caps, effective: $caps, permitted: $caps,
                               inheritable: [], ambient: []}
    | .linux.namespaces = [{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},
                           {"type":"mount"},{"type":"cgroup"}]
    | .linux.resources.memory = {"limit": 67108864}
    | .linux.maskedPaths = $masked
    | .linux.readonlyPaths = $ro
    | .linux.seccomp = $seccomp[0]' "$work/bundle/config.json.orig"
}
mv "$work/bundle/config.json" "$work/bundle/config.json.orig"
bundle_config /bin/true >"$work/bundle/config.json"
# A second bundle on the same rootfs that shows the confinement in effect.
mkdir "$work/show"
bundle_config /bin/grep -E '^(CapEff|Seccomp):' /proc/self/status \
  | jq --arg root "$rootfs" '.root.path = $root' >"$work/show/config.json"

vmc_cmd="$vmc run --mode container --rm -m 64m busybox true"
crun_cmd="crun run --bundle $work/bundle vmc-peers-crun"
runc_cmd="runc run --bundle $work/bundle vmc-peers-runc"
bwrap_cmd="bwrap --unshare-all --ro-bind $rootfs / --proc /proc --dev /dev /bin/true"

mkdir -p "$out"
json=$(realpath -m "$out/container-peers.json")

# Runs inside the one private mount namespace: checks every peer once, then hyperfine.
cat >"$work/inside.sh" <<EOF
#!/bin/sh
set -e
umount /sys/fs/cgroup/unified 2>/dev/null || true
show() { printf '%-6s %s\n' "\$1" "\$(tr '\t\n' '  ' | tr -s ' ')"; }
"$vmc" run --mode container --rm busybox grep -E '^(CapEff|Seccomp):' /proc/self/status | show vmc
crun run --bundle "$work/show" vmc-peers-show | show crun
runc run --bundle "$work/show" vmc-peers-show | show runc
bwrap --unshare-all --ro-bind "$rootfs" / --proc /proc --dev /dev /bin/grep -E '^(CapEff|Seccomp):' /proc/self/status | show bwrap
for cmd in "$vmc_cmd" "$crun_cmd" "$runc_cmd" "$bwrap_cmd"; do
  \$cmd || { echo "container-peers: '\$cmd' fails on this host" >&2; exit 1; }
done
exec hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$json" \\
  --command-name vmc "$vmc_cmd" \\
  --command-name crun "$crun_cmd" \\
  --command-name runc "$runc_cmd" \\
  --command-name bwrap "$bwrap_cmd"
EOF
echo "confinement in effect (the start of each peer's /proc/self/status):"
unshare -m --propagation private sh "$work/inside.sh"

mean() { jq -r --arg name "$1" '.results[] | select(.command == $name) | .mean' "$json"; }
awk -v v="$(mean vmc)" -v c="$(mean crun)" -v r="$(mean runc)" -v b="$(mean bwrap)" 'BEGIN {
  printf "mean: vmc %.2f ms, crun %.2f ms, runc %.2f ms, bwrap %.2f ms\n", v * 1000, c * 1000, r * 1000, b * 1000
  printf "vmc/crun = %.2f (goal <= 0.6: %s)   vmc/runc = %.2f   vmc/bwrap = %.2f (goal <= 1.3: %s)\n",
    v / c, (v / c <= 0.6 ? "met" : "not met"), v / r, v / b, (v / b <= 1.3 ? "met" : "not met")
}'
echo "results: $json"
