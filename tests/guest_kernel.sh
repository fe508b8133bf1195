#!/usr/bin/env bash
# Sanity test of the guest kernel (kernels/build.sh) independent of vmc's VMM: boots the
# cached vmlinux in QEMU (TCG, PVH entry) with a busybox initramfs whose init checks what
# vmc's guest init relies on, then reboots. Checks: the kernel boots from an uncompressed cpio,
# is quiet by default, and the init can mount /proc, /sys, /dev, /dev/pts, /dev/shm, set the
# hostname and use loopback TCP. (Multi-vCPU boot is not checked here: QEMU's firmware MP
# table lists one CPU under TCG; vmc's VMM writes its own, checked by the vmc-vm tests.)
# Last line: "e2e: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

passed=0 failed=0 skipped=0
checks=(boots quiet devpts shm hostname loopback)
finish() { echo "e2e: $passed passed, $failed failed, $skipped skipped"; exit $((failed > 0)); }

cache=${VMC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmc}
kernel=$cache/kernels/current/vmlinux
skip_all() { echo "SKIPPED: $1"; skipped=${#checks[@]}; finish; }
[ -f "$kernel" ] || skip_all "no guest kernel at $kernel (build it with kernels/build.sh)"
command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 is missing (apt-get install qemu-system-x86)"
[ "$(id -u)" -eq 0 ] || skip_all "creating /dev/console in the test initramfs needs root"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
mknod -m 600 "$root/dev/console" c 5 1
cat >"$root/init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "check boots"
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts && [ -c /dev/ptmx ] && echo "check devpts"
mount -t tmpfs tmpfs /dev/shm && echo x >/dev/shm/x && echo "check shm"
hostname vmc-guest && [ "$(cat /proc/sys/kernel/hostname)" = vmc-guest ] && echo "check hostname"
ip link set lo up
nc -l -p 7777 >/tmp/received &
sleep 1
echo loopback-data | nc 127.0.0.1 7777
sleep 1
grep -q loopback-data /tmp/received && echo "check loopback"
reboot -f
EOF
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) >"$work/initramfs.cpio"

start=$(date +%s.%N)
timeout 120 qemu-system-x86_64 -accel tcg -cpu max -M pc -m 512 -smp 1 \
    -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$kernel" -initrd "$work/initramfs.cpio" -append "console=ttyS0 reboot=k" \
    -serial "file:$work/console.log" </dev/null >"$work/qemu.log" 2>&1
status=$?
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "guest_kernel: QEMU session (TCG boot + checks + reboot) took ${elapsed%???????} s, qemu status $status"

check() { # check NAME CONDITION-RESULT DETAIL
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "guest_kernel: $1 ... ok"
    else failed=$((failed + 1)); echo "guest_kernel: $1 ... FAILED: $3"; fi
}
log=$(tr -d '\r' <"$work/console.log")
grep -qx "check boots" <<<"$log"
check "boots from an uncompressed cpio" $? "console: $(tail -n 5 <<<"$log")"
# Quiet by default: the "Linux version" banner (KERN_NOTICE) is below console loglevel 4.
! grep -q "Linux version" <<<"$log"
check "quiet console by default" $? "the boot banner was printed: $(grep -m1 'Linux version' <<<"$log")"
grep -qx "check devpts" <<<"$log"
check "mounts /dev/pts" $? "no devpts line"
grep -qx "check shm" <<<"$log"
check "mounts tmpfs on /dev/shm" $? "no shm line"
grep -qx "check hostname" <<<"$log"
check "sets the hostname" $? "no hostname line"
grep -qx "check loopback" <<<"$log"
check "loopback TCP" $? "no loopback line"
finish
