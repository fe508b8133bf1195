#!/usr/bin/env bash
# VM mode end to end: the shared exit-status table, flags, --memory/--cpus as the guest sees
# them, run isolation, the initramfs cache, and parity with container mode on the same
# commands (tests/parity-cases.txt). Runs VM mode directly where this host's KVM can boot
# Linux, else batched into ONE scripts/kvm-sandbox session (an emulated KVM host).
# Needs: scripts/setup.sh done (vmc built, guest kernel, default images). Root for containers.
# Last line: "e2e: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
vmc=${VMC:-$PWD/target/release/vmc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }

# --- the VM-side script: each case prints "@@BEGIN name", its stdout, "@@END name status" ---
vm_script=$work/vm-cases.sh
{
  echo 'case_() { name=$1; shift; echo "@@BEGIN $name"; "$@"; status=$?; echo; echo "@@END $name $status"; }'
  echo 'vm() { vmc run --mode vm --rm "$@"; }'
  while IFS='|' read -r name args; do
    case $name in ''|'#'*) continue ;; esac
    echo "case_ parity-$name eval 'vm $(printf '%s' "$args" | sed "s/'/'\\\\''/g")'"
  done < tests/parity-cases.txt
  cat <<'CASES'
case_ signal vm busybox sh -c 'kill -TERM $$'
case_ trace sh -c 'vmc run --mode vm --rm --trace=json busybox true 2>&1 >/dev/null'
case_ memtotal vm -m 128m busybox sh -c 'grep MemTotal /proc/meminfo'
case_ cpus vm --cpus 2 busybox sh -c 'grep -c ^processor /proc/cpuinfo'
case_ write-run vm busybox sh -c 'echo changed > /etc/marker; cat /etc/marker'
case_ write-isolated vm busybox sh -c 'cat /etc/marker 2>/dev/null || echo no marker'
case_ cache-before sh -c 'ls -i "$VMC_HOME"/initramfs/*.cpio'
case_ cache-second-run vm busybox true
case_ cache-after sh -c 'ls -i "$VMC_HOME"/initramfs/*.cpio'
case_ kept-record vmc run --mode vm --name kept busybox sh -c 'exit 6'
case_ ps sh -c 'vmc ps -a | grep kept'
CASES
} > "$vm_script"

if "$vmc" doctor --check vm >/dev/null 2>&1; then
  echo "VM mode: this host's KVM runs Linux guests: running the cases directly"
  PATH="$(dirname "$vmc"):$PATH" sh "$vm_script" > "$work/vm.out" 2> "$work/vm.err"
else
  echo "VM mode: this host's KVM cannot run Linux guests: running the cases in ONE scripts/kvm-sandbox session"
  VMC="$vmc" scripts/kvm-sandbox --timeout 900 --script "$vm_script" > "$work/vm.out" 2> "$work/vm.err"
  sandbox_status=$?
  if [ "$sandbox_status" -eq 125 ]; then
    fail kvm-sandbox "the emulated KVM host failed: $(tail -3 "$work/vm.err")"
  fi
fi

# vm_case NAME FIELD: FIELD=status or stdout (without the separator newline).
vm_case() {
  awk -v name="$1" -v field="$2" '
    $0 == "@@BEGIN " name { inside = 1; out = ""; next }
    inside && $1 == "@@END" && $2 == name { inside = 0; status = $3; next }
    inside { out = out $0 "\n" }
    END { if (field == "status") print status; else printf "%s", substr(out, 1, length(out) - 1) }
  ' "$work/vm.out"
}

expect() { # expect NAME STATUS STDOUT
  local got_status got_stdout
  got_status=$(vm_case "$1" status); got_stdout=$(vm_case "$1" stdout)
  if [ "$got_status" = "$2" ] && [ "$got_stdout" = "$3" ]; then pass "vm $1"
  else fail "vm $1" "expected status $2 and stdout [$3], got status [$got_status] stdout [$got_stdout] (stderr: $(grep -v '^$' "$work/vm.err" | tail -2 | tr '\n' ' '))"; fi
}

expect parity-echo 0 "hello world"
expect parity-exit3 3 "hi"
expect parity-not-found 127 ""
expect parity-not-executable 126 ""
expect signal 143 ""
expect parity-env-workdir 0 $'hi\n/tmp'
expect cpus 0 "2"
expect write-run 0 "changed"
expect write-isolated 0 "no marker"
expect kept-record 6 ""

# The VM timeline: every milestone, in order, at non-decreasing times.
trace=$(vm_case trace stdout)
milestones=$(printf '%s' "$trace" | grep -o '"milestone":"[a-z_]*"' | cut -d'"' -f4 | tr '\n' ' ')
times=$(printf '%s' "$trace" | grep -o '"at":[0-9]*,"milestone"' | cut -d: -f2 | cut -d, -f1 | tr '\n' ' ')
if [ "$milestones" = "vmc_start runtime_ready kernel_entry init_started workload_exec workload_exit torn_down " ] &&
   printf '%s\n' $times | sort -n -c 2>/dev/null; then
  pass "vm trace: milestones complete and ordered"
else
  fail "vm trace" "milestones [$milestones] at [$times]"
fi

memtotal_kib=$(vm_case memtotal stdout | awk '{print $2}')
if [ -n "$memtotal_kib" ] && [ "$memtotal_kib" -le $((128 * 1024)) ] && [ "$memtotal_kib" -ge $((100 * 1024)) ]; then
  pass "vm memtotal (--memory 128m: MemTotal ${memtotal_kib} kB)"
else
  fail "vm memtotal" "MemTotal [$memtotal_kib] kB is not within the kernel's reservation of 128 MiB"
fi
if [ -n "$(vm_case cache-before stdout)" ] && [ "$(vm_case cache-before stdout)" = "$(vm_case cache-after stdout)" ]; then
  pass "vm initramfs cache reused (same file, same inode)"
else
  fail "vm initramfs cache" "before [$(vm_case cache-before stdout)] after [$(vm_case cache-after stdout)]"
fi
if vm_case ps stdout | grep -q "Exited (6)"; then pass "vm ps shows the kept run"; else fail "vm ps" "$(vm_case ps stdout)"; fi

# --- parity: the same cases in container mode on this host ---
if [ "$(id -u)" != 0 ]; then
  skipped=$((skipped + 1)); echo "SKIPPED: parity needs root for container mode"
else
  while IFS='|' read -r name args; do
    case $name in ''|'#'*) continue ;; esac
    container_stdout=$(eval "\"\$vmc\" run --mode container --rm $args" 2>/dev/null)
    container_status=$?
    vm_status=$(vm_case "parity-$name" status); vm_stdout=$(vm_case "parity-$name" stdout)
    if [ "$container_status" = "$vm_status" ] && [ "$container_stdout" = "$vm_stdout" ]; then
      pass "parity $name (status $vm_status)"
    else
      fail "parity $name" "container: status $container_status stdout [$container_stdout]; vm: status [$vm_status] stdout [$vm_stdout]"
    fi
  done < tests/parity-cases.txt
fi

echo "e2e: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
