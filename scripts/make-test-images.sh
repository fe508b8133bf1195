#!/usr/bin/env bash
# Builds the real Debian images the VM-mode tests and benchmarks run, and imports them:
#   debian:minbase    `mmdebstrap --variant=minbase bookworm`            (about 170 MB)
#   debian:python3    the same with `--include=python3`                   (about 216 MB)
# The root filesystem tarballs are cached under ${VMC_CACHE:-~/.cache/vmc}/test-images/, so a
# machine builds each once (about 12 s and 55 s); importing a cached one takes seconds.
#   scripts/make-test-images.sh [minbase] [python3]     (default: both)
# Environment: VMC (the vmc binary, default target/release/vmc), VMC_HOME (the store).
# Needs root (mmdebstrap in root mode keeps the files' owners) and a reachable Debian mirror.
# Prints one line per image: "test-image: NAME ID".
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${VMC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmc}/test-images
vmc=${VMC:-$PWD/target/release/vmc}
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(minbase python3)

die() { echo "make-test-images: $*" >&2; exit 1; }
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: install it with 'apt-get install mmdebstrap'"
[ "$(id -u)" = 0 ] || die "mmdebstrap needs root here to keep the files' owners: run as root"
[ -x "$vmc" ] || die "$vmc is not built: run 'cargo build --release -p vmc' (or set VMC)"
mkdir -p "$cache"

for variant in "${variants[@]}"; do
  case $variant in
    minbase) include=() ;;
    python3) include=(--include=python3) ;;
    *) die "unknown image '$variant' (give minbase and/or python3)" ;;
  esac
  tarball=$cache/bookworm-$variant.tar
  if ! [ -s "$tarball" ]; then
    echo "make-test-images: building $tarball with mmdebstrap" >&2
    # Build into a temporary name: an interrupted build never looks like a cached image.
    mmdebstrap --quiet --format=tar --variant=minbase "${include[@]}" bookworm "$tarball.tmp" \
      || { rm -f "$tarball.tmp"; die "mmdebstrap failed for $variant (is the Debian mirror reachable?)"; }
    mv "$tarball.tmp" "$tarball"
  fi
  # The creation time pinned to the tarball's: re-importing it gives the same image ID, so the
  # caches keyed by it (unpacked rootfs, VM disk) stay valid.
  SOURCE_DATE_EPOCH=$(stat -c %Y "$tarball") \
    "$vmc" import "$tarball" --tag "debian:$variant" --change 'CMD ["/bin/bash"]' >/dev/null
  echo "test-image: debian:$variant $("$vmc" images | awk -v tag="$variant" '$1 == "debian" && $2 == tag { print $3 }')"
done
