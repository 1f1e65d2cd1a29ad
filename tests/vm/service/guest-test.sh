#!/bin/sh
# The service VM test, in the guest (systemd is PID 1; run by adas-vmtest.service from the 9p
# share, /share). It plays the vehicle side — can0 as a vcan (there is no CAN controller), the
# vivid webcam as /dev/video0 at the example calibration's 1280×720, VehicleSpeed on the bus —
# then runs the README's install commands exactly (readme-install.sh, extracted on the host),
# the watchdog and stop checks, and the README's remove commands (readme-remove.sh). Everything
# goes to the share; the host checks it (vmtool.py service).
S=/share
cd "$S" || exit 1
: >"$S/events"
ev() { echo "$1=$2" >>"$S/events"; }
log() { echo "VM: $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
prop() { systemctl show -p "$1" --value adasd; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds (0) or SECONDS pass (1)
wait_for() {
    deadline=$(($(cut -d. -f1 /proc/uptime) + $1)); shift
    until "$@"; do
        [ "$(cut -d. -f1 /proc/uptime)" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}
# AEB_Status (0x121) frames with mode Standby (low nibble of byte 0 = 1) after the capture's
# line number $1: frames decided with a valid ego speed.
has_standby() { [ "$(tail -n +"$1" "$S/capture.log" | grep -c ' 121#[0-9A-F]1')" -ge "$2" ]; }
# run_block FILE: each line of FILE as a shell command, logged with its output and exit status.
run_block() {
    while IFS= read -r line; do
        echo "+ $line" >>"$S/readme.log"
        sh -c "$line" </dev/null >>"$S/readme.log" 2>&1
        echo "rc=$?" >>"$S/readme.log"
    done <"$1"
}

ev test_start_s "$(up)"
log "kernel start to this test (systemd up, multi-user.target reached): $(up) s"

# --- the vehicle side
modprobe vcan && ip link add dev can0 type vcan && ip link set can0 up || log "FAIL: can0"
modprobe vivid || log "FAIL: modprobe vivid"
udevadm settle
ls -l /dev/video0 >>"$S/devices.txt" 2>&1
# The capture keeps what the daemon sends (0x120, 0x121) and the test's markers (0x7F0-0x7FF).
candump -L can0,120:7FE,7F0:7F0 >"$S/capture.log" &
DUMP=$!
canplayer -l i -I "$S/speed.log" can0=vcan0 &
PLAYER=$!

# --- the README's install commands
: >"$S/readme.log"
ev install_s "$(up)"
run_block "$S/readme-install.sh"
ev installed_s "$(up)"
systemctl show adasd -p ActiveState -p SubState -p Type -p StatusText -p MainPID -p NRestarts \
    >"$S/show-started.txt"
stat -c '%n %U:%G %a' /etc/adas /etc/adas/adasd.toml /var/lib/adas /var/lib/adas/recordings \
    /var/log/adas >"$S/owners.txt" 2>&1
id adas >>"$S/owners.txt" 2>&1

# --- running: frames decided with the bus's speed
if wait_for 240 has_standby 1 3; then ev standby_s "$(up)"; else log "FAIL: no Standby status in 240 s"; fi

# --- the watchdog: a hung daemon (SIGSTOP) is killed after WatchdogSec (60 s here: image.sh)
# and started again
cansend can0 7F0#01
PID1=$(prop MainPID)
ev pid_before "$PID1"
ev sigstop_s "$(up)"
kill -STOP "$PID1"
restarted() { p=$(prop MainPID); [ "$p" != 0 ] && [ "$p" != "$PID1" ] && [ "$(prop ActiveState)" = active ]; }
if wait_for 300 restarted; then ev restarted_s "$(up)"; else log "FAIL: adasd not restarted in 300 s"; fi
ev pid_after "$(prop MainPID)"
ev nrestarts "$(prop NRestarts)"
cansend can0 7F1#02
MARK=$(wc -l <"$S/capture.log")
if wait_for 240 has_standby "$MARK" 3; then ev standby_again_s "$(up)"; else log "FAIL: no Standby after the restart"; fi

# --- stop: the last status is mode Off
cansend can0 7F2#03
ev stop_s "$(up)"
systemctl stop adasd
ev stop_rc $?
ev stopped_s "$(up)"
sleep 0.5
kill "$PLAYER" "$DUMP"
systemctl show adasd -p ActiveState -p Result >"$S/show-stopped.txt"
journalctl -u adasd -b -o json --no-pager >"$S/journal.json"

# --- the README's remove commands, then what is left
dpkg-query -L adasd >"$S/files.txt"
run_block "$S/readme-remove.sh"
: >"$S/leftovers.txt"
while IFS= read -r f; do
    if [ -e "$f" ] && [ ! -d "$f" ]; then echo "$f" >>"$S/leftovers.txt"; fi
done <"$S/files.txt"
for d in /etc/adas /var/lib/adas /var/log/adas /usr/share/adas /usr/share/doc/adasd \
    /etc/systemd/system/multi-user.target.wants/adasd.service; do
    if [ -e "$d" ]; then echo "$d" >>"$S/leftovers.txt"; fi
done
dpkg-query -W -f='${db:Status-Abbrev}\n' adasd >"$S/dpkg-status.txt" 2>&1
getent passwd adas >"$S/user-after-purge.txt"
ev end_s "$(up)"
sync
log "VM-SERVICE-TEST-FINISHED"
