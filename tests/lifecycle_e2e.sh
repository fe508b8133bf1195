#!/usr/bin/env bash
# Detached runs end to end, container mode: `run -d`, `logs [-f] [--tail] [-t]`, `stop`
# (143 from a workload that dies of SIGTERM; 137 when it ignores TERM past -t 1), `kill -s
# USR1` reaching a trap, `wait` (of a `--rm` run too), `start [-a]` (on the run's writable layer), `exec` into a
# detached run, `restart`, `rm -f`, `container prune`, the
# log's size cap, a supervisor that survives the killing of the command that started it, and
# 20 runs started at once and stopped together leaving nothing behind (run dirs, cgroups,
# mounts, processes). Runs in a home of its own (`container prune` removes every ended run),
# with the default store's busybox root filesystem imported into it.
# Needs root (container mode). Last line: "e2e: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
vmc=${VMC:-$PWD/target/release/vmc}
work=$(mktemp -d)
prefix=lc-$$
passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
check() { # check NAME CONDITION-DESCRIPTION COMMAND...
  local name=$1 what=$2; shift 2
  if "$@"; then pass "$name"; else fail "$name" "$what"; fi
}
default_home=${VMC_HOME:-/var/lib/vmc}
export VMC_HOME=$work/home
cleanup() {
  for name in $("$vmc" ps -a -q 2>/dev/null); do "$vmc" rm -f "$name" >/dev/null 2>&1; done
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIPPED: container runs need root"
  echo "e2e: 0 passed, 0 failed, 1 skipped"; exit 0
fi
busybox_id=$(VMC_HOME=$default_home "$vmc" inspect busybox 2>/dev/null | sed -n 's/^  "id": "\([0-9a-f]*\)",$/\1/p')
if [ -z "$busybox_id" ] || ! VMC_HOME=$default_home "$vmc" run --rm busybox true; then
  echo "SKIPPED: no busybox image in $default_home (scripts/make-default-images.sh)"
  echo "e2e: 0 passed, 0 failed, 1 skipped"; exit 0
fi
"$vmc" import "$default_home/rootfs/$busybox_id" --tag busybox >/dev/null \
  || { fail import "cannot import busybox into $VMC_HOME"; echo "e2e: $passed passed, $failed failed, $skipped skipped"; exit 1; }

# status_of NAME: the run's STATUS column.
status_of() { "$vmc" ps -a | awk -v n="$1" '$NF == n' | sed -E 's/.*  (Up|Exited|Created|Dead)/\1/; s/  +[^ ]+$//'; }
# until_log NAME TEXT: waits (10 s at most) until the run's log holds TEXT.
until_log() {
  local tries=0
  until "$vmc" logs "$1" 2>&1 | grep -q "$2"; do
    tries=$((tries + 1)); [ $tries -ge 100 ] && return 1; sleep 0.1
  done
}
# A workload that dies of SIGTERM without being PID 1: the shell's child is killed by it, and
# the shell exits with the child's status, 143.
dies_of_term='echo started; sleep 1000 & trap "kill \$!; wait \$!; exit \$?" TERM; i=0; while :; do i=$((i + 1)); echo "tick $i"; sleep 0.2; done'

# --- run -d, logs -f, stop (143) ---
id=$("$vmc" run -d --name "$prefix-a" busybox sh -c "$dies_of_term" 2>"$work/a.err"); status=$?
check run-d-prints-the-id "exit 0 and a 64-digit id, got $status [$id] $(cat "$work/a.err")" \
  test "$status" -eq 0 -a "${#id}" -eq 64
status=$(status_of "$prefix-a")
case $status in Up*) pass ps-up ;; *) fail ps-up "expected Up …, got [$status]" ;; esac
"$vmc" logs -f "$prefix-a" >"$work/follow.out" 2>&1 &
follower=$!
until_log "$prefix-a" "tick 3" || fail logs-ticks "no tick 3 in the log"
"$vmc" stop "$prefix-a" >/dev/null
wait $follower; follow_status=$?
check logs-f-ends-with-the-run "logs -f exit 0 with started and tick 3, got $follow_status: $(head -c 300 "$work/follow.out")" \
  eval '[ $follow_status -eq 0 ] && grep -q started "$work/follow.out" && grep -q "tick 3" "$work/follow.out"'
code=$("$vmc" wait "$prefix-a")
check stop-143 "wait prints 143, got [$code]" test "$code" = 143
status=$(status_of "$prefix-a")
case $status in "Exited (143) "*ago) pass ps-exited ;; *) fail ps-exited "expected Exited (143) … ago, got [$status]" ;; esac
lines=$("$vmc" logs "$prefix-a" | wc -l)
# (The shell's "Terminated" for its killed child is the last entry, on stderr.)
last=$("$vmc" logs "$prefix-a" 2>/dev/null | tail -1)
check logs-survive-the-run "the log of the ended run and its last line, got $lines lines, last [$last]" \
  eval '[ "$lines" -ge 4 ] && [[ $last =~ ^tick\ [0-9]+$ ]]'
stamped=$("$vmc" logs -t "$prefix-a" 2>/dev/null | tail -1)
check logs-timestamps "an RFC 3339 nanosecond time first, got [$stamped]" \
  eval '[[ $stamped =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9}Z\ tick ]]'
grep -q '"stream":"stdout","time":"' "$("$vmc" container inspect "$prefix-a" | sed -n 's/.*"LogPath": "\(.*\)".*/\1/p')" \
  && pass json-file-lines || fail json-file-lines "the log is not Docker's json-file lines"

# --- start -a and restart: the same spec again ---
"$vmc" run -d --name "$prefix-b" busybox sh -c 'echo "run $$ of b"; sleep 0.3; exit 7' >/dev/null
code=$("$vmc" wait "$prefix-b")
check wait-prints-the-code "7, got [$code]" test "$code" = 7
# A --rm run removes itself when it ends: waiters that came before still get its status.
"$vmc" run -d --rm --name "$prefix-r" busybox sh -c 'sleep 1; exit 4' >/dev/null
"$vmc" wait "$prefix-r" >"$work/r1" & first=$!
code=$("$vmc" wait "$prefix-r"); wait $first
check wait-of-a-rm-run "4 for both waiters, got [$code] [$(cat "$work/r1")]" \
  eval '[ "$code" = 4 ] && [ "$(cat "$work/r1")" = 4 ]'
tries=0; while "$vmc" ps -a | grep -q " $prefix-r\$" && [ $tries -lt 100 ]; do sleep 0.05; tries=$((tries + 1)); done
check rm-run-removed-after-wait "no record of it left" eval '! "$vmc" ps -a | grep -q " $prefix-r\$"'
out=$("$vmc" start -a "$prefix-b"); status=$?
check start-a-runs-again "status 7 and the output again, got $status [$out]" \
  eval '[ "$status" -eq 7 ] && [ "$out" = "run 1 of b" ]'
check log-keeps-both-runs "two runs in the log" test "$("$vmc" logs "$prefix-b" | grep -c 'of b')" -eq 2

# --- the writable layer outlives the workload; exec reaches a detached run ---
"$vmc" run -d --name "$prefix-w" busybox sh -c 'if [ -e /kept ]; then cat /kept; else echo written >/kept; fi' >/dev/null
"$vmc" wait "$prefix-w" >/dev/null
out=$("$vmc" start -a "$prefix-w")
check start-keeps-the-writable-layer "the file the first run wrote, got [$out]" test "$out" = written
"$vmc" run -d --name "$prefix-x" busybox sh -c 'echo inside >/made; exec sleep 60' >/dev/null
tries=0; until out=$("$vmc" exec "$prefix-x" cat /made 2>/dev/null) || [ $tries -ge 50 ]; do sleep 0.1; tries=$((tries + 1)); done
check exec-reaches-a-detached-run "the workload's file, got [$out]" test "$out" = inside
"$vmc" rm -f "$prefix-x" >/dev/null
"$vmc" run -d --name "$prefix-c" busybox sh -c "$dies_of_term" >/dev/null
until_log "$prefix-c" started
"$vmc" restart -t 5 "$prefix-c" >/dev/null
status=$(status_of "$prefix-c")
case $status in Up*) pass restart-is-up ;; *) fail restart-is-up "expected Up, got [$status]" ;; esac
tries=0; until [ "$("$vmc" logs "$prefix-c" 2>/dev/null | grep -c started)" -eq 2 ] || [ $tries -ge 50 ]; do sleep 0.1; tries=$((tries + 1)); done
check restart-logs-twice "two starts in the log" test "$("$vmc" logs "$prefix-c" | grep -c started)" -eq 2

# --- stop of a workload that ignores TERM: SIGKILL after -t 1, 137 ---
"$vmc" run -d --name "$prefix-d" busybox sh -c 'trap "echo got USR1" USR1; trap "" TERM; echo started; while :; do sleep 0.1; done' >/dev/null
until_log "$prefix-d" started
"$vmc" kill -s USR1 "$prefix-d" >/dev/null
check kill-usr1-reaches-the-trap "got USR1 in the log" until_log "$prefix-d" "got USR1"
begin=$(date +%s%N)
"$vmc" stop -t 1 "$prefix-d" >/dev/null
elapsed_ms=$((($(date +%s%N) - begin) / 1000000))
code=$("$vmc" wait "$prefix-d")
check stop-137-after-t "137 after 1-4 s, got [$code] after ${elapsed_ms} ms" \
  eval '[ "$code" = 137 ] && [ $elapsed_ms -ge 1000 ] && [ $elapsed_ms -lt 4000 ]'

# --- the supervisor outlives the command that started it ---
setsid bash -c "'$vmc' run -d --name '$prefix-e' busybox sh -c 'echo started; sleep 1000' > '$work/e.id'; sleep 100" &
starter=$!
tries=0; until [ -s "$work/e.id" ] || [ $tries -ge 100 ]; do sleep 0.1; tries=$((tries + 1)); done
kill -KILL -- "-$starter" 2>/dev/null; wait $starter 2>/dev/null
sleep 0.3
status=$(status_of "$prefix-e")
case $status in Up*) pass supervisor-survives-its-starter ;; *) fail supervisor-survives-its-starter "expected Up after the starter's group was SIGKILLed, got [$status]" ;; esac
"$vmc" rm -f "$prefix-e" >/dev/null
check rm-f-removes-an-up-run "no record left" eval '! "$vmc" ps -a | grep -q " $prefix-e\$"'

# --- an attached run whose vmc is SIGKILLed: attached runs live in their vmc, so the run
# ends with it; it shows as Dead and `vmc rm` removes what it left ---
"$vmc" run --name "$prefix-k" busybox sh -c 'echo started; sleep 1000' > "$work/k.out" 2>&1 &
attached=$!
tries=0; until grep -q started "$work/k.out" || [ $tries -ge 100 ]; do sleep 0.1; tries=$((tries + 1)); done
kill -KILL $attached; wait $attached 2>/dev/null
status=$(status_of "$prefix-k")
check killed-attached-is-dead "Dead, got [$status]" test "$status" = Dead
id=$("$vmc" container inspect "$prefix-k" | sed -n 's/^    "Id": "\([0-9a-f]*\)",$/\1/p')
"$vmc" rm "$prefix-k" >/dev/null
check rm-cleans-a-dead-run "no record and no cgroup of ${id:0:12}" \
  eval '[ ${#id} -eq 64 ] && [ -z "$(find /sys/fs/cgroup -maxdepth 4 -name "*$id*" 2>/dev/null)" ] && ! "$vmc" ps -a | grep -q " $prefix-k\$"'

# --- the log's size cap ---
"$vmc" run -d --name "$prefix-f" --log-opt max-size=2k busybox sh -c 'i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i + 1)); done' >/dev/null
"$vmc" wait "$prefix-f" >/dev/null
dir=$(dirname "$("$vmc" container inspect "$prefix-f" | sed -n 's/.*"LogPath": "\(.*\)".*/\1/p')")
sizes=$(stat -c %s "$dir"/container.log*)
last=$("$vmc" logs --tail 1 "$prefix-f")
check log-max-size "each file at most 2048 bytes and the last line kept, got [$sizes] [$last]" \
  eval 'for s in $sizes; do [ "$s" -le 2048 ] || false; done && [ "$last" = "line 299" ]'

# --- refusals, one line and 125; a command not found is 127 ---
out=$("$vmc" run -d -t busybox true 2>&1); status=$?
check detach-tty-refused "125 and one line, got $status [$out]" \
  eval '[ "$status" -eq 125 ] && [ "$(echo "$out" | wc -l)" -eq 1 ]'
out=$("$vmc" run -d --name "$prefix-g" busybox nosuch-command 2>&1); status=$?
check detach-not-found-127 "127 and the workload's line, got $status [$out]" \
  eval '[ "$status" -eq 127 ] && [[ $out == *nosuch-command* ]]'
"$vmc" run --name "$prefix-h" busybox true >/dev/null
out=$("$vmc" logs "$prefix-h" 2>&1); status=$?
check logs-of-attached-refused "125 and one line, got $status [$out]" \
  eval '[ "$status" -eq 125 ] && [[ $out == *"was attached"* ]]'
out=$("$vmc" kill "$prefix-h" 2>&1); status=$?
check kill-of-exited-refused "1 and 'not running', got $status [$out]" \
  eval '[ "$status" -eq 1 ] && [[ $out == *"not running"* ]]'

# --- Ctrl-C while a detached run's setup hangs (a volume onto a FIFO, as
# crates/vmc/tests/hostile_images.rs hangs it): passed on to the supervisor, which ends the
# setup; 130, one line, nothing left ---
mkdir "$work/shared" && mkfifo "$work/shared/fifo" && : > "$work/file"
"$vmc" run -d --name "$prefix-i" -v "$work/shared:/shared" -v "$work/file:/shared/fifo" busybox true 2> "$work/i.err" &
starter=$!
tries=0; until [ "$(status_of "$prefix-i")" = Created ] || [ $tries -ge 100 ]; do sleep 0.1; tries=$((tries + 1)); done
sleep 0.5
kill -INT $starter; wait $starter; status=$?
check interrupted-setup-130 "130, one line and no run left, got $status [$(cat "$work/i.err")]" \
  eval '[ "$status" -eq 130 ] && [ "$(wc -l < "$work/i.err")" -eq 1 ] && ! "$vmc" ps -a | grep -q " $prefix-i\$"'

# --- container prune removes what has ended ---
"$vmc" container prune -f > "$work/prune.out"
check prune-removes-ended "no $prefix-b left" eval '! "$vmc" ps -a | grep -q " $prefix-b\$"'

# --- 20 detached runs at once, stopped together, removed: nothing left ---
for i in $(seq 1 20); do
  "$vmc" run -d --name "$prefix-m$i" busybox sh -c "$dies_of_term" > "$work/m$i.id" 2>&1 &
done
wait
ids=$(cat "$work"/m*.id | grep -Ec '^[0-9a-f]{64}$')
check twenty-started "20 ids, got $ids: $(grep -hv '^[0-9a-f]\{64\}$' "$work"/m*.id | head -3)" test "$ids" -eq 20
up=$("$vmc" ps --filter status=running | grep -c " $prefix-m")
check twenty-up "20 Up, got $up" test "$up" -eq 20
names=$(seq -f "$prefix-m%g" 1 20)
# shellcheck disable=SC2086
"$vmc" stop -t 5 $names >/dev/null
codes=$(for n in $names; do "$vmc" wait "$n"; done | sort -u | tr '\n' ' ')
check twenty-stopped "all 143, got [$codes]" test "$codes" = "143 "
# shellcheck disable=SC2086
"$vmc" rm $names >/dev/null
left_dirs=0 left_cgroups=0 left_mounts=0 left_procs=0
for f in "$work"/m*.id; do
  id=$(cat "$f"); [[ $id =~ ^[0-9a-f]{64}$ ]] || continue
  [ -e "$VMC_HOME/runs/$id" ] && left_dirs=$((left_dirs + 1))
  [ -n "$(find /sys/fs/cgroup -maxdepth 4 -name "*${id:0:12}*" 2>/dev/null | head -1)" ] && left_cgroups=$((left_cgroups + 1))
  grep -q "$id" /proc/self/mountinfo && left_mounts=$((left_mounts + 1))
  pgrep -f "vmc-supervisor $id" >/dev/null && left_procs=$((left_procs + 1))
done
check twenty-leave-nothing "run dirs $left_dirs, cgroups $left_cgroups, mounts $left_mounts, supervisors $left_procs" \
  test $((left_dirs + left_cgroups + left_mounts + left_procs)) -eq 0

echo "e2e: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
