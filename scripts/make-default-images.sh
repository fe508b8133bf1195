#!/usr/bin/env bash
# Builds vmc's two default images without network access and imports them through the real
# CLI path (`vmc import DIR --tag NAME --change ...`):
#   busybox       Debian's busybox-static: /bin/busybox, every applet as a symlink (incl.
#                 /bin/sh), /etc/passwd (root, nobody), /etc/group, /etc/hostname, /tmp,
#                 /proc, /sys, /dev, /root, /home. Cmd ["/bin/sh"].
#   vmc-workload  the busybox tree plus the static test workload at /usr/bin/vmc-workload.
#                 Entrypoint ["/usr/bin/vmc-workload"], Cmd ["print", "hello from vmc-workload"],
#                 so `vmc run vmc-workload sleep 1` passes "sleep 1" to the workload.
# Environment:
#   VMC                 the vmc binary (default: target/debug/vmc, built if missing)
#   VMC_HOME            the store to import into (default: vmc's own default)
#   VMC_WORKLOAD_BIN    a prebuilt static vmc-workload (default: built here with crt-static)
#   CARGO_TARGET_DIR    where cargo builds (default: target)
# Idempotent: file times and the image creation time are pinned (SOURCE_DATE_EPOCH), so
# re-running with unchanged inputs yields the same image IDs and just re-points the tags.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
target_dir=${CARGO_TARGET_DIR:-target}

busybox_bin=/bin/busybox
if ! [ -x "$busybox_bin" ] || ! "$busybox_bin" --list-full >/dev/null 2>&1; then
  echo "make-default-images: $busybox_bin is missing: install it with 'apt-get install busybox-static'" >&2
  exit 1
fi
if ldd "$busybox_bin" >/dev/null 2>&1; then
  echo "make-default-images: $busybox_bin is dynamically linked: install 'busybox-static'" >&2
  exit 1
fi

vmc=${VMC:-$target_dir/debug/vmc}
if ! [ -x "$vmc" ]; then
  cargo build --quiet -p vmc
fi

workload=${VMC_WORKLOAD_BIN:-}
if [ -z "$workload" ]; then
  RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --quiet --release -p vmc-workload --target x86_64-unknown-linux-gnu
  workload=$target_dir/x86_64-unknown-linux-gnu/release/vmc-workload
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# make_busybox_tree DIR: the minimal busybox root filesystem.
make_busybox_tree() {
  local root=$1
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,root,home,tmp,var,run}
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root"
  install -m 755 "$busybox_bin" "$root/bin/busybox"
  local applet
  while read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
  done < <("$busybox_bin" --list-full)
  [ -e "$root/bin/sh" ] || ln -s /bin/busybox "$root/bin/sh"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  echo vmc >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$root/etc/hosts"
}

# pin_times DIR EPOCH: every file's mtime = EPOCH, for reproducible layers.
pin_times() {
  find "$1" -exec touch -h -d "@$2" {} +
}

make_busybox_tree "$work/busybox"
busybox_epoch=$(stat -c %Y "$busybox_bin")
pin_times "$work/busybox" "$busybox_epoch"
SOURCE_DATE_EPOCH=$busybox_epoch "$vmc" import "$work/busybox" --tag busybox \
  --change 'CMD ["/bin/sh"]'

make_busybox_tree "$work/workload"
install -D -m 755 "$workload" "$work/workload/usr/bin/vmc-workload"
workload_epoch=$(stat -c %Y "$workload")
[ "$workload_epoch" -gt "$busybox_epoch" ] || workload_epoch=$busybox_epoch
pin_times "$work/workload" "$workload_epoch"
SOURCE_DATE_EPOCH=$workload_epoch "$vmc" import "$work/workload" --tag vmc-workload \
  --change 'ENTRYPOINT ["/usr/bin/vmc-workload"]' \
  --change 'CMD ["print", "hello from vmc-workload"]'
