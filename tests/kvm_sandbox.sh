#!/usr/bin/env bash
# End-to-end tests of scripts/kvm-sandbox (the emulated full-KVM host):
#   - a command's stdout, stderr and exit code come back byte for byte
#   - --script batch mode: all 256 byte values + 1 MB of random data unchanged, --env and VMC_*
#     pass-through, --file copied in, /dev/kvm present and kvm_amd loaded inside
#   - an L1 failure (timeout) gives exit 125 and one line naming the problem; an L1 that stops
#     without reporting or hangs (no heartbeat) is run once more, said on stderr
#   - SIGTERM / SIGINT to the sandbox leave no qemu and no temp dir behind
#   - VM mode end to end: `vmc run --mode vm --rm busybox sh -c 'echo hi; exit 3'` inside L1
#     boots the guest kernel under L1's KVM (skipped without vmc, guest kernel or busybox image)
# Nine L1 boots, about 5-20 s each, and two 30 s hangs (the L2 boot adds a few seconds). Last line: "e2e: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
sandbox=$PWD/scripts/kvm-sandbox

passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); echo "kvm_sandbox: $1 ... ok"; }
fail() { failed=$((failed + 1)); echo "kvm_sandbox: $1 ... FAILED: $2"; }
finish() { echo "e2e: $passed passed, $failed failed, $skipped skipped"; exit $((failed > 0)); }

if ! command -v qemu-system-x86_64 >/dev/null && [ "$(id -u)" -ne 0 ]; then
    echo "SKIPPED: qemu-system-x86_64 is missing and installing it needs root"
    skipped=12
    finish
fi

work=$(mktemp -d)
# Each sandbox gets its own TMPDIR, so leftovers (temp dirs, qemu processes whose command line
# names it) are attributable to the test that made them.
trap 'rm -rf "$work"' EXIT

# leftovers DIR: prints what a finished sandbox left behind under its TMPDIR DIR.
leftovers() {
    ls -A "$1"
    pgrep -af -- "$1" | grep qemu-system || true
}

# 1. stdout / stderr / exit code of a single command, byte-exact.
mkdir "$work/t1"
TMPDIR=$work/t1 "$sandbox" sh -c 'printf "a\nb"; printf "e" >&2; exit 7' >"$work/out1" 2>"$work/err1"
status=$?
if [ "$status" -ne 7 ]; then
    fail "command exit code" "expected 7, got $status (stderr: $(head -c 300 "$work/err1"))"
elif ! cmp -s "$work/out1" <(printf 'a\nb'); then
    fail "command exit code" "stdout differs: $(od -c "$work/out1" | head -n 3)"
elif ! cmp -s "$work/err1" <(printf 'e'); then
    fail "command exit code" "stderr differs: $(od -c "$work/err1" | head -n 3)"
elif [ -n "$(leftovers "$work/t1")" ]; then
    fail "command exit code" "left behind: $(leftovers "$work/t1")"
else
    pass "command stdout/stderr/exit code byte-exact"
fi

# 2. batch mode: binary data, environment, KVM.
cat >"$work/batch.sh" <<'EOF'
i=0
while [ $i -lt 256 ]; do printf "\\$(printf %03o $i)"; i=$((i + 1)); done
head -c 1000000 /dev/urandom >/tmp/random
cat /tmp/random
echo "sha=$(sha256sum </tmp/random | cut -d' ' -f1)" >&2
echo "env=[$GREETING][$VMC_TEST_PASSTHROUGH][$VMC_HOME][$VMC_CACHE]" >&2
echo "file=$(sha256sum </sandbox/files/data.bin | cut -d' ' -f1)" >&2
[ -c /dev/kvm ] && echo "kvm-device" >&2
grep -q '^kvm_amd ' /proc/modules && echo "kvm_amd-loaded" >&2
exit 42
EOF
mkdir "$work/t2"
head -c 4096 /dev/urandom >"$work/data.bin"
data_sha=$(sha256sum <"$work/data.bin" | cut -d' ' -f1)
TMPDIR=$work/t2 VMC_TEST_PASSTHROUGH=yes "$sandbox" --env "GREETING=it's a b" --file "$work/data.bin" \
    --script "$work/batch.sh" \
    >"$work/out2" 2>"$work/err2"
status=$?
i=0
while [ $i -lt 256 ]; do printf "\\$(printf %03o $i)"; i=$((i + 1)); done >"$work/bytes"
if [ "$status" -ne 42 ]; then
    fail "script exit code" "expected 42, got $status (stderr: $(head -c 300 "$work/err2"))"
else
    pass "script exit code"
fi
if [ "$(stat -c %s "$work/out2")" -eq 1000256 ] && cmp -s <(head -c 256 "$work/out2") "$work/bytes" \
    && grep -qx "sha=$(tail -c 1000000 "$work/out2" | sha256sum | cut -d' ' -f1)" "$work/err2"; then
    pass "binary stdout (256 byte values + 1 MB random) unchanged"
else
    fail "binary stdout unchanged" "size $(stat -c %s "$work/out2"), stderr: $(head -c 300 "$work/err2")"
fi
if grep -qxF "env=[it's a b][yes][/var/lib/vmc][/var/cache/vmc]" "$work/err2"; then
    pass "--env and VMC_* pass-through"
else
    fail "--env and VMC_* pass-through" "got: $(grep '^env=' "$work/err2")"
fi
if grep -qx "file=$data_sha" "$work/err2" && [ "$(sha256sum <"$work/data.bin" | cut -d' ' -f1)" = "$data_sha" ]; then
    pass "--file copied in unchanged"
else
    fail "--file copied in unchanged" "got: $(grep '^file=' "$work/err2"), expected $data_sha"
fi
if grep -qx kvm-device "$work/err2" && grep -qx kvm_amd-loaded "$work/err2"; then
    pass "/dev/kvm present and kvm_amd loaded inside"
else
    fail "/dev/kvm inside" "stderr: $(head -c 300 "$work/err2")"
fi

# 3. L1 failure: a timeout is exit 125 with one line, and nothing is left behind.
mkdir "$work/t3"
TMPDIR=$work/t3 "$sandbox" --timeout 2 sleep 100 >"$work/out3" 2>"$work/err3"
status=$?
if [ "$status" -eq 125 ] && [ "$(wc -l <"$work/err3")" -eq 1 ] && grep -q "timed out after 2 s" "$work/err3" \
    && [ -z "$(leftovers "$work/t3")" ]; then
    pass "timeout gives exit 125 and one line"
else
    fail "timeout gives exit 125" "status $status, stderr: $(cat "$work/err3"), left: $(leftovers "$work/t3")"
fi

# 3b. An emulated host that stops without reporting, or hangs (its heartbeat stopped), gets
# a second session, said on stderr; failing again, exit 125 with the reason in one line. Only
# the last session's output is passed on ("lost" once).
# retried NAME EXPECTED-REASON SANDBOX-ARGS...: runs the sandbox and checks all of that.
retried() {
    local name=$1 reason=$2 dir=$work/t3$1
    shift 2
    mkdir "$dir"
    TMPDIR=$dir "$sandbox" "$@" >"$dir.out" 2>"$dir.err"
    local status=$?
    if [ "$status" -eq 125 ] && [ "$(wc -l <"$dir.err")" -eq 2 ] \
        && [ "$(grep -c "$reason" "$dir.err")" -eq 2 ] && grep -q "running the session once more" "$dir.err" \
        && [ "$(cat "$dir.out")" = lost ] && [ -z "$(leftovers "$dir")" ]; then
        pass "$name: retried once, then exit 125 and one line"
    else
        fail "$name: retried once" "status $status, stderr: $(cat "$dir.err"), left: $(leftovers "$dir")"
    fi
}
retried stopped "stopped without reporting an exit code" sh -c 'echo lost; poweroff -f'
# Stops every other child of L1's init (the heartbeat loop), then waits.
retried hung "no heartbeat on its console for 30 s" --hang 30 --timeout 300 sh -c '
    for stat in /proc/[0-9]*/stat; do
        read -r pid _ _ parent _ <"$stat"
        [ "$parent" = 1 ] && [ "$pid" != "$$" ] && kill -STOP "$pid"
    done
    echo lost; sleep 1000'

# 4. Interrupting the sandbox (TERM, then INT as Ctrl-C sends) kills its qemu and cleans up.
for signal in TERM INT; do
    if [ "$signal" = INT ] && ! command -v python3 >/dev/null; then
        echo "SKIPPED: SIGINT test needs python3 to un-ignore SIGINT for a background job"
        skipped=$((skipped + 1))
        continue
    fi
    mkdir "$work/t4$signal"
    # Background jobs of a script start with SIGINT ignored; restore the default so the
    # sandbox can trap it as it does in an interactive terminal.
    TMPDIR=$work/t4$signal python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$sandbox" sleep 100 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 50); do # wait until qemu runs
        pgrep -f -- "$work/t4$signal" | grep -qv "^$pid$" && break
        sleep 0.2
    done
    sleep 1
    kill -"$signal" "$pid"
    wait "$pid"
    sleep 0.5
    left=$(leftovers "$work/t4$signal")
    if [ -z "$left" ]; then
        pass "SIG$signal leaves no qemu or temp dir"
    else
        fail "SIG$signal leaves no qemu or temp dir" "left: $left"
    fi
done

# 5. VM mode end to end (L2 inside L1), with what the sandbox copies in by default.
cache=${VMC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmc}
vmc=${VMC:-}
if [ -z "$vmc" ]; then
    for candidate in "${CARGO_TARGET_DIR:-target}"/{debug,release}/vmc target/{debug,release}/vmc; do
        if [ -x "$candidate" ] && { [ -z "$vmc" ] || [ "$candidate" -nt "$vmc" ]; }; then vmc=$candidate; fi
    done
fi
if [ ! -f "$cache/kernels/current/vmlinux" ]; then
    echo "SKIPPED: VM mode in the sandbox: no guest kernel (build it with kernels/build.sh)"
    skipped=$((skipped + 1))
elif [ -z "$vmc" ]; then
    echo "SKIPPED: VM mode in the sandbox: no vmc binary (cargo build -p vmc)"
    skipped=$((skipped + 1))
elif ! "$vmc" images 2>/dev/null | grep -q '^busybox '; then
    echo "SKIPPED: VM mode in the sandbox: no busybox image in the store (scripts/make-default-images.sh)"
    skipped=$((skipped + 1))
else
    mkdir "$work/t5"
    TMPDIR=$work/t5 VMC=$vmc "$sandbox" vmc run --mode vm --rm busybox sh -c 'echo hi; exit 3' \
        >"$work/out5" 2>"$work/err5"
    status=$?
    if [ "$status" -eq 3 ] && [ "$(cat "$work/out5")" = hi ]; then
        pass "vmc run --mode vm inside the sandbox"
    else
        fail "vmc run --mode vm inside the sandbox" "status $status, stdout '$(head -c 200 "$work/out5")', stderr: $(tail -c 400 "$work/err5")"
    fi
fi

finish
