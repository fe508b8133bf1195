#!/usr/bin/env bash
# Builds the vmc guest kernel (an uncompressed ELF vmlinux) from Debian's linux-source-6.1:
#   make tinyconfig  +  kernels/vmc-guest.config  ->  make olddefconfig  ->  make vmlinux
# and caches it at   ${VMC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmc}/kernels/<hash>/vmlinux
# with  kernels/current -> <hash>.  <hash> covers the fragment, the build recipe below and the
# kernel source package version, so a cached kernel is reused only if it would build the same.
# A cache hit returns in well under a second. The last line printed is the vmlinux path.
#
# Usage: kernels/build.sh [--force] [--without CONFIG_X]
#        --force rebuilds even if the cache holds the kernel; --without builds a test kernel
#        from the fragment minus every line naming CONFIG_X (and the options named after it),
#        cached like the others, but kernels/current is left alone.
# Env:   VMC_CACHE, KEEP_BUILD=1 (keep the build tree under kernels/build-<hash> for debugging),
#        JOBS (default: nproc). Missing apt packages are installed when run as root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/vmc-guest.config
cache=${VMC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmc}
kernels=$cache/kernels
source_tarball=/usr/src/linux-source-6.1.tar.xz
packages=(linux-source-6.1 flex bison bc libelf-dev libssl-dev make gcc libc6-dev xz-utils)
force=0
without=

die() { echo "kernels/build.sh: $*" >&2; exit 1; }
log() { echo "kernels/build.sh: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        --force) force=1; shift ;;
        --without)
            [[ ${2:-} =~ ^CONFIG_[A-Z0-9_]+$ ]] || die "--without needs a kernel option, e.g. --without CONFIG_EROFS_FS"
            without=$2; shift 2 ;;
        -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (usage: kernels/build.sh [--force] [--without CONFIG_X])" ;;
    esac
done
[ -f "$fragment" ] || die "config fragment $fragment is missing"

# Installs the apt packages that are not installed yet (one dpkg-query for all: fast).
install_missing_packages() {
    local missing=() pkg
    for pkg in "${packages[@]}"; do
        if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]}; run 'sudo apt-get install -y ${missing[*]}' or run this script as root"
    log "installing ${missing[*]}"
    apt-get update -qq >&2 || die "apt-get update failed; check the network / apt sources"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
}

# The build recipe. Its text is part of the cache key (via `declare -f`), so changing how the
# kernel is built invalidates the cache, while editing comments elsewhere in this file does not.
# Runs inside the unpacked source tree.
build_kernel() {
    make -s tinyconfig
    scripts/kconfig/merge_config.sh -m .config "$fragment" >/dev/null
    make -s olddefconfig
    check_fragment_applied .config
    make -s -j"${JOBS:-$(nproc)}" vmlinux
}

# Fails, listing every line, if the final .config lost an option the fragment asks for
# (Kconfig silently drops options whose dependencies are not met).
check_fragment_applied() {
    local config=$1 line name value dropped=()
    while IFS= read -r line; do
        if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
            grep -qxF -- "$line" "$config" \
                || dropped+=("$line (got: $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$config" || echo absent))")
        elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
            name=${BASH_REMATCH[1]}
            value=$(grep -E "^${name}=" "$config" || true)
            [ -z "$value" ] || dropped+=("$line (got: $value)")
        fi
    done <"$fragment"
    if [ ${#dropped[@]} -gt 0 ]; then
        printf 'kernels/build.sh: Kconfig did not apply %d option(s) of %s:\n' "${#dropped[@]}" "$fragment" >&2
        printf '  %s\n' "${dropped[@]}" >&2
        die "fix the fragment (a dependency of each listed option is missing)"
    fi
}

if [ -n "$without" ]; then
    grep -q -- "$without" "$fragment" || die "$fragment does not set $without"
    mkdir -p "$kernels"
    variant=$kernels/vmc-guest-without-$without.config
    grep -v -- "$without" "$fragment" >"$variant"
    fragment=$variant
fi
# The default kernel becomes kernels/current; a test kernel built --without does not.
link_current() { [ -n "$without" ] || ln -sfn "$hash" "$kernels/current"; }

install_missing_packages
source_version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
hash=$( { cat "$fragment"; declare -f build_kernel check_fragment_applied; echo "linux-source-6.1 $source_version"; } \
    | sha256sum | cut -c1-16)
out=$kernels/$hash

if [ "$force" = 0 ] && [ -f "$out/vmlinux" ]; then
    link_current
    echo "$out/vmlinux"
    exit 0
fi

mkdir -p "$kernels"
exec 9>"$kernels/.lock"
flock 9 # one build at a time per cache; a concurrent run waits, then finds the cached kernel
if [ "$force" = 0 ] && [ -f "$out/vmlinux" ]; then
    link_current
    echo "$out/vmlinux"
    exit 0
fi

[ -f "$source_tarball" ] || die "$source_tarball is missing; reinstall it with 'apt-get install --reinstall linux-source-6.1'"
build=$kernels/build-$hash
cleanup() { [ "${KEEP_BUILD:-0}" = 1 ] || rm -rf "$build" "$out.tmp"; }
trap cleanup EXIT
rm -rf "$build" "$out.tmp"
mkdir -p "$build"
started=$SECONDS
log "unpacking $source_tarball (linux-source-6.1 $source_version)"
tar -xJf "$source_tarball" -C "$build"
src=$(find "$build" -mindepth 1 -maxdepth 1 -type d -name 'linux-source-*' | head -n1)
[ -n "$src" ] || die "$source_tarball did not contain a linux-source-* directory"
log "building vmlinux with ${JOBS:-$(nproc)} jobs (about 5 min on 2 cores); log: $build/build.log"
if ! (cd "$src" && build_kernel) >"$build/build.log" 2>&1; then
    cp "$build/build.log" "$kernels/last-failed-build.log"
    tail -n 30 "$build/build.log" >&2
    die "kernel build failed (see above); full log: $kernels/last-failed-build.log"
fi
mkdir -p "$out.tmp"
cp "$src/vmlinux" "$out.tmp/vmlinux"
cp "$src/.config" "$out.tmp/config"
cp "$fragment" "$out.tmp/vmc-guest.config"
echo "linux-source-6.1 $source_version" >"$out.tmp/source-version"
rm -rf "$out"
mv "$out.tmp" "$out"
link_current
log "built in $((SECONDS - started)) s: vmlinux of $(($(stat -c %s "$out/vmlinux") / 1048576)) MiB"
echo "$out/vmlinux"
