#!/bin/busybox sh
# PID 1 of the service VM's initramfs: loads what the stock kernel needs to reach its root file
# system (virtio PCI + block, ext4 with crc32c), mounts /dev/vda and hands over to systemd.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do
    insmod "/modules/$m.ko" || echo "initramfs: insmod $m failed"
done
# virtio-blk probes asynchronously.
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mkdir -p /newroot
if ! mount -t ext4 -o rw /dev/vda /newroot; then
    echo "VM: FAIL: cannot mount /dev/vda"
    poweroff -f
fi
umount /dev /sys /proc
exec switch_root /newroot /lib/systemd/systemd
