# bench/vm-paths-runs.sh: the measuring half of bench/vm-paths.sh, which runs it (POSIX sh:
# busybox sh inside scripts/kvm-sandbox, or sh on a host whose KVM boots Linux). Not meant to
# be run by hand. Writes one CSV row per run on stdout (header first), progress on stderr.
#
# Parameters (environment), all set by bench/vm-paths.sh:
#   VP_OLD, VP_NEW            the two vmc binaries
#   VP_STORE                  the image store whose images/ each binary gets a hard-linked copy of
#   VP_WORK                   a scratch directory (each binary's VMC_HOME, inputs, outputs)
#   VP_ROUNDS                 measured rounds (round 0 is the warm-up)
#   VP_TIMEOUT                seconds per run; a throughput run gets VP_TIMEOUT_PER_MIB more per MiB
#   VP_TIMEOUT_PER_MIB
#   VP_CHURN_MIB              anonymous memory touched right before each boot
#   VP_BUSYBOX_IMAGE, VP_PYTHON3_IMAGE
#   VP_OLD_PYTHON3_MEMORY, VP_NEW_PYTHON3_MEMORY   a size for -m, or "default" (no -m: 256 MiB)
#   VP_OLD_SIZES, VP_NEW_SIZES                     throughput sizes in KiB, space-separated
#   VP_AWK                    bench/smaps-rss.awk
set -u

fail() { echo "vm-paths: $*" >&2; exit 1; }
work=$VP_WORK
mkdir -p "$work" || fail "cannot create $work"

# Microseconds on the wall clock: date +%N where it exists (GNU), else busybox's adjtimex.
if [ "$(date +%N)" != "%N" ] && [ "$(date +%N)" != N ]; then
  now_us() { echo $(($(date +%s%N) / 1000)); }
else
  now_us() { adjtimex | awk '/tv_sec/ { s = $2 } /tv_usec/ { u = $2 } END { printf "%d%06d\n", s, u }'; }
fi

binary_path() { if [ "$1" = old ]; then echo "$VP_OLD"; else echo "$VP_NEW"; fi; }
python3_memory() { if [ "$1" = old ]; then echo "$VP_OLD_PYTHON3_MEMORY"; else echo "$VP_NEW_PYTHON3_MEMORY"; fi; }
sizes_of() { if [ "$1" = old ]; then echo "$VP_OLD_SIZES"; else echo "$VP_NEW_SIZES"; fi; }
memory_flag() { if [ "$1" = default ]; then echo ""; else echo "-m $1"; fi; }
# KiB of guest RAM for -m SIZE (k, m, g) or "default".
guest_kib() {
  case $1 in
    default) echo $((256 * 1024)) ;;
    *[kK]) echo "${1%?}" ;;
    *[mM]) echo $((${1%?} * 1024)) ;;
    *[gG]) echo $((${1%?} * 1024 * 1024)) ;;
    *) echo $(($1 / 1024)) ;;
  esac
}

# Each binary gets its own VMC_HOME, so neither reads caches the other wrote.
for binary in old new; do
  home=$work/home-$binary
  rm -rf "$home"
  mkdir -p "$home" || fail "cannot create $home"
  cp -al "$VP_STORE/images" "$home/images" 2>/dev/null \
    || { rm -rf "$home/images" && cp -a "$VP_STORE/images" "$home/images"; } \
    || fail "cannot copy $VP_STORE/images to $home"
done

# One input file per throughput size, the same bytes for both binaries.
for kib in $VP_OLD_SIZES $VP_NEW_SIZES; do
  [ -f "$work/input-$kib" ] && continue
  head -c $((kib * 1024)) /dev/urandom >"$work/input-$kib" || fail "cannot write $work/input-$kib"
  sha256sum <"$work/input-$kib" | cut -d' ' -f1 >"$work/input-$kib.sha256"
done

# The milestones of the --trace=json line in FILE, in microseconds since vmc started:
# "vmc_start workload_exec workload_exit torn_down kernel_entry init_started" (a "-" for a
# missing one).
milestones() {
  awk '/"milestones":\[/ {
    s = $0
    sub(/.*"milestones":\[/, "", s)
    sub(/\].*/, "", s)
    n = split(s, marks, "}")
    for (i = 1; i <= n; i++) {
      if (!match(marks[i], /"milestone":"[a-z_]+"/)) continue
      name = substr(marks[i], RSTART + 13, RLENGTH - 14)
      if (match(marks[i], /"at":[0-9]+/)) at[name] = substr(marks[i], RSTART + 5, RLENGTH - 5)
    }
  }
  function f(name) { return name in at ? at[name] : "-" }
  END { printf "%s %s %s %s %s %s\n", f("vmc_start"), f("workload_exec"), f("workload_exit"), f("torn_down"), f("kernel_entry"), f("init_started") }' "$1"
}

# milliseconds between two microsecond readings, empty if either is missing ("-" or empty).
ms_between() { if [ -n "$1" ] && [ -n "$2" ] && [ "$1" != - ] && [ "$2" != - ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1000 }'; fi; }

# The vmc process of a run started as `timeout ... vmc-old|vmc-new ...` &: busybox's timeout
# execs the command in its own process, coreutils' runs it as a child. Shell builtins only: it
# may look at every process of the host.
vmc_pid_of() {
  parent=$1
  for dir in "/proc/$parent" /proc/[0-9]*; do
    { read -r comm <"$dir/comm"; } 2>/dev/null || continue
    case $comm in vmc-old | vmc-new) ;; *) continue ;; esac
    { read -r stat <"$dir/stat"; } 2>/dev/null || continue
    # After the command name: the state, then the parent's pid.
    # shellcheck disable=SC2086 # split into fields
    set -- ${stat##*) }
    if [ "$dir" = "/proc/$parent" ] || [ "${2:-}" = "$parent" ]; then
      echo "${dir#/proc/}"
      return
    fi
  done
}

# Whether process $1 exists and has not ended: a command substitution cannot reap its parent
# shell's child, so an ended run stays a zombie until the parent waits for it.
running() {
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  # shellcheck disable=SC2086 # split into fields
  set -- ${stat##*) }
  [ "$1" != Z ]
}

# Samples the VMM's smaps every second while PID lives; prints "rss_kb guest_kb overhead_kb" of
# the last reading that still had the guest RAM mapped (bench/vmm-rss.sh's method).
sample_rss() {
  pid=$1 kib=$2 last='' vmm=''
  while running "$pid"; do
    sleep 1
    [ -n "$vmm" ] || vmm=$(vmc_pid_of "$pid")
    [ -n "$vmm" ] || continue
    reading=$(awk -v guest_kib="$kib" -v summary=1 -f "$VP_AWK" "/proc/$vmm/smaps" 2>/dev/null)
    case $reading in
      *' 0 '* | '') ;;
      *) last=$reading ;;
    esac
  done
  echo "$last"
}

echo "round,binary,case,image,memory,bytes,status,sha256_ok,wall_ms,start_to_exec_ms,exec_to_exit_ms,start_to_torn_down_ms,rss_kb,guest_kb,overhead_kb,entry_to_init_ms,init_to_exec_ms"

# run ROUND BINARY CASE IMAGE MEMORY BYTES CMD...: one boot, one CSV row. BYTES > 0 makes it a
# throughput run: that many bytes on stdin (-i), stdout checked against their sha256.
run() {
  round=$1 binary=$2 case_name=$3 image=$4 memory=$5 bytes=$6
  shift 6
  vmc=$(binary_path "$binary")
  limit=$VP_TIMEOUT input=/dev/null interactive=
  if [ "$bytes" -gt 0 ]; then
    kib=$((bytes / 1024))
    input=$work/input-$kib interactive=-i
    limit=$((VP_TIMEOUT + (kib * VP_TIMEOUT_PER_MIB + 1023) / 1024))
  fi
  # Under TCG a boot's cost depends on what ran before it; touching this much memory first
  # puts every boot in the same (fast) state (notes: kvm-on-this-host.md, section 4).
  dd if=/dev/zero of=/dev/null bs=$((VP_CHURN_MIB * 1024 * 1024)) count=1 2>/dev/null
  start=$(now_us)
  # shellcheck disable=SC2046,SC2086 # the memory flag is empty or two words
  VMC_HOME=$work/home-$binary timeout -k 10 "$limit" "$vmc" run --mode vm --rm --trace=json \
    $(memory_flag "$memory") $interactive "$image" "$@" <"$input" >"$work/stdout" 2>"$work/stderr" &
  pid=$!
  rss=
  [ "$case_name" = rss-python3 ] && rss=$(sample_rss "$pid" "$(guest_kib "$memory")")
  status=0
  wait "$pid" || status=$?
  end=$(now_us)
  wall=$(ms_between "$start" "$end")
  # shellcheck disable=SC2046
  set -- $(milestones "$work/stderr")
  sha_ok=
  if [ "$bytes" -gt 0 ]; then
    if [ "$(sha256sum <"$work/stdout" | cut -d' ' -f1)" = "$(cat "$work/input-$kib.sha256")" ]; then sha_ok=yes; else sha_ok=no; fi
  fi
  entry_to_init=$(ms_between "${5:-}" "${6:-}")
  init_to_exec=$(ms_between "${6:-}" "${2:-}")
  # shellcheck disable=SC2086 # rss is empty or three numbers
  set -- "${1:-}" "${2:-}" "${3:-}" "${4:-}" $rss
  printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$round" "$binary" "$case_name" "$image" \
    "$memory" "$bytes" "$status" "$sha_ok" "$wall" "$(ms_between "$1" "$2")" "$(ms_between "$2" "$3")" \
    "$(ms_between "$1" "$4")" "${5:-}" "${6:-}" "${7:-}" "$entry_to_init" "$init_to_exec"
  echo "vm-paths: round $round $binary $case_name: ${wall} ms wall, exit $status${sha_ok:+, sha256 $sha_ok}${5:+, RSS $5 kB}" >&2
  if [ "$status" -ne 0 ] || [ "$sha_ok" = no ]; then
    [ $(((end - start) / 1000000)) -ge "$limit" ] && echo "vm-paths:   timed out after $limit s" >&2
    grep -v '"milestones":\[' "$work/stderr" | tail -n 2 | sed 's/^/vm-paths:   /' >&2
  fi
  rm -f "$work/stdout" "$work/stderr"
}

# Round 0, the warm-up: the first run of each image writes out the guest init and builds the
# image's caches (unpacked rootfs, initramfs archive or disk) in that binary's store.
for binary in old new; do
  run 0 "$binary" startup-busybox "$VP_BUSYBOX_IMAGE" default 0 true
  run 0 "$binary" startup-python3 "$VP_PYTHON3_IMAGE" "$(python3_memory "$binary")" 0 true
done

round=1
while [ "$round" -le "$VP_ROUNDS" ]; do
  # Balanced order: odd rounds old first, even rounds new first, in every case, so each binary
  # follows the other equally often.
  if [ $((round % 2)) -eq 1 ]; then order="old new"; else order="new old"; fi
  for binary in $order; do
    run "$round" "$binary" startup-busybox "$VP_BUSYBOX_IMAGE" default 0 true
  done
  for binary in $order; do
    run "$round" "$binary" startup-python3 "$VP_PYTHON3_IMAGE" "$(python3_memory "$binary")" 0 true
  done
  # shellcheck disable=SC2086 # lists of sizes
  for kib in $(echo $VP_OLD_SIZES $VP_NEW_SIZES | tr ' ' '\n' | sort -nu); do
    for binary in $order; do
      case " $(sizes_of "$binary") " in
        *" $kib "*) run "$round" "$binary" "cat-${kib}k" "$VP_BUSYBOX_IMAGE" default $((kib * 1024)) cat ;;
      esac
    done
  done
  for binary in $order; do
    run "$round" "$binary" rss-python3 "$VP_PYTHON3_IMAGE" "$(python3_memory "$binary")" 0 \
      python3 -c 'import time; time.sleep(8)'
  done
  round=$((round + 1))
done
rm -rf "$work"
