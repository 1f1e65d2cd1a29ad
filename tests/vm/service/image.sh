#!/usr/bin/env bash
# Builds the service VM's disk image (idempotent; reused while this script and the kernel are
# unchanged): a minimal Debian 12 userland with systemd as PID 1, made by mmdebstrap from Debian
# packages, plus the stock kernel's modules the test needs (CAN, vcan, vivid, 9p) and the unit
# that runs the test script from the 9p share. Also builds the small initramfs that mounts it.
# Usage: bash tests/vm/service/image.sh KERNEL_MODULES_DIR OUT_DIR
# Output: OUT_DIR/root.img (ext4, raw), OUT_DIR/initramfs.cpio.gz
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
KDIR=$1
OUT=$2
KVER=$(basename "$KDIR")
# The image is rebuilt when this script, the initramfs init or the kernel changes.
STAMP=$(cat image.sh initramfs-init.sh | sha256sum | cut -c1-16)-$KVER
if [[ -f $OUT/root.img && -f $OUT/initramfs.cpio.gz && $(cat "$OUT/stamp" 2>/dev/null) == "$STAMP" ]]; then
    echo "image: up to date ($OUT/root.img)"
    exit 0
fi
command -v mmdebstrap >/dev/null || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 mmdebstrap >/dev/null
}
rm -rf "$OUT" && mkdir -p "$OUT"
ROOTFS=$OUT/rootfs
# minbase + systemd as init, udev (device nodes with their groups: /dev/video0 is root:video),
# dbus, sudo (the README's commands run as written), can-utils, iproute2 (vcan), kmod
# (modprobe). No recommends, no man pages or locales.
mmdebstrap --quiet --variant=minbase \
    --include=systemd,systemd-sysv,udev,dbus,sudo,can-utils,iproute2,kmod \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$ROOTFS"

# The stock kernel's modules the test loads, with their dependencies; depmod inside the image so
# that modprobe and the kernel's autoloading (9p for the share) find them.
mkdir -p "$ROOTFS/lib/modules/$KVER/extra"
python3 ../vmtool.py modules "$KDIR" "$ROOTFS/lib/modules/$KVER/extra" \
    9p 9pnet_virtio can can-raw can-dev vcan vivid >/dev/null
cp "$KDIR"/modules.order "$KDIR"/modules.builtin* "$ROOTFS/lib/modules/$KVER/" 2>/dev/null || true
chroot "$ROOTFS" depmod -a "$KVER"

cat >"$ROOTFS/etc/modprobe.d/vivid.conf" <<'CONF'
# One capture node with one webcam input: less work under TCG.
options vivid n_devs=1 node_types=0x1 num_inputs=1 input_types=0x0
CONF
echo "share /share 9p trans=virtio,version=9p2000.L,msize=262144 0 0" >>"$ROOTFS/etc/fstab"
mkdir -p "$ROOTFS/share"
echo adas-vm >"$ROOTFS/etc/hostname"
echo "127.0.1.1 adas-vm" >>"$ROOTFS/etc/hosts"
# The settings the VM changes: under TCG a frame of the COCO SSD takes about 20 s (a Jetson's CPU:
# ~0.1 s), longer than the product's WatchdogSec=5s, which would restart a working daemon, and
# than TimeoutStopSec=10s, which would kill it in the middle of the frame it finishes before
# stopping. A drop-in, as an integrator would add one; the watchdog check takes longer for it.
mkdir -p "$ROOTFS/etc/systemd/system/adasd.service.d"
cat >"$ROOTFS/etc/systemd/system/adasd.service.d/tcg.conf" <<'UNIT'
[Service]
WatchdogSec=60s
TimeoutStopSec=60s
TimeoutAbortSec=10s
UNIT
cat >"$ROOTFS/etc/systemd/system/adas-vmtest.service" <<'UNIT'
[Unit]
Description=adas service VM test (guest-test.sh from the share)
RequiresMountsFor=/share
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/bin/sh /share/guest-test.sh
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT
chroot "$ROOTFS" systemctl -q enable adas-vmtest.service
# Nothing that only costs boot time under TCG: no logins, no timers.
chroot "$ROOTFS" systemctl -q mask getty.target serial-getty@ttyS0.service getty@tty1.service \
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
    fstrim.timer systemd-tmpfiles-clean.timer

# 1 GiB, sparse: the userland (~190 MB), the package (~85 MB installed) and room to spare.
mke2fs -q -t ext4 -L root -d "$ROOTFS" "$OUT/root.img" 1G
rm -rf "$ROOTFS"

IR=$OUT/initramfs
mkdir -p "$IR"/{bin,modules,proc,sys,dev}
cp /bin/busybox "$IR/bin/busybox"
python3 ../vmtool.py modules "$KDIR" "$IR/modules" virtio_pci virtio_blk ext4 crc32c_generic >"$IR/modules.order"
cp "$HERE/initramfs-init.sh" "$IR/init" && chmod +x "$IR/init"
(cd "$IR" && find . | cpio -o -H newc --quiet | gzip -1 >"$OUT/initramfs.cpio.gz")
rm -rf "$IR"
echo "$STAMP" >"$OUT/stamp"
du -h --apparent-size "$OUT/root.img" "$OUT/initramfs.cpio.gz"
