#!/usr/bin/env bash
# Builds vmc-init, the guest's PID 1, as a statically linked binary (glibc, crt-static) and
# prints its path. The explicit --target keeps the static flag off build scripts and proc macros.
# Usage: scripts/build-vmc-init.sh [--release]      (honours CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
args=(build -p vmc-init --target x86_64-unknown-linux-gnu)
if [ "${1:-}" = --release ]; then profile=release; args+=(--release); fi
RUSTFLAGS="-C target-feature=+crt-static" cargo "${args[@]}" >&2
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
echo "$target_dir/x86_64-unknown-linux-gnu/$profile/vmc-init"
