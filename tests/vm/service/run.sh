#!/usr/bin/env bash
# The service VM test: installs the Debian package in a Debian 12 userland booted with systemd as
# PID 1 (qemu TCG, the stock kernel of tests/vm), runs the README's "Install on a Jetson / as a
# service" commands as they are written, and checks the service: sd_notify readiness, the
# journal, AEB_Status on can0, the watchdog restarting a hung daemon, mode Off after stop,
# `systemd-analyze security`, and that purging removes what was installed (docs/VM-TESTS.md).
# Usage: bash tests/vm/service/run.sh target/debian/adasd_<ver>_amd64.deb
# Environment: VM_WORK (default /tmp/adas-vm; the image is kept in $VM_WORK/service and reused),
set -euo pipefail
cd "$(dirname "$0")/../../.."
DEB=$(realpath "${1:?usage: tests/vm/service/run.sh ADASD_DEB}")
VM_WORK=${VM_WORK:-/tmp/adas-vm}
bash tests/vm/prepare.sh
KDIR=$(ls -d "$VM_WORK"/kernel/lib/modules/*/ | head -1)
KVER=$(basename "$KDIR")
VMLINUZ=$VM_WORK/kernel/boot/vmlinuz-$KVER
IMG=$VM_WORK/service

echo "--- image (mmdebstrap, Debian 12 + systemd; reused when unchanged)"
start=$(date +%s)
bash tests/vm/service/image.sh "${KDIR%/}" "$IMG"
IMAGE_SECONDS=$(($(date +%s) - start))

echo "--- share: the package, the README's commands, the guest script, a VehicleSpeed log"
SHARE=$VM_WORK/service-share
rm -rf "$SHARE" && mkdir -p "$SHARE"
cp "$DEB" "$SHARE/"
cp tests/vm/service/guest-test.sh "$SHARE/"
python3 tests/vm/vmtool.py readme README.md "$SHARE"
python3 tests/vm/vmtool.py speedlog firmware-service/can/adas.dbc "$SHARE/speed.log"
# The test changes the disk (install, purge): it writes into an overlay, the image stays clean.
rm -f "$IMG/overlay.qcow2"
qemu-img create -q -f qcow2 -F raw -b "$IMG/root.img" "$IMG/overlay.qcow2"

echo "--- boot ($KVER, TCG, systemd as PID 1)"
start=$(date +%s)
# qemu's default CPU: with `-cpu max` TCG emulates AVX2/FMA and tract's kernels for them run far
# slower than its SSE ones (one SSD frame: over 5 minutes against 18 s).
timeout 1200 qemu-system-x86_64 -accel tcg -smp 2 -m 1536 -nographic -no-reboot \
    -kernel "$VMLINUZ" -initrd "$IMG/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet systemd.show_status=error" \
    -drive "file=$IMG/overlay.qcow2,format=qcow2,if=virtio,cache=unsafe" \
    -virtfs "local,path=$SHARE,mount_tag=share,security_model=none" \
    </dev/null >"$IMG/console.log" 2>&1 || true
VM_SECONDS=$(($(date +%s) - start))
rm -f "$IMG/overlay.qcow2"
echo "VM ran $VM_SECONDS s"
grep -E '^VM' "$IMG/console.log" || true
if ! grep -q VM-SERVICE-TEST-FINISHED "$IMG/console.log"; then
    tail -40 "$IMG/console.log"
    echo "VM did not finish"
    exit 1
fi
python3 tests/vm/vmtool.py service firmware-service/can/adas.dbc "$SHARE" \
    "$IMAGE_SECONDS" "$VM_SECONDS"
