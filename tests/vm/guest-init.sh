#!/bin/busybox sh
# PID 1 of the test VM. Loads the CAN and camera modules, creates vcan0, runs the scenarios
# against can-utils peers and the vivid camera, and writes everything to the 9p share (/share),
# which the host then checks (vmtool.py check / enobufs / camera / e2e):
#   1. CAN: adas-canio, speed input, vcan0 down/up, SIGTERM            -> capture.log, events
#   2. ENOBUFS: a pfifo of limit 0 on vcan0 drops every frame           -> enobufs.log, enobufs.out
#   3. camera: adas-camera on vivid; unbind + rmmod + insmod vivid      -> camera.out, camera.events
#   4. end to end: adasd (vivid -> tract SSD -> SocketCAN), vivid unbound and bound again mid-run
#                                                                       -> e2e.log, e2e/, e2e.events
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin LD_LIBRARY_PATH=/lib:/usr/lib
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /share /tmp
# vivid: one device with only a video capture node and one webcam input (less work under TCG).
VIVID_ARGS="n_devs=1 node_types=0x1 num_inputs=1 input_types=0x0"
for m in $(cat /modules.order); do
    args=""; [ "$m" = vivid ] && args=$VIVID_ARGS
    insmod /modules/$m.ko $args || echo "VM: insmod $m failed"
done
mount -t 9p -o trans=virtio,version=9p2000.L share /share || echo "VM: FAIL: cannot mount 9p share"
log() { echo "VM: $*"; echo "$*" >>/share/guest.log; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
# wait_lines FILE PATTERN N SECONDS: until FILE has N lines matching PATTERN (0: yes, 1: timed out)
wait_lines() {
    i=0
    while true; do
        # The file may not exist yet: a background job's redirection happens in the child.
        n=$(grep -c "$2" "$1" 2>/dev/null); [ "${n:-0}" -ge "$3" ] && return 0
        i=$((i + 1)); [ $i -gt $(($4 * 10)) ] && return 1
        sleep 0.1
    done
}
echo "boot_s=$(uptime_s)" >/share/timing
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

# --- 2. ENOBUFS: a FIFO of length 0 makes every write fail with ENOBUFS (the kernel's "queue
# full"); adas-canio must count it, report it in AEB_Status and keep its 100 ms period.
log "ENOBUFS: pfifo limit 0 on vcan0"
candump -L vcan0 >/share/enobufs.log &
DUMP=$!
sleep 0.2
adas-canio --interface vcan0 --seconds 4 >/share/enobufs.out 2>&1 &
D=$!
sleep 1
cansend vcan0 7F2#03
/usr/bin/tc qdisc add dev vcan0 root pfifo limit 0 || log "FAIL: tc qdisc add"
if cansend vcan0 7FF#00 2>/dev/null; then log "FAIL: cansend went through a full queue"; else log "cansend: queue full as intended"; fi
sleep 1
/usr/bin/tc qdisc del dev vcan0 root || log "FAIL: tc qdisc del"
cansend vcan0 7F3#04
wait $D
echo "canio_exit=$?" >/share/enobufs.events
sleep 0.2
kill $DUMP

# --- 3. camera: stream from vivid, then unplug (unbind), unload, reload; frames must resume.
VIVID_DEV=$(ls /sys/bus/platform/drivers/vivid/ 2>/dev/null | grep '^vivid' | head -1)
log "camera: $(ls /dev/video* 2>/dev/null | tr '\n' ' ')(platform device ${VIVID_DEV:-none})"
: >/share/camera.events
# --device-timeout: TCG is slow; the first frame may take longer than the default 10 s.
ADASD_LOG=info adas-camera v4l2:///dev/video0 --size 640x480 --fps 10 --seconds 120 \
    --device-timeout 60 >/share/camera.out 2>/share/camera.err &
C=$!
wait_lines /share/camera.out '^frame' 10 60 || log "FAIL: fewer than 10 camera frames in 60 s"
echo "first_frames_s=$(uptime_s)" >>/share/camera.events
echo "unbind_s=$(uptime_s)" >>/share/camera.events
if rmmod vivid 2>/dev/null; then
    # Not pinned by the open device: it is gone now.
    echo "rmmod_while_open=ok" >>/share/camera.events
    echo "rmmod=ok" >>/share/camera.events
    wait_lines /share/camera.out '^lost' 1 10 || log "FAIL: no lost-frame report after rmmod"
else
    # An open /dev/video0 pins the module: unplug the device first (unbind = what a USB
    # disconnect does), the source lets go of it, then the module can go.
    echo "rmmod_while_open=refused" >>/share/camera.events
    echo "$VIVID_DEV" >/sys/bus/platform/drivers/vivid/unbind || log "FAIL: unbind vivid"
    wait_lines /share/camera.out '^lost' 1 10 || log "FAIL: no lost-frame report after unbind"
    sleep 1
    rmmod vivid && echo "rmmod=ok" >>/share/camera.events || log "FAIL: rmmod vivid after unbind"
fi
# No frames while the device is gone: everything counted now came before.
before=$(grep -c '^frame' /share/camera.out)
echo "frames_before=$before" >>/share/camera.events
sleep 1
insmod /modules/vivid.ko $VIVID_ARGS || log "FAIL: insmod vivid"
t_insmod=$(uptime_s)
echo "insmod_s=$t_insmod" >>/share/camera.events
if wait_lines /share/camera.out '^frame' $((before + 1)) 30; then echo "resumed_s=$(uptime_s)" >>/share/camera.events
else log "FAIL: no frame within 30 s of insmod"; fi
wait_lines /share/camera.out '^frame' $((before + 10)) 60 || log "FAIL: fewer than 10 frames after reload"
kill -TERM $C
wait $C
echo "camera_exit=$?" >>/share/camera.events
log "camera: $(tail -1 /share/camera.out)"

# --- 4. end to end: vivid -> adasd (tract SSD on the CPU) -> SocketCAN; unplugged mid-run.
log "end to end: adasd run"
VIVID_DEV=$(ls /sys/bus/platform/drivers/vivid/ 2>/dev/null | grep '^vivid' | head -1)
: >/share/e2e.events
candump -L vcan0 >/share/e2e.log &
DUMP=$!
canplayer -l i -I /speed.log &
P=$!
mkdir -p /share/e2e
echo "start_s=$(uptime_s)" >>/share/e2e.events
# --verbose: a line per frame into the file too (the waits below count them).
ADASD_LOG=info adasd run --verbose --config /e2e/adasd.toml --out /share/e2e >/share/e2e.out 2>/share/e2e.err &
A=$!
# Under TCG the detector takes ~30 s a frame: 2 frames before the unplug, 1 after it.
if wait_lines /share/e2e.out '^frame' 2 150; then echo "frames_s=$(uptime_s)" >>/share/e2e.events
else log "FAIL: adasd processed fewer than 2 frames in 150 s"; fi
cansend vcan0 7F4#05
echo "$VIVID_DEV" >/sys/bus/platform/drivers/vivid/unbind || log "FAIL: unbind vivid (e2e)"
wait_lines /share/e2e.out '^skipped' 2 30 || log "FAIL: adasd reported no lost frames after unbind"
sleep 1
echo "$VIVID_DEV" >/sys/bus/platform/drivers/vivid/bind || log "FAIL: bind vivid (e2e)"
cansend vcan0 7F5#06
processed=$(grep -c '^frame' /share/e2e.out)
if wait_lines /share/e2e.out '^frame' $((processed + 1)) 120; then echo "resumed_s=$(uptime_s)" >>/share/e2e.events
else log "FAIL: adasd did not resume after bind"; fi
kill -TERM $A
wait $A
echo "adasd_exit=$?" >>/share/e2e.events
kill $P
sleep 0.3
kill $DUMP
echo "end_s=$(uptime_s)" >>/share/timing
sync
log "done"
echo "VM-TESTS-FINISHED"
poweroff -f
