#!/usr/bin/env bash
# Runs every test of the project: setup (packages, build, guest kernel, default images, the
# Debian test images),
# formatting and lint checks, the Rust tests (unit, integration, container end-to-end as root),
# and the VM end-to-end tests (directly where the host's KVM can run Linux, else inside
# scripts/kvm-sandbox). Ends with one line: "tests: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

passed=0 failed=0 skipped=0
step() { # step NAME COMMAND... — runs a check that counts as one test
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "test-step $name ... ok"
  else failed=$((failed + 1)); echo "test-step $name ... FAILED"; fi
}

scripts/setup.sh || { echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
# The real Debian images the parity suite runs in both modes (built once, cached).
VMC="$PWD/target/release/vmc" scripts/make-test-images.sh \
  || { echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets --quiet -- -D warnings

# Rust tests: count the harness's own results.
# --nocapture so that a test skipped by this host shows its one "SKIPPED: why" line.
cargo test --workspace -- --nocapture 2>&1 | tee "$log_dir/cargo.log"
cargo_status=${PIPESTATUS[0]}
read -r c_pass c_fail c_skip < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i
    } } END { print p+0, f+0, s+0 }' "$log_dir/cargo.log")
skipped_by_host=$(grep -o 'SKIPPED:' "$log_dir/cargo.log" | wc -l)
passed=$((passed + c_pass - skipped_by_host)); failed=$((failed + c_fail)); skipped=$((skipped + c_skip + skipped_by_host))
[ "$cargo_status" -eq 0 ] || [ "$c_fail" -gt 0 ] || failed=$((failed + 1))

# Shell end-to-end suites print "e2e: N passed, N failed, N skipped" as their last line.
for suite in tests/*.sh; do
  [ -e "$suite" ] || continue
  echo "== $suite"
  bash "$suite" 2>&1 | tee "$log_dir/suite.log"
  suite_status=${PIPESTATUS[0]}
  read -r s_pass s_fail s_skip < <(awk '/^e2e: / { p=$2; f=$4; s=$6 } END { print p+0, f+0, s+0 }' "$log_dir/suite.log")
  passed=$((passed + s_pass)); failed=$((failed + s_fail)); skipped=$((skipped + s_skip))
  [ "$suite_status" -eq 0 ] || [ "$s_fail" -gt 0 ] || failed=$((failed + 1))
done

echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
