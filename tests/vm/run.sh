#!/usr/bin/env bash
# The VM test bed: boots Debian's stock kernel under qemu (TCG, no KVM) with a busybox initramfs,
# can-utils, iproute2 and the daemon's binaries with their shared libraries, runs the CAN scenario
# of guest-init.sh against the real kernel SocketCAN stack, and checks the capture with cantools.
# Usage: bash tests/vm/run.sh [BIN_DIR]   (runs tests/vm/prepare.sh first; VM_WORK=/tmp/adas-vm by
# default). BIN_DIR holds adasd, adas-canio and adas-camera as already built; without it they are
# built here (debug, default features).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VM_WORK=${VM_WORK:-/tmp/adas-vm}
bash tests/vm/prepare.sh
KDIR=$(ls -d "$VM_WORK"/kernel/lib/modules/*/ | head -1)
KVER=$(basename "$KDIR")
VMLINUZ=$VM_WORK/kernel/boot/vmlinuz-$KVER

echo "--- the daemon's binaries (the host's debug build; they run on the guest's copy of its glibc)"
# CI passes the folder `cargo test --workspace` built them in: `cargo build -p adasd` resolves
# features for adasd alone, not for the workspace and its tests, and would rebuild most
# dependencies (4 to 7 minutes on 2 cores). The guest gets the binaries' shared libraries next to
# can-utils'.
if [[ -n ${1:-} ]]; then
    BIN=$1
else
    cargo build -q -p adasd --bins
    BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug
fi

echo "--- initramfs"
IR=$VM_WORK/initramfs
rm -rf "$IR" && mkdir -p "$IR"/{bin,usr/bin,lib,lib64,modules,proc,sys,dev,share,tmp}
cp /bin/busybox "$IR/bin/busybox"
python3 tests/vm/vmtool.py modules "$KDIR" "$IR/modules" virtio_pci 9pnet_virtio 9p can can-raw can-dev vcan vivid >"$IR/modules.order"
copy_with_libs() {
    # $2: strip on the way (debug symbols would only fill the guest's RAM)
    if [[ ${2:-} == strip ]]; then strip -o "$IR/usr/bin/$(basename "$1")" "$1"; else cp "$1" "$IR/usr/bin/"; fi
    ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
        mkdir -p "$IR$(dirname "$lib")"
        cp -L "$lib" "$IR$lib"
    done
}
for b in candump cansend canplayer; do copy_with_libs "/usr/bin/$b"; done
copy_with_libs "$(command -v ip)"   # busybox ip cannot create vcan links
copy_with_libs "$(command -v tc)"   # the ENOBUFS step (a pfifo of length 0); busybox has a tc of its own: call /usr/bin/tc
for b in adas-canio adas-camera adasd; do copy_with_libs "$BIN/$b" strip; done
mkdir -p "$IR/e2e" "$IR/models"
cp tests/vm/camera/adasd.toml tests/vm/camera/calibration_640x480.toml "$IR/e2e/"
cp models/ssdlite_mobilenet_v2_pedestrian_300.toml models/ssdlite_mobilenet_v2_pedestrian_300.onnx "$IR/models/"
python3 tests/vm/vmtool.py speedlog firmware-service/can/adas.dbc "$IR/speed.log"
cp tests/vm/guest-init.sh "$IR/init" && chmod +x "$IR/init"
(cd "$IR" && find . | cpio -o -H newc --quiet | gzip -1 >"$VM_WORK/initramfs.cpio.gz")

echo "--- boot ($KVER, TCG)"
SHARE=$VM_WORK/share
rm -rf "$SHARE" && mkdir -p "$SHARE"
start=$(date +%s)
timeout 600 qemu-system-x86_64 -accel tcg -m 1024 -smp 1 -nographic -no-reboot \
    -kernel "$VMLINUZ" -initrd "$VM_WORK/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet" \
    -virtfs "local,path=$SHARE,mount_tag=share,security_model=none" \
    </dev/null >"$VM_WORK/console.log" 2>&1 || true
VM_SECONDS=$(($(date +%s) - start))
echo "VM ran $VM_SECONDS s"
grep -E '^VM' "$VM_WORK/console.log" || true
if ! grep -q VM-TESTS-FINISHED "$VM_WORK/console.log"; then
    tail -40 "$VM_WORK/console.log"
    echo "VM did not finish"
    exit 1
fi
cat "$SHARE/canio.out"
rc=0
python3 tests/vm/vmtool.py check firmware-service/can/adas.dbc "$SHARE/capture.log" "$SHARE/events" || rc=1
python3 tests/vm/vmtool.py enobufs firmware-service/can/adas.dbc "$SHARE" || rc=1
python3 tests/vm/vmtool.py camera "$SHARE" || rc=1
python3 tests/vm/vmtool.py e2e firmware-service/can/adas.dbc "$SHARE" || rc=1
python3 tests/vm/vmtool.py timing "$SHARE" "$VM_SECONDS"
exit $rc
