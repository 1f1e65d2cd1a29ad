#!/bin/busybox sh
# PID 1 of the test VM. Loads the CAN modules, creates vcan0, runs the CAN scenario against
# can-utils peers and writes everything to the 9p share (/share), which the host then checks.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin LD_LIBRARY_PATH=/lib:/usr/lib
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /share /tmp
for m in $(cat /modules.order); do insmod /modules/$m.ko || echo "VM: insmod $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L share /share || echo "VM: FAIL: cannot mount 9p share"
log() { echo "VM: $*"; echo "$*" >>/share/guest.log; }
ip link add dev vcan0 type vcan && ip link set vcan0 up && log "vcan0 up" || log "FAIL: cannot create vcan0"
: >/share/events
candump -L vcan0 >/share/capture.log &
DUMP=$!
sleep 0.3
adas-canio --interface vcan0 >/share/canio.out 2>&1 &
D=$!
sleep 1
log "feeding VehicleSpeed with canplayer"
canplayer -I /speed.log
sleep 1
log "link down/up"
# Marker frames put the events on the capture's own clock.
cansend vcan0 7F0#01
sleep 0.1
ip link set vcan0 down
sleep 0.5
ip link set vcan0 up
# candump ends with "Network is down"; capture the rest too.
kill $DUMP 2>/dev/null
candump -L vcan0 >>/share/capture.log &
DUMP=$!
sleep 0.2
cansend vcan0 7F1#02 || log "FAIL: cansend after link up"
sleep 1
kill -TERM $D
wait $D
echo "adasd_exit=$?" >>/share/events
sleep 0.3
kill $DUMP
sync
log "done"
echo "VM-TESTS-FINISHED"
poweroff -f
