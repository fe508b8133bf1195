#!/usr/bin/env bash
# Installs everything vmc needs on a fresh Debian 12 machine (as root), builds the workspace,
# the guest kernel (cached under ~/.cache/vmc) and imports the default images.
#   scripts/setup.sh            everything
#   VMC_SKIP_KERNEL=1 ...       skip the guest kernel (container mode only)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

APT_PACKAGES=(
  busybox-static cpio xz-utils zstd            # default image, initramfs tools
  skopeo umoci                                  # OCI interop tests
  crun runc bubblewrap hyperfine jq             # peers for the benchmarks, their JSON
  qemu-system-x86                               # scripts/kvm-sandbox (emulated KVM host)
  erofs-utils e2fsprogs                         # VM mode: the image as a read-only disk, scratch disks
  mmdebstrap                                    # tests: real Debian images
  linux-source-6.1 flex bison bc libelf-dev libssl-dev make gcc  # guest kernel build
)

install_packages() {
  local missing=()
  for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "setup: installing packages needs root: run as root or sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_packages
echo "setup: building vmc (release)"
cargo build --release --workspace --quiet
if [ -z "${VMC_SKIP_KERNEL:-}" ]; then
  echo "setup: guest kernel"
  kernels/build.sh
fi
echo "setup: default images"
VMC="$PWD/target/release/vmc" scripts/make-default-images.sh
if [ "$(id -u)" = 0 ]; then
  ln -sf "$PWD/target/release/vmc" /usr/local/bin/vmc
  echo "setup: vmc installed as /usr/local/bin/vmc"
fi
echo "setup: done"
