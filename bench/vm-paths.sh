#!/usr/bin/env bash
# bench/vm-paths.sh: two vmc builds, OLD and NEW, side by side in VM mode, in ONE session:
#   startup     `vmc run --mode vm --rm IMAGE true` for busybox and debian:python3: the wall
#               time of the whole process and the trace's vmc start → workload exec, and of
#               that the guest's two parts: kernel entry → init started (the kernel's boot),
#               init started → workload exec (vmc-init's mounts and root switch)
#   throughput  N bytes of random data through `vmc run --mode vm --rm -i busybox cat`, the
#               output's sha256 checked: MiB/s over the trace's workload exec → workload exit
#   memory      the VMM's resident memory while python3 sleeps in the guest (bench/vmm-rss.sh's
#               method): process RSS, guest RAM resident, overhead outside guest RAM
# Round 0 is a warm-up (first use of each image: caches built; reported apart), then ROUNDS
# measured rounds in a balanced order (odd rounds OLD first, even rounds NEW first, in every
# case), 256 MiB of memory touched right before each boot, a timeout per run.
# Prints a table with NEW/OLD ratios of the medians; the raw numbers are in DIR/runs.csv.
#
#   bench/vm-paths.sh --old PATH --new PATH [--rounds N] [--out DIR] [--timeout S]
#       [--old-sizes LIST] [--new-sizes LIST] [--old-python3-memory SIZE|default]
#       [--new-python3-memory SIZE|default] [--busybox-image IMAGE] [--python3-image IMAGE]
#       [--churn-mib N]
#
# Defaults: 2 rounds; DIR vmc-vm-paths-<UTC time>; 300 s per run, plus 400 s per MiB for a
# throughput run (the serial path moves about 6 KB/s in the sandbox); throughput sizes 1m for
# OLD and 1m,8m for NEW (k or m, comma-separated); python3 at -m 768m for OLD (the initramfs
# path needs about 3.4 × the image in guest RAM) and at the default 256 MiB for NEW; images
# busybox and debian:python3 (scripts/make-test-images.sh); 256 MiB churned.
# Both binaries run with their own copy of the store's images (hard links), so neither uses
# caches the other built; images other than the two are left out of those copies.
#
# Where this host's KVM cannot boot Linux (NEW's `vmc doctor --check vm` fails), everything
# runs in ONE scripts/kvm-sandbox session (emulated KVM: compare the ratios, not the times);
# on this project's shared machines run it as `flock /tmp/vmc-sandbox.lock bench/vm-paths.sh …`.
# Otherwise it runs here. Environment: OLD, NEW (instead of --old, --new), VMC_HOME (the store).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "vm-paths: $*" >&2; exit 1; }
old=${OLD:-}
new=${NEW:-}
rounds=2
out=vmc-vm-paths-$(date -u +%Y%m%dT%H%M%SZ)
timeout_seconds=300
timeout_per_mib=400
old_sizes=1m
new_sizes=1m,8m
old_python3_memory=768m
new_python3_memory=default
busybox_image=busybox
python3_image=debian:python3
churn_mib=256
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  esac
  [ $# -ge 2 ] || die "$1 needs a value (see --help)"
  case $1 in
    --old) old=$2 ;;
    --new) new=$2 ;;
    --rounds) rounds=$2 ;;
    --out) out=$2 ;;
    --timeout) timeout_seconds=$2 ;;
    --old-sizes) old_sizes=$2 ;;
    --new-sizes) new_sizes=$2 ;;
    --old-python3-memory) old_python3_memory=$2 ;;
    --new-python3-memory) new_python3_memory=$2 ;;
    --busybox-image) busybox_image=$2 ;;
    --python3-image) python3_image=$2 ;;
    --churn-mib) churn_mib=$2 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift 2
done
if [ -z "$old" ] || [ -z "$new" ]; then die "give both binaries: --old PATH --new PATH (or OLD=… NEW=…)"; fi
for binary in "$old" "$new"; do
  if ! [ -x "$binary" ] || ! [ -f "$binary" ]; then die "'$binary' is not an executable vmc binary"; fi
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"
[ $((rounds % 2)) -eq 0 ] || echo "vm-paths: an odd number of rounds puts OLD first once more than NEW" >&2
[[ $timeout_seconds =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive number of seconds"
[[ $churn_mib =~ ^[1-9][0-9]*$ ]] || die "--churn-mib must be a positive number"
for memory in "$old_python3_memory" "$new_python3_memory"; do
  [ "$memory" = default ] || [[ $memory =~ ^[1-9][0-9]*[kKmMgG]$ ]] \
    || die "python3 memory '$memory' is not a size like 768m or 1g (or 'default')"
done

# Prints the comma-separated sizes (Nk or Nm) of $1 in KiB, space-separated.
sizes_kib() {
  local size list=()
  IFS=, read -r -a sizes <<<"$1"
  for size in "${sizes[@]}"; do
    [[ $size =~ ^([1-9][0-9]*)([kKmM])$ ]] || return 1
    case ${BASH_REMATCH[2]} in
      k | K) list+=("${BASH_REMATCH[1]}") ;;
      *) list+=("$((BASH_REMATCH[1] * 1024))") ;;
    esac
  done
  [ ${#list[@]} -gt 0 ] || return 1
  echo "${list[*]}"
}
old_kib=$(sizes_kib "$old_sizes") || die "--old-sizes '$old_sizes' is not a list like 1m or 256k,1m"
new_kib=$(sizes_kib "$new_sizes") || die "--new-sizes '$new_sizes' is not a list like 1m,8m"

store=${VMC_HOME:-}
if [ -z "$store" ]; then
  if [ "$(id -u)" -eq 0 ]; then store=/var/lib/vmc; else store=${XDG_DATA_HOME:-$HOME/.local/share}/vmc; fi
fi
for image in "$busybox_image" "$python3_image"; do
  VMC_HOME=$store "$new" inspect "$image" >/dev/null 2>&1 \
    || die "image '$image' is not in $store (scripts/make-default-images.sh, scripts/make-test-images.sh)"
done

mkdir -p "$out"
out=$(realpath "$out")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Distinct names: the sandbox copies --file PATHs by name, and the process names tell them apart.
cp "$old" "$tmp/vmc-old"
cp "$new" "$tmp/vmc-new"
# A store with only the two images (hard links where it can): the sandbox copies the whole
# store into the emulated host's RAM, and every MB of it slows that host's boot.
mkdir -p "$tmp/store"
cp -al "$store/images" "$tmp/store/images" 2>/dev/null \
  || { rm -rf "$tmp/store/images" && cp -a "$store/images" "$tmp/store/images"; } \
  || die "cannot copy $store/images to $tmp/store"
with_tag() { if [[ $1 == *:* ]]; then echo "$1"; else echo "$1:latest"; fi; }
VMC_HOME=$tmp/store "$new" images | awk -v a="$(with_tag "$busybox_image")" -v b="$(with_tag "$python3_image")" \
  -v ia="$busybox_image" -v ib="$python3_image" '
    NR > 1 && $1 ":" $2 != a && $1 ":" $2 != b && index($3, ia) != 1 && index($3, ib) != 1 {
      print ($1 == "<none>" ? $3 : $1 ":" $2)  # an untagged image goes by its ID
    }' |
  while read -r unused; do VMC_HOME=$tmp/store "$new" rmi "$unused" >/dev/null; done
store=$tmp/store

settings=(VP_ROUNDS="$rounds" VP_TIMEOUT="$timeout_seconds" VP_TIMEOUT_PER_MIB="$timeout_per_mib"
  VP_CHURN_MIB="$churn_mib" VP_BUSYBOX_IMAGE="$busybox_image" VP_PYTHON3_IMAGE="$python3_image"
  VP_OLD_PYTHON3_MEMORY="$old_python3_memory" VP_NEW_PYTHON3_MEMORY="$new_python3_memory"
  VP_OLD_SIZES="$old_kib" VP_NEW_SIZES="$new_kib")
{
  echo "OLD $old sha256 $(sha256sum <"$old" | cut -c1-16) ($("$old" --version 2>/dev/null || echo '?'))"
  echo "NEW $new sha256 $(sha256sum <"$new" | cut -c1-16) ($("$new" --version 2>/dev/null || echo '?'))"
  printf '%s\n' "${settings[@]}"
} >"$out/config.txt"

if "$new" doctor --check vm >/dev/null 2>&1; then
  where="here (this host's KVM boots Linux)"
  echo "vm-paths: this host's KVM boots Linux: measuring here" >&2
  env "${settings[@]}" VP_OLD="$tmp/vmc-old" VP_NEW="$tmp/vmc-new" VP_STORE="$store" \
    VP_WORK="$tmp/work" VP_AWK=bench/smaps-rss.awk sh bench/vm-paths-runs.sh \
    >"$out/runs.csv" 2> >(tee "$out/log.txt" >&2)
else
  where="inside ONE scripts/kvm-sandbox session (emulated KVM: compare ratios, not times)"
  echo "vm-paths: this host's KVM cannot boot Linux: measuring inside scripts/kvm-sandbox" >&2
  # The whole session's limit: every run's own limit, plus the emulated host's boot.
  runs_per_round=$((4 + 2 + $(wc -w <<<"$old_kib $new_kib")))
  throughput_mib=$(( ($(tr ' ' '+' <<<"$old_kib $new_kib")) / 1024 + 1 ))
  session_limit=$(( 600 + (4 + rounds * runs_per_round) * timeout_seconds + rounds * throughput_mib * timeout_per_mib ))
  sandbox_env=()
  for setting in "${settings[@]}" VP_OLD=/sandbox/files/vmc-old VP_NEW=/sandbox/files/vmc-new \
    VP_STORE=/var/lib/vmc VP_WORK=/var/lib/vm-paths VP_AWK=/sandbox/files/smaps-rss.awk; do
    sandbox_env+=(--env "$setting")
  done
  status=0
  VMC="$tmp/vmc-new" VMC_HOME="$store" scripts/kvm-sandbox --timeout "$session_limit" "${sandbox_env[@]}" \
    --file "$tmp/vmc-old" --file "$tmp/vmc-new" --file bench/smaps-rss.awk \
    --script bench/vm-paths-runs.sh >"$out/runs.csv" 2> >(tee "$out/log.txt" >&2) || status=$?
  [ "$status" -eq 0 ] || die "the runs inside scripts/kvm-sandbox failed (exit $status; messages above and in $out/log.txt)"
fi
[ -s "$out/runs.csv" ] || die "no measurements came back ($out/log.txt)"

# The table: per figure, the median and range of the measured rounds (round ≥ 1, exit 0,
# sha256 matching) for each binary, and NEW/OLD of the medians.
awk -F, -v where="$where" -v rounds="$rounds" -v churn="$churn_mib" \
  -v old_py="$old_python3_memory" -v new_py="$new_python3_memory" '
  function add(key, value) { if (value == "") return; n[key]++; v[key, n[key]] = value + 0 }
  function median(key,   i, j, t, m) {
    m = n[key]
    for (i = 2; i <= m; i++) for (j = i; j > 1 && v[key, j - 1] > v[key, j]; j--) {
      t = v[key, j]; v[key, j] = v[key, j - 1]; v[key, j - 1] = t
    }
    return m % 2 ? v[key, (m + 1) / 2] : (v[key, m / 2] + v[key, m / 2 + 1]) / 2
  }
  function cell(key) {
    if (!n[key]) return sprintf("%10s  %-19s", "-", "")
    med[key] = median(key)
    return sprintf("%10.1f  %-19s", med[key], sprintf("(%.1f-%.1f, %d)", v[key, 1], v[key, n[key]], n[key]))
  }
  function line(figure,   o, w, ratio) {
    o = cell("old" SUBSEP figure); w = cell("new" SUBSEP figure)
    ratio = n["old" SUBSEP figure] && n["new" SUBSEP figure] && med["old" SUBSEP figure] > 0 \
      ? sprintf("%7.2f", med["new" SUBSEP figure] / med["old" SUBSEP figure]) : sprintf("%7s", "-")
    printf "%s %s %s  %s\n", o, w, ratio, figure
  }
  function label(c) {
    if (c == "startup-busybox") return "busybox true"
    if (c == "startup-python3") return "python3 true"
    if (c == "rss-python3") return "python3 sleeping"
    if (c ~ /^cat-/) { k = substr(c, 5) + 0; return k % 1024 ? sprintf("cat %d KiB", k) : sprintf("cat %d MiB", k / 1024) }
    return c
  }
  NR == 1 { next }
  {
    round = $1; bin = $2; c = label($3); ok = $7 == 0 && $8 != "no"
    if (!ok) { failed++; next }
    if (round == 0) { add(bin SUBSEP "first run (warm-up): " c ": wall (ms)", $9); next }
    if ($3 ~ /^startup-/) {
      add(bin SUBSEP c ": wall (ms)", $9)
      add(bin SUBSEP c ": vmc start -> workload exec (ms)", $10)
      add(bin SUBSEP c ":   kernel entry -> init started (ms)", $16)
      add(bin SUBSEP c ":   init started -> workload exec (ms)", $17)
    } else if ($3 ~ /^cat-/) {
      if ($11 > 0) add(bin SUBSEP c ": MiB/s (workload exec -> exit)", $6 / 1048576 / ($11 / 1000))
      add(bin SUBSEP c ": wall (ms)", $9)
    } else if ($3 == "rss-python3" && $13 != "") {
      add(bin SUBSEP c ": VMM process RSS (MiB)", $13 / 1024)
      add(bin SUBSEP c ": guest RAM resident (MiB)", $14 / 1024)
      add(bin SUBSEP c ": VMM overhead outside guest RAM (MiB)", $15 / 1024)
    }
    if (!seen[c]++) order[++cases] = c
  }
  END {
    printf "vm-paths: %d rounds, balanced order, %d MiB touched before each boot, run %s\n", rounds, churn, where
    printf "python3 runs: OLD at %s, NEW at %s (default: no -m, 256 MiB); busybox at the default\n", old_py, new_py
    printf "%10s  %-19s %10s  %-19s %7s  %s\n", "OLD median", "(min-max, runs)", "NEW median", "(min-max, runs)", "NEW/OLD", "figure"
    for (i = 1; i <= cases; i++) {
      c = order[i]
      if (c ~ /true$/) {
        line(c ": wall (ms)"); line(c ": vmc start -> workload exec (ms)")
        line(c ":   kernel entry -> init started (ms)"); line(c ":   init started -> workload exec (ms)")
      }
      else if (c ~ /^cat /) { line(c ": MiB/s (workload exec -> exit)"); line(c ": wall (ms)") }
      else { line(c ": VMM process RSS (MiB)"); line(c ": guest RAM resident (MiB)"); line(c ": VMM overhead outside guest RAM (MiB)") }
    }
    line("first run (warm-up): busybox true: wall (ms)")
    line("first run (warm-up): python3 true: wall (ms)")
    printf "failed runs (not in the table): %d%s\n", failed, failed ? " (see log.txt)" : ""
  }' "$out/runs.csv" | tee "$out/summary.txt"
echo "vm-paths: raw numbers in $out/runs.csv, this table in $out/summary.txt" >&2
