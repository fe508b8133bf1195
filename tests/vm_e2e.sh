#!/usr/bin/env bash
# VM mode end to end: the shared exit-status table, flags, --memory/--cpus as the guest sees
# them, run isolation, the image disk cache, the VMM's seccomp filters on every thread (and
# none with seccomp=unconfined), parity with container mode on the same commands
# (tests/parity-cases.txt), bad input (a guest that never reports, a kernel without erofs, a
# damaged disk cache: one line, exit 125, nothing left; SIGTERM while a disk is built: the
# build stopped, nothing left), and stdin, signals and terminal sessions (-i, -t) checked alike in both modes
# (a pseudo-terminal driven by crates/vmc-runtime/examples/pty_session.rs). Runs VM mode directly where this host's KVM can boot
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

cargo build --quiet -p vmc-runtime --example pty_session || fail pty_session "cannot build the pseudo-terminal driver"
pty_session=${CARGO_TARGET_DIR:-$PWD/target}/debug/examples/pty_session
# The bad guests of the robustness cases: a tiny guest that never reports (the boot
# watchdog), and a guest kernel without erofs (built once, cached like the default one).
files=$work/files
mkdir -p "$files"
{ as --64 -o "$work/silent.o" crates/vmc-vm/tests/guests/silent.S &&
  ld -m elf_x86_64 -static -nostdlib -Ttext=0x200000 -e _start -o "$files/silent.elf" "$work/silent.o"; } ||
  fail silent-guest "cannot build crates/vmc-vm/tests/guests/silent.S"
without_erofs=$(kernels/build.sh --without CONFIG_EROFS_FS | tail -n 1) && cp "$without_erofs" "$files/vmlinux-without-erofs" ||
  fail kernel-without-erofs "kernels/build.sh --without CONFIG_EROFS_FS failed"

# Each case prints "@@BEGIN name", its stdout, "@@END name status".
case_function='case_() { name=$1; shift; echo "@@BEGIN $name"; "$@"; status=$?; echo; echo "@@END $name $status"; }'

# --- stdin and terminal cases, the same script for both modes ($mode, $pty set by the caller) ---
interactive_cases() {
  echo "$case_function"
  cat <<'CASES'
run_() { vmc run --mode "$mode" --rm "$@"; }
all_bytes() { i=0; while [ $i -lt 512 ]; do printf "\\$(printf %o $((i % 256)))"; i=$((i + 1)); done; }
case_ stdin-pipe sh -c 'printf "hello\nworld" | vmc run --mode "$mode" --rm -i busybox cat'
bytes=$(mktemp); export bytes; all_bytes > "$bytes"
case_ stdin-binary sh -c 'sha256sum < "$bytes"; vmc run --mode "$mode" --rm -i busybox sha256sum < "$bytes"'
rm -f "$bytes"
case_ stdin-empty run_ -i busybox wc -c < /dev/null
case_ stdin-without-i sh -c 'echo ignored | vmc run --mode "$mode" --rm busybox cat'
# signal_run NAME SIGNAL COUNT SCRIPT: runs SCRIPT in the background (a --rm run named NAME
# run), waits for it to print "started", sends vmc SIGNAL COUNT times a second apart, then
# prints the run's output and how many records of NAME are left; returns vmc's status.
signal_run() {
  out=$(mktemp)
  vmc run --mode "$mode" --rm --name "$1" busybox sh -c "$4" > "$out" 2>&1 &
  pid=$! tries=0
  until grep -q started "$out" || [ $tries -ge 600 ]; do sleep 0.2; tries=$((tries + 1)); done
  sent=0
  while [ $sent -lt "$3" ]; do [ $sent -gt 0 ] && sleep 1; kill -"$2" $pid; sent=$((sent + 1)); done
  wait $pid; status=$?
  cat "$out"; rm -f "$out"
  echo "records left: $(vmc ps -a | grep -c " $1\$")"
  return $status
}
case_ signal-term signal_run sig-term TERM 1 'trap "echo got TERM; exit 9" TERM; echo started; while :; do sleep 0.2; done'
case_ signal-three-interrupts signal_run sig-int INT 3 'trap "echo INT" INT; echo started; while :; do sleep 0.2; done'
case_ tty-session sh -c '"$pty" --size 30x100 --expect READY --send "abc\n" --expect abc --send "\x04" -- vmc run --mode "$mode" --rm -it busybox sh -c "stty size; echo READY; cat; echo cat-ended" 2>&1'
case_ tty-resize sh -c '"$pty" --size 24x80 --expect READY --resize 40x120 --expect "40 120" --send "\x03" -- vmc run --mode "$mode" --rm -it busybox sh -c "trap \"stty size\" WINCH; trap \"echo bye; exit 3\" INT; echo READY; while :; do sleep 0.2; done" 2>&1'
case_ tty-ctrl-c sh -c '"$pty" --expect READY --send "\x03" -- vmc run --mode "$mode" --rm -it busybox sh -c "trap \"echo got-INT; exit 5\" INT; echo READY; while :; do sleep 1; done" 2>&1'
CASES
}

# --- the VM-side script ---
vm_script=$work/vm-cases.sh
{
  echo "$case_function"
  echo 'vm() { vmc run --mode vm --rm "$@"; }'
  while IFS='|' read -r name args; do
    case $name in ''|'#'*) continue ;; esac
    echo "case_ parity-$name eval 'vm $(printf '%s' "$args" | sed "s/'/'\\\\''/g")'"
  done < tests/parity-cases.txt
  cat <<'CASES'
case_ signal vm busybox sh -c 'kill -TERM $$'
case_ init-forwards vm busybox sh -c 'trap "echo got TERM; exit 7" TERM; kill -TERM 1; sleep 30 & wait'
case_ guest-world vm busybox sh -c 'ifconfig lo | grep -o UP; test -e /vmc/run.json || echo settings-removed'
case_ stdout-drained sh -c 'vmc run --mode vm --rm busybox sh -c "yes x | head -c 1000000; echo err >&2" 2>/dev/null | wc -c'
case_ stdout-stderr-apart sh -c 'vmc run --mode vm --rm busybox sh -c "echo out; echo err >&2" 2>&1 >/dev/null'
case_ trace sh -c 'vmc run --mode vm --rm --trace=json busybox true 2>&1 >/dev/null'
case_ memtotal vm -m 128m busybox sh -c 'grep MemTotal /proc/meminfo'
case_ cpus vm --cpus 2 busybox sh -c 'grep -c ^processor /proc/cpuinfo'
case_ write-run vm busybox sh -c 'echo changed > /etc/marker; cat /etc/marker'
case_ write-isolated vm busybox sh -c 'cat /etc/marker 2>/dev/null || echo no marker'
case_ debian-write-run vm debian:minbase sh -c 'echo changed > /etc/marker; cat /etc/marker'
case_ debian-write-isolated vm debian:minbase sh -c 'cat /etc/marker 2>/dev/null || echo no marker'
case_ python3-oom-report sh -c 'vmc run --mode vm --rm debian:python3 python3 -c "bytearray(400 << 20)" 2>&1 >/dev/null | grep -c "OOM killer"'
case_ cache-before sh -c 'ls -i "$VMC_HOME"/disks/*.erofs'
case_ cache-second-run vm busybox true
case_ cache-after sh -c 'ls -i "$VMC_HOME"/disks/*.erofs'
case_ kept-record vmc run --mode vm --name kept busybox sh -c 'exit 6'
case_ ps sh -c 'vmc ps -a | grep kept'
# seccomp_threads [OPTION...]: while a `-i` run (stdin held open) sleeps in the guest, prints
# "name mode" for every thread of the vmc process (mode 2: a seccomp filter, 0: none). KVM's
# kernel workers in the thread group (kvm-nx-lpage-recovery on newer kernels) never run user
# code and are left out.
seccomp_threads() {
  out=$(mktemp)
  sleep 60 | vmc run --mode vm --rm -i "$@" busybox sh -c 'echo started; sleep 3' > "$out" 2>&1 &
  pid=$! tries=0
  until grep -q started "$out" || [ $tries -ge 600 ]; do sleep 0.2; tries=$((tries + 1)); done
  for task in /proc/$pid/task/*; do
    name=$(cat "$task/comm")
    case $name in kvm-*) continue ;; esac
    echo "$name $(sed -n 's/^Seccomp:[[:space:]]*//p' "$task/status")"
  done | sort
  wait $pid; status=$?
  grep -v started "$out" >&2; rm -f "$out"
  return $status
}
case_ seccomp-threads seccomp_threads
case_ seccomp-unconfined seccomp_threads --security-opt seccomp=unconfined
CASES
  echo "export mode=vm pty=/sandbox/files/pty_session files=/sandbox/files"
  interactive_cases
  cat <<'CASES'
# one_line PATTERN CMD...: runs CMD; prints how many lines it wrote (stdout and stderr), then
# "matched" if they match PATTERN, else the lines; returns CMD's status.
one_line() {
  pattern=$1; shift
  out=$("$@" 2>&1); status=$?
  echo "lines $(printf '%s\n' "$out" | grep -c .)"
  if printf '%s\n' "$out" | grep -q "$pattern"; then echo matched; else printf '%s\n' "$out"; fi
  return $status
}
case_ boot-watchdog one_line 'did not report that its init started within 2 s.*--boot-timeout SECONDS' vmc run --mode vm --rm --kernel "$files/silent.elf" --boot-timeout 2 busybox true
case_ kernel-without-erofs one_line 'the guest kernel lacks CONFIG_EROFS_FS, which VM mode needs: build the guest kernel with kernels/build.sh' vmc run --mode vm --rm --kernel "$files/vmlinux-without-erofs" busybox true
# A damaged disk cache: a superblock overwritten inside (magic and block size intact), then,
# once rebuilt, a disk cut short.
for disk in "$VMC_HOME"/disks/*.erofs; do printf 'VMC!' | dd of="$disk" bs=1 seek=1104 conv=notrunc 2>/dev/null; done
case_ disk-corrupt-superblock one_line 'cached disk .* is corrupt: its superblock checksum is .* (delete it with `rm ' vmc run --mode vm --rm busybox true
rm -f "$VMC_HOME"/disks/*.erofs
# interrupted_setup SIGNAL IMAGE: a VM run of IMAGE, whose disk is not cached, sent SIGNAL
# while mkfs.erofs builds that disk; prints vmc's one line and what is left (mkfs processes,
# temporary and cached disks, records of the run); returns vmc's status.
interrupted_setup() {
  err=$(mktemp)
  vmc run --mode vm --rm --name interrupted "$2" true 2> "$err" &
  pid=$! tries=0
  until grep -qx mkfs.erofs /proc/[0-9]*/comm 2>/dev/null || [ $tries -ge 1200 ]; do sleep 0.05; tries=$((tries + 1)); done
  kill -"$1" $pid
  wait $pid; status=$?
  cat "$err"; rm -f "$err"
  echo "mkfs left: $(grep -lx mkfs.erofs /proc/[0-9]*/comm 2>/dev/null | wc -l)"
  echo "disks left: $(find "$VMC_HOME" \( -name 'disk-*' -o -name '*.erofs' \) | wc -l)"
  echo "records left: $(vmc ps -a | grep -c ' interrupted$')"
  return $status
}
case_ setup-interrupted interrupted_setup TERM debian:minbase
case_ disk-rebuilt vm busybox echo rebuilt
for disk in "$VMC_HOME"/disks/*.erofs; do truncate -s $(($(wc -c < "$disk") - 4096)) "$disk"; done
case_ disk-truncated one_line 'cached disk .* is corrupt: it is [0-9]* bytes long, its superblock says [0-9]* (truncated or extended)' vmc run --mode vm --rm busybox true
case_ nothing-left sh -c 'find "$VMC_HOME" \( -name scratch.ext4 -o -name run.cpio -o -name "disk-*" \) | wc -l'
CASES
} > "$vm_script"

if "$vmc" doctor --check vm >/dev/null 2>&1; then
  echo "VM mode: this host's KVM runs Linux guests: running the cases directly"
  sed "s|^export mode=vm pty=.*|export mode=vm pty=$pty_session files=$files|" "$vm_script" > "$work/vm-direct.sh"
  PATH="$(dirname "$vmc"):$PATH" sh "$work/vm-direct.sh" > "$work/vm.out" 2> "$work/vm.err"
else
  echo "VM mode: this host's KVM cannot run Linux guests: running the cases in ONE scripts/kvm-sandbox session"
  VMC="$vmc" scripts/kvm-sandbox --timeout 1200 --file "$pty_session" --file "$files/silent.elf" \
    --file "$files/vmlinux-without-erofs" --script "$vm_script" > "$work/vm.out" 2> "$work/vm.err"
  sandbox_status=$?
  if [ "$sandbox_status" -eq 125 ]; then
    fail kvm-sandbox "the emulated KVM host failed: $(tail -3 "$work/vm.err")"
  fi
fi

# case_in FILE NAME FIELD: FIELD=status or stdout (without the separator newline, without the
# carriage returns a terminal adds).
case_in() {
  awk -v name="$2" -v field="$3" '
    $0 == "@@BEGIN " name { inside = 1; out = ""; next }
    inside && $1 == "@@END" && $2 == name { inside = 0; status = $3; next }
    inside { out = out $0 "\n" }
    END { if (field == "status") print status; else printf "%s", substr(out, 1, length(out) - 1) }
  ' "$1" | tr -d '\r'
}
vm_case() { case_in "$work/vm.out" "$@"; }

expect_in() { # expect_in MODE NAME STATUS STDOUT
  local got_status got_stdout
  got_status=$(case_in "$work/$1.out" "$2" status); got_stdout=$(case_in "$work/$1.out" "$2" stdout)
  if [ "$got_status" = "$3" ] && [ "$got_stdout" = "$4" ]; then pass "$1 $2"
  else fail "$1 $2" "expected status $3 and stdout [$4], got status [$got_status] stdout [$got_stdout] (stderr: $(grep -v '^$' "$work/$1.err" | tail -2 | tr '\n' ' '))"; fi
}
expect() { expect_in vm "$@"; }

expect parity-echo 0 "hello world"
expect parity-exit3 3 "hi"
expect parity-not-found 127 ""
expect parity-not-executable 126 ""
expect signal 143 ""
expect parity-env-workdir 0 $'hi\n/tmp'
expect parity-workload-args 0 "--help -e FOO=1"
expect parity-tty-term 0 "TERM=xterm"
expect parity-etc-files 0 $'127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\nparity'
expect parity-resolv-conf 0 "resolv ok"
expect cpus 0 "2"
expect write-run 0 "changed"
expect write-isolated 0 "no marker"
expect kept-record 6 ""
expect debian-write-run 0 "changed"
expect debian-write-isolated 0 "no marker"
expect python3-oom-report 0 "1"
expect init-forwards 7 "got TERM"
expect guest-world 0 $'UP\nsettings-removed'
expect stdout-drained 0 "1000000"
expect stdout-stderr-apart 0 "err"
expect seccomp-threads 0 $'control 0\nvmc 0\nvmc-vcpu0 2\nvmc-vm 2\nvmc-vm-devices 2\nvmc-vm-launcher 2\nvmc-vm-signals 2\nvmc-vm-stderr 2\nvmc-vm-stdin 2\nvmc-vm-stdout 2'
expect seccomp-unconfined 0 $'control 0\nvmc 0\nvmc-vcpu0 0\nvmc-vm 0\nvmc-vm-devices 0\nvmc-vm-signals 0\nvmc-vm-stderr 0\nvmc-vm-stdin 0\nvmc-vm-stdout 0'
expect boot-watchdog 125 $'lines 1\nmatched'
expect kernel-without-erofs 125 $'lines 1\nmatched'
expect disk-corrupt-superblock 125 $'lines 1\nmatched'
expect setup-interrupted 143 $'vmc: interrupted by SIGTERM before the workload started: the run was removed\nmkfs left: 0\ndisks left: 0\nrecords left: 0'
expect disk-rebuilt 0 "rebuilt"
expect disk-truncated 125 $'lines 1\nmatched'
expect nothing-left 0 "0"

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
  pass "vm image disk cache reused (same file, same inode)"
else
  fail "vm image disk cache" "before [$(vm_case cache-before stdout)] after [$(vm_case cache-after stdout)]"
fi
if vm_case ps stdout | grep -q "Exited (6)"; then pass "vm ps shows the kept run"; else fail "vm ps" "$(vm_case ps stdout)"; fi

# --- stdin and terminals: the same checks in both modes ---
check_interactive() { # check_interactive MODE
  expect_in "$1" stdin-pipe 0 $'hello\nworld'
  expect_in "$1" stdin-empty 0 "0"
  expect_in "$1" stdin-without-i 0 ""
  local hashes
  hashes=$(case_in "$work/$1.out" stdin-binary stdout | awk '{print $1}')
  if [ "$(case_in "$work/$1.out" stdin-binary status)" = 0 ] && [ "$(printf '%s\n' "$hashes" | wc -l)" = 2 ] &&
     [ "$(printf '%s\n' "$hashes" | uniq | wc -l)" = 1 ]; then
    pass "$1 stdin-binary (every byte value arrives unchanged)"
  else
    fail "$1 stdin-binary" "sha256 on the host and in the workload differ: [$hashes]"
  fi
  expect_in "$1" signal-term 9 $'started\ngot TERM\nrecords left: 0'
  expect_in "$1" signal-three-interrupts 137 $'started\nINT\nINT\nvmc: interrupted 3 times: killing the workload\nrecords left: 0'
  expect_in "$1" tty-session 0 $'30 100\nREADY\nabc\nabc\ncat-ended\npty_session: terminal restored'
  expect_in "$1" tty-resize 3 $'READY\n40 120\n^Cbye\npty_session: terminal restored'
  expect_in "$1" tty-ctrl-c 5 $'READY\n^Cgot-INT\npty_session: terminal restored'
}
check_interactive vm

# --- parity: the same cases in container mode on this host ---
if [ "$(id -u)" != 0 ]; then
  skipped=$((skipped + 9)); echo "SKIPPED: stdin, signal and terminal cases in container mode need root"
  skipped=$((skipped + 1)); echo "SKIPPED: parity needs root for container mode"
else
  { echo "export mode=container pty=$pty_session"; interactive_cases; } > "$work/container-cases.sh"
  PATH="$(dirname "$vmc"):$PATH" sh "$work/container-cases.sh" > "$work/container.out" 2> "$work/container.err"
  check_interactive container
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
