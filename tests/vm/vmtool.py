#!/usr/bin/env python3
"""Host-side helpers for the VM test bed (the guest has no Python).

  vmtool.py modules KMODDIR DEST NAME...   copy NAME.ko and every module it depends on (read from
                                          each .ko's .modinfo `depends=`), print the load order
  vmtool.py speedlog DBC OUT               candump log feeding VehicleSpeed (E2E protected)
  vmtool.py check DBC CAPTURE EVENTS      decode the guest's `candump -L` capture with cantools
                                          and check values, counters, CRCs and timing
  vmtool.py enobufs DBC SHARE             ENOBUFS step: counted, reported, period kept
  vmtool.py camera SHARE                  camera step: frames, driver timestamps, reconnect
  vmtool.py e2e DBC SHARE                 end-to-end step: adasd's frames and its CAN status
  vmtool.py timing SHARE VM_SECONDS       print the measured figures (never asserted)
  vmtool.py readme README OUT              the README's install and remove commands (the code
                                          blocks after `<!-- vm-test: install -->` and
                                          `<!-- vm-test: remove -->`) -> OUT/readme-*.sh
  vmtool.py service DBC SHARE IMAGE_S VM_S
                                          the service VM test (tests/vm/service): the package
                                          under systemd
"""
import json
import os
import re
import shutil
import sys

import cantools

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "can"))
from e2e import e2e_crc, protect  # noqa: E402


def modinfo_depends(path):
    data = open(path, "rb").read()
    i = data.find(b"\0depends=")
    if i < 0:
        return []
    end = data.find(b"\0", i + 1)
    deps = data[i + len(b"\0depends="):end].decode()
    return [d for d in deps.split(",") if d]


def cmd_modules(kmoddir, dest, names):
    index = {}
    for root, _, files in os.walk(kmoddir):
        for f in files:
            if f.endswith(".ko"):
                index[f[:-3].replace("-", "_")] = os.path.join(root, f)
    order, seen = [], set()

    def visit(name):
        key = name.replace("-", "_")
        if key in seen:
            return
        seen.add(key)
        path = index.get(key)
        if path is None:
            sys.exit(f"module {name} not found under {kmoddir}")
        for d in modinfo_depends(path):
            visit(d)
        order.append(key)
        shutil.copy(path, os.path.join(dest, key + ".ko"))

    for n in names:
        visit(n)
    print(" ".join(order))


def cmd_speedlog(dbc, out):
    """2 s of VehicleSpeed at 50 km/h every 20 ms, with two corrupted frames (tolerated)."""
    db = cantools.database.load_file(dbc)
    msg = db.get_message_by_name("VehicleSpeed")
    lines, t0 = [], 1000.0
    for i in range(100):
        data = msg.encode({"VS_Speed": 50.0, "VS_SpeedValid": 1, "VS_LongAccel": 0.0,
                           "VS_Counter": 0, "VS_CRC": 0})
        data = bytearray(protect(msg.frame_id, data, i))
        if i in (40, 41):
            data[7] ^= 0x55  # bad CRC: counted, tolerated (2 < max_errors 3)
        lines.append(f"({t0 + i * 0.02:.6f}) vcan0 {msg.frame_id:03X}#{bytes(data).hex().upper()}")
    # Wrong DLC: counted, never a crash.
    lines.append(f"({t0 + 2.0:.6f}) vcan0 {msg.frame_id:03X}#0102")
    open(out, "w").write("\n".join(lines) + "\n")


def parse_capture(path):
    frames = []
    for line in open(path):
        parts = line.split()
        if len(parts) != 3 or "#" not in parts[2]:
            continue
        t = float(parts[0].strip("()"))
        fid, hexdata = parts[2].split("#")
        frames.append((t, int(fid, 16), bytes.fromhex(hexdata)))
    return frames


def cmd_check(dbc, capture, events):
    db = cantools.database.load_file(dbc)
    frames = parse_capture(capture)
    ev = {}
    for line in open(events):
        k, _, v = line.strip().partition("=")
        if k:
            ev[k] = float(v)
    for t, i, _ in frames:
        if i == 0x7F0:
            ev["link_down"] = t
        elif i == 0x7F1:
            ev["link_up"] = t
    check_exit = ev.get("adasd_exit")
    failures = []

    def check(cond, what):
        print(("ok    " if cond else "FAIL  ") + what)
        if not cond:
            failures.append(what)

    status = [(t, d) for t, i, d in frames if i == 0x121]
    speed = [(t, d) for t, i, d in frames if i == 0xA0 and len(d) == 8]
    check(len(status) >= 20, f"{len(status)} AEB_Status frames captured")
    msg = db.get_message_by_name("AEB_Status")
    decoded = []
    crc_bad = counter_bad = 0
    last_counter = None
    gap_jumps = 0
    prev_t = None
    for t, d in status:
        s = msg.decode(d, decode_choices=False)
        decoded.append((t, s))
        if d[7] != e2e_crc(0x121, d):
            crc_bad += 1
        c = s["AEB_Status_Counter"]
        if last_counter is not None and c != (last_counter + 1) % 15:
            # Frames that could not be sent while vcan0 was down are lost frames for the receiver.
            if "link_down" in ev and prev_t is not None and prev_t <= ev.get("link_up", 1e18) and t >= ev["link_down"]:
                gap_jumps += 1
            else:
                counter_bad += 1
        last_counter = c
        prev_t = t
    check(crc_bad == 0, f"AEB_Status CRC-8 SAE J1850 (E2E P01 style) right on all frames ({crc_bad} bad)")
    check(counter_bad == 0, f"AEB_Status alive counter continuous 0..14 ({counter_bad} jumps; {gap_jumps} across the link-down gap)")
    check(all(s["AEB_Status_Counter"] <= 14 for _, s in decoded), "counter never 15")
    # Period while the link is up: median gap ~100 ms.
    gaps = sorted(b[0] - a[0] for a, b in zip(status, status[1:]))
    med = gaps[len(gaps) // 2] if gaps else 0
    check(0.08 <= med <= 0.13, f"AEB_Status period median {med * 1000:.0f} ms (100 ms)")
    # Before any speed: NoEgo (1); while speed flows: valid (mode Standby); after it stops:
    # stale (3) within timeout (100 ms) + one status period (100 ms) + margin.
    first_speed = speed[0][0] if speed else None
    last_speed = speed[-1][0] if speed else None
    check(first_speed is not None and len(speed) >= 95, f"{len(speed)} VehicleSpeed frames seen on the bus")
    if first_speed is not None:
        before = [s for t, s in decoded if t < first_speed]
        check(bool(before) and all(s["AEB_StatusInhibit"] == 1 and s["AEB_Mode"] == 3 for s in before),
              "before the speed input: mode Unavailable, inhibit 1 (no ego)")
        during = [s for t, s in decoded if first_speed + 0.15 < t < last_speed]
        check(bool(during) and all(s["AEB_StatusInhibit"] == 0 and s["AEB_Mode"] == 1 for s in during),
              f"while speed flows (2 bad CRCs among it): mode Standby, no inhibit ({len(during)} frames)")
        stale = [t for t, s in decoded if t > last_speed and s["AEB_StatusInhibit"] == 3]
        lat = (stale[0] - last_speed) if stale else None
        check(lat is not None and lat <= 0.25,
              "speed stopped: inhibit 3 (ego stale) reported after "
              + (f"{lat * 1000:.0f} ms" if lat is not None else "never") + " (timeout 100 ms + period 100 ms)")
    if "link_up" in ev:
        after = [s for t, s in decoded if t > ev["link_up"]]
        check(len(after) >= 3, f"vcan0 down/up survived: {len(after)} status frames after link up")
        check(any(s["AEB_CanErrors"] > 0 and s["AEB_CanErrors"] <= 15 for t, s in decoded if t > ev["link_up"]),
              "write errors while vcan0 was down counted and reported (AEB_CanErrors > 0 after)")
    check("link_up" in ev, "marker frame sent after vcan0 came back up")
    check(check_exit == 0, f"adas-canio exit status after SIGTERM: {check_exit}")
    last = decoded[-1][1] if decoded else None
    check(last is not None and last["AEB_Mode"] == 0, "last AEB_Status after SIGTERM: mode Off (0)")
    warn = [(t, d) for t, i, d in frames if i == 0x120]
    wmsg = db.get_message_by_name("AEB_Warning")
    wbad = sum(1 for _, d in warn if d[7] != e2e_crc(0x120, d))
    for _, d in warn[:1]:
        print("      first AEB_Warning:", wmsg.decode(d, decode_choices=False))
    check(wbad == 0, f"AEB_Warning CRC right on all {len(warn)} frames")
    print(f"vm can checks: {len(failures)} failed")
    return 1 if failures else 0


class Checker:
    def __init__(self, name):
        self.name, self.failures = name, []

    def __call__(self, cond, what):
        print(("ok    " if cond else "FAIL  ") + what)
        if not cond:
            self.failures.append(what)

    def done(self):
        print(f"vm {self.name} checks: {len(self.failures)} failed")
        return 1 if self.failures else 0


def read_events(path):
    ev = {}
    if os.path.exists(path):
        for line in open(path):
            k, _, v = line.strip().partition("=")
            if k:
                ev[k] = v
    return ev


def decode_status(db, frames):
    msg = db.get_message_by_name("AEB_Status")
    return [(t, msg.decode(d, decode_choices=False), d) for t, i, d in frames if i == 0x121]


def marker_time(frames, frame_id):
    return next((t for t, i, _ in frames if i == frame_id), None)


def cmd_enobufs(dbc, share):
    """pfifo limit 0 between markers 0x7F2 and 0x7F3: writes fail with ENOBUFS."""
    c = Checker("enobufs")
    db = cantools.database.load_file(dbc)
    frames = parse_capture(os.path.join(share, "enobufs.log"))
    out = open(os.path.join(share, "enobufs.out")).read()
    ev = read_events(os.path.join(share, "enobufs.events"))
    t_full, t_free = marker_time(frames, 0x7F2), marker_time(frames, 0x7F3)
    c(t_full is not None and t_free is not None, "markers before and after the full queue captured")
    status = decode_status(db, frames)
    m = re.search(r"can: tx (\d+) tx_errors (\d+) dropped (\d+)", out)
    stats = {"tx_errors": m.group(2), "dropped": m.group(3)} if m else {}
    errors, dropped = int(stats.get("tx_errors", 0)), int(stats.get("dropped", 0))
    c(errors >= 3 and dropped >= 1,
      f"ENOBUFS counted by the CAN thread: {errors} write errors, {dropped} frames dropped")
    if t_full is not None and t_free is not None:
        # The qdisc is in place ~1 s between the markers (tc's own start-up aside): the status
        # stream must show a hole of most of that second.
        inside = [t_full] + [t for t, _, _ in status if t_full < t < t_free] + [t_free]
        hole = max(b - a for a, b in zip(inside, inside[1:]))
        c(hole >= 0.6, f"AEB_Status stopped while the queue was full (longest gap {hole * 1000:.0f} ms)")
        after = [(t, s) for t, s, _ in status if t > t_free]
        c(len(after) >= 5, f"{len(after)} AEB_Status frames after the queue drained")
        first = after[0][0] - t_free if after else None
        c(first is not None and first <= 0.25,
          "first AEB_Status " + (f"{first * 1000:.0f} ms" if first is not None else "never")
          + " after the queue drained (period 100 ms: the thread never blocked)")
        gaps = sorted(b[0] - a[0] for a, b in zip(after, after[1:]))
        med = gaps[len(gaps) // 2] if gaps else 0
        c(0.08 <= med <= 0.13, f"AEB_Status period afterwards {med * 1000:.0f} ms (100 ms)")
        c(any(s["AEB_CanErrors"] > 0 for _, s in after),
          "AEB_CanErrors > 0 reported after the ENOBUFS episode")
        bad_crc = sum(1 for _, _, d in status if d[7] != e2e_crc(0x121, d))
        c(bad_crc == 0, f"AEB_Status CRC right on all {len(status)} frames")
    c(ev.get("canio_exit") == "0", f"adas-canio exit status {ev.get('canio_exit')} (ran its 4 s, not stuck)")
    return c.done()


def parse_camera(path):
    frames, lost, summary = [], [], None
    for line in open(path):
        p = line.split(" ", 3)
        if p[0] == "frame" and len(p) == 4:
            frames.append((int(p[1]), int(p[2]), p[3].strip()))
        elif p[0] == "lost" and len(p) >= 3:
            lost.append((int(p[1]), int(p[2]), p[3].strip() if len(p) > 3 else ""))
        elif line.startswith("summary:"):
            summary = line.strip()
    return frames, lost, summary


def cmd_camera(share):
    c = Checker("camera")
    ev = read_events(os.path.join(share, "camera.events"))
    frames, lost, summary = parse_camera(os.path.join(share, "camera.out"))
    first_lost = lost[0][0] if lost else None
    last_lost = lost[-1][0] if lost else None
    before = [f for f in frames if first_lost is None or f[0] < first_lost]
    after = [f for f in frames if last_lost is not None and f[0] > last_lost]
    c(len(before) >= 10, f"{len(before)} frames from vivid before the unplug")
    c(all(size == "640x480" for _, _, size in frames), "every frame 640x480 RGB (YUYV converted)")
    times = [t for _, t, _ in frames]
    c(len(times) > 1 and all(b > a for a, b in zip(times, times[1:])),
      "driver timestamps strictly increasing across the whole run (reload included)")
    seqs = sorted([s for s, _, _ in frames] + [s for s, _, _ in lost])
    c(seqs == list(range(len(seqs))), "frames and lost reports numbered without gaps")
    c(len(lost) >= 1, f"{len(lost)} lost-frame reports while the device was gone")
    c(len(before) + len(after) == len(frames), "lost reports only during the outage (one block)")
    if lost:
        print("      first report: " + lost[0][2])
        print("      last report:  " + lost[-1][2])
    c(len(after) >= 10, f"{len(after)} frames after rmmod + insmod vivid (reconnected)")
    c(ev.get("rmmod") == "ok", "rmmod vivid succeeded once the source had let go of the device")
    err = open(os.path.join(share, "camera.err")).read()
    c("camera reconnected" in err, "the source logged its reconnection")
    c("panicked" not in err, "no panic")
    c(ev.get("camera_exit") == "0", f"adas-camera exit status {ev.get('camera_exit')} after SIGTERM")
    print("      " + (summary or "no summary"))
    return c.done()


def cmd_e2e(dbc, share):
    c = Checker("e2e")
    db = cantools.database.load_file(dbc)
    ev = read_events(os.path.join(share, "e2e.events"))
    frames = parse_capture(os.path.join(share, "e2e.log"))
    status = decode_status(db, frames)
    t_unplug, t_plug = marker_time(frames, 0x7F4), marker_time(frames, 0x7F5)
    events = [json.loads(l) for l in open(os.path.join(share, "e2e", "frames.jsonl")) if l.strip()]
    c(len(events) >= 3, f"adasd processed {len(events)} camera frames (frames.jsonl)")
    ts = [e["t_ns"] for e in events]
    c(all(b > a for a, b in zip(ts, ts[1:])), "frame times (driver timestamps) strictly increasing")
    c(all(e["image"] == "/dev/video0" for e in events), "every frame came from /dev/video0")
    c(len(status) >= 20, f"{len(status)} AEB_Status frames on vcan0")
    bad_crc = sum(1 for _, _, d in status if d[7] != e2e_crc(0x121, d))
    c(bad_crc == 0, "AEB_Status CRC right on all frames")
    first = status[0][1] if status else None
    c(first is not None and first["AEB_Mode"] == 3 and first["AEB_FaultFrameLost"] == 1,
      "the heartbeat starts before the first decided frame: mode Unavailable with FaultFrameLost")
    if t_unplug is not None and t_plug is not None:
        before = [s for t, s, _ in status if t < t_unplug]
        # Fps comes from consecutive frame times: ~0.03/s under TCG, 0.0 at the signal's 0.1 step.
        live = [s for s in before if s["AEB_Mode"] == 1 and s["AEB_Latency"] > 0]
        c(bool(live), f"before the unplug: Standby with the latency of processed frames ({len(live)} frames)"
          + (f", e.g. latency {live[-1]['AEB_Latency']:.0f} ms (saturates at 6553.5)" if live else ""))
        gone = [s for t, s, _ in status if t_unplug < t < t_plug]
        flagged = [s for s in gone if s["AEB_FaultCamera"] == 1 and s["AEB_FaultFrameLost"] == 1 and s["AEB_Mode"] == 3]
        c(bool(flagged), f"camera unplugged: mode Unavailable with FaultCamera + FaultFrameLost ({len(flagged)} frames)")
        after = [s for t, s, _ in status if t > t_plug]
        back = [s for s in after if s["AEB_Mode"] == 1 and s["AEB_FaultCamera"] == 0 and s["AEB_FaultFrameLost"] == 0]
        c(bool(back), f"camera back: Standby without camera faults again ({len(back)} frames)")
    else:
        c(False, "unplug/plug markers captured")
    warn = [d for t, i, d in frames if i == 0x120]
    c(all(d[7] == e2e_crc(0x120, d) for d in warn), f"AEB_Warning CRC right on all {len(warn)} frames")
    last = status[-1][1] if status else None
    c(last is not None and last["AEB_Mode"] == 0, "last AEB_Status after SIGTERM: mode Off (0)")
    err = open(os.path.join(share, "e2e.err")).read()
    c("panicked" not in err, "no panic")
    c(ev.get("adasd_exit") == "0", f"adasd exit status {ev.get('adasd_exit')} after SIGTERM")
    return c.done()


def cmd_timing(share, vm_seconds):
    """The measured figures, printed for the log (timings are reported, never asserted)."""
    tm = read_events(os.path.join(share, "timing"))
    cam = read_events(os.path.join(share, "camera.events"))
    e2e = read_events(os.path.join(share, "e2e.events"))
    print(f"timing: VM ran {vm_seconds} s (host wall clock); kernel boot to init {float(tm.get('boot_s', 0)):.1f} s")
    frames, _, summary = parse_camera(os.path.join(share, "camera.out"))
    before = int(cam.get("frames_before", 0))
    if before > 1:
        span = (frames[before - 1][1] - frames[0][1]) / 1e9
        print(f"timing: vivid 640x480 YUYV -> RGB under TCG: {(before - 1) / span:.1f} frames/s "
              f"(driver timestamps, {before} frames; 10 requested)")
    if "insmod_s" in cam and "resumed_s" in cam:
        print(f"timing: frames resumed {float(cam['resumed_s']) - float(cam['insmod_s']):.2f} s after insmod vivid "
              f"returned (reconnect_ms 500; guest clock, 0.1 s polling)")
    if "unbind_s" in cam and "resumed_s" in cam:
        print(f"timing: unplug to first frame again {float(cam['resumed_s']) - float(cam['unbind_s']):.1f} s "
              "(includes the script's 2 s of waiting and the module reload)")
    events = []
    p = os.path.join(share, "e2e", "frames.jsonl")
    if os.path.exists(p):
        events = [json.loads(l) for l in open(p) if l.strip()]
    if "start_s" in e2e and "frames_s" in e2e:
        print(f"timing: adasd start to 2nd processed frame {float(e2e['frames_s']) - float(e2e['start_s']):.1f} s")
    out = os.path.join(share, "e2e.out")
    if os.path.exists(out):
        ms = [float(l.rsplit("(", 1)[1].split(" ms")[0]) for l in open(out) if l.startswith("frame ") and "ms)" in l]
        if ms:
            ms.sort()
            print(f"timing: adasd per frame under TCG (detector + rest): median {ms[len(ms) // 2]:.0f} ms "
                  f"over {len(ms)} frames")
    if "end_s" in tm:
        print(f"timing: guest uptime at the end {float(tm['end_s']):.1f} s")


def readme_block(text, marker):
    """The lines of the first fenced code block after `<!-- vm-test: MARKER -->`."""
    tag = f"<!-- vm-test: {marker} -->"
    if tag not in text:
        sys.exit(f"README: no {tag} marker")
    lines = text.split(tag, 1)[1].splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("```")), None)
    end = next((i for i, l in enumerate(lines) if start is not None and i > start and l.startswith("```")), None)
    if start is None or end is None:
        sys.exit(f"README: no code block after {tag}")
    return [l for l in lines[start + 1:end] if l.strip() and not l.lstrip().startswith("#")]


def cmd_readme(readme, out):
    text = open(readme).read()
    for marker in ("install", "remove"):
        lines = readme_block(text, marker)
        open(os.path.join(out, f"readme-{marker}.sh"), "w").write("\n".join(lines) + "\n")
        print(f"README {marker}: " + " | ".join(lines))


def readme_results(path):
    """[(command, output, exit status)] from the guest's readme.log."""
    results, cmd, out = [], None, []
    for line in open(path):
        if line.startswith("+ "):
            cmd, out = line[2:].rstrip("\n"), []
        elif line.startswith("rc=") and cmd is not None:
            results.append((cmd, "".join(out), int(line[3:])))
            cmd = None
        else:
            out.append(line)
    return results


# The start-up line `adasd run` prints on stdout (journald files it at the unit's info level):
# "adasd VERSION: SOURCE → DETECTOR → CAN; output DIR…" (service/mod.rs, startup_line).
STARTUP_MESSAGE = re.compile(r"^adasd \S+: .+ → .+ → ")
PER_FRAME_LINE = re.compile(r"^(frame \d+|skipped: )")


def cmd_service(dbc, share, image_s, vm_s):
    c = Checker("service")
    db = cantools.database.load_file(dbc)
    ev = read_events(os.path.join(share, "events"))
    runs = readme_results(os.path.join(share, "readme.log"))
    for cmd, out, rc in runs:
        c(rc == 0, f"README command exits 0: {cmd} (exit {rc})")
        if rc != 0:
            print("      " + out.strip().replace("\n", "\n      "))
    by_cmd = {cmd.split("#")[0].strip(): out for cmd, out, _ in runs}
    check_out = next((o for k, o in by_cmd.items() if "config check" in k), "")
    c(": ok (" in check_out, "adasd config check /etc/adas/adasd.toml: ok (the installed config, "
      "absolute paths, the vivid camera at the example calibration's size)")
    show = read_events(os.path.join(share, "show-started.txt"))
    c(show.get("Type") == "notify" and show.get("ActiveState") == "active" and show.get("SubState") == "running",
      f"after `systemctl enable --now`: {show.get('ActiveState')} ({show.get('SubState')}), Type={show.get('Type')}")
    c(show.get("StatusText", "").startswith("running "),
      f"STATUS= from the daemon's sd_notify: {show.get('StatusText')!r}")
    owners = open(os.path.join(share, "owners.txt")).read()
    c("/var/lib/adas adas:adas 750" in owners and "/etc/adas root:adas 750" in owners
      and "/var/log/adas adas:adas 750" in owners,
      "user adas, /etc/adas root:adas 0750, /var/lib/adas and /var/log/adas adas:adas 0750")
    security = next((o for k, o in by_cmd.items() if "systemd-analyze security" in k), "")
    m = re.search(r"Overall exposure level for adasd.service: ([0-9.]+)", security)
    c(m is not None and float(m.group(1)) <= 2.0,
      f"systemd-analyze security adasd on the installed unit: {m.group(1) if m else 'not found'} (<= 2.0)")

    frames = parse_capture(os.path.join(share, "capture.log"))
    status = decode_status(db, frames)
    c(len(status) >= 20, f"{len(status)} AEB_Status frames on can0 (candump, decoded with cantools)")
    bad_crc = sum(1 for _, _, d in status if d[7] != e2e_crc(0x121, d))
    c(bad_crc == 0, f"AEB_Status CRC right on all {len(status)} frames")
    t_stop_mark, t_wd_mark, t_back_mark = (marker_time(frames, i) for i in (0x7F2, 0x7F0, 0x7F1))
    standby = [t for t, s, _ in status if s["AEB_Mode"] == 1 and s["AEB_StatusInhibit"] == 0]
    c(bool(standby) and t_wd_mark is not None and standby[0] < t_wd_mark,
      f"running: mode Standby, no inhibit ({len(standby)} frames): camera frames decided with the bus's speed")
    c("standby_s" in ev, "Standby reached within 240 s of the start")

    c(ev.get("pid_after") not in (None, "0", ev.get("pid_before")),
      f"watchdog: SIGSTOP'd MainPID {ev.get('pid_before')} replaced by {ev.get('pid_after')}")
    c(int(ev.get("nrestarts", "0")) >= 1, f"NRestarts = {ev.get('nrestarts')}")
    journal = [json.loads(l) for l in open(os.path.join(share, "journal.json")) if l.strip()]
    c(any("atchdog timeout" in str(e.get("MESSAGE", "")) for e in journal),
      "the journal has systemd's \"Watchdog timeout\" for adasd.service")
    if t_back_mark is not None:
        back = [t for t in standby if t > t_back_mark]
        c(bool(back), f"after the restart: Standby again ({len(back)} frames)")
    if t_stop_mark is not None:
        after = [s for t, s, _ in status if t > t_stop_mark]
        c(bool(after) and after[-1]["AEB_Mode"] == 0, "`systemctl stop adasd`: the last AEB_Status is mode Off")
    else:
        c(False, "stop marker captured")
    c(ev.get("stop_rc") == "0", f"systemctl stop exit status {ev.get('stop_rc')}")
    stopped = read_events(os.path.join(share, "show-stopped.txt"))
    c(stopped.get("ActiveState") == "inactive" and stopped.get("Result") == "success",
      f"after stop: {stopped.get('ActiveState')}, result {stopped.get('Result')} (exit status 0 on SIGTERM)")

    # The journal (docs: logs for journald): the daemon's own lines, not systemd's.
    own = [e for e in journal if e.get("_COMM") in ("adasd",) or e.get("SYSLOG_IDENTIFIER") == "adasd"]
    startup = [e for e in own if STARTUP_MESSAGE.search(str(e.get("MESSAGE", "")))]
    flood = [e for e in own if PER_FRAME_LINE.search(str(e.get("MESSAGE", "")))]
    c(any(e.get("PRIORITY") == "6" for e in startup),
      "journal: the start-up summary at priority 6 (info): "
      + ", ".join(f"<{e.get('PRIORITY')}> {e.get('MESSAGE')}" for e in startup[:2]))
    c(not flood, f"journal: no per-frame lines ({len(flood)} of {len(own)} lines from adasd)")

    leftovers = open(os.path.join(share, "leftovers.txt")).read().split()
    c(not leftovers, "purge: nothing the package installed or made is left" + (f": {leftovers}" if leftovers else ""))
    status_after = open(os.path.join(share, "dpkg-status.txt")).read().strip()
    c(not status_after.startswith(("ii", "rc")), f"purge: dpkg knows no adasd any more ({status_after!r})")
    user = open(os.path.join(share, "user-after-purge.txt")).read().strip()
    print(f"      user adas after purge: {user or 'gone'} (kept on purpose, Debian policy)")

    print(f"timing: image {image_s} s (about 0: reused), VM {vm_s} s boot to power-off (host wall clock)")
    print(f"timing: guest kernel start to multi-user.target and the test: {float(ev.get('test_start_s', 0)):.1f} s")
    for a, b, what in (("install_s", "installed_s", "README install commands (apt-get install to security)"),
                       ("installed_s", "standby_s", "then to the first Standby status"),
                       ("sigstop_s", "restarted_s", "SIGSTOP to the new MainPID active (WatchdogSec 60 s in the VM + abort 10 s + RestartSec 2 s + start)"),
                       ("stop_s", "stopped_s", "systemctl stop"),
                       ("test_start_s", "end_s", "the whole guest test")):
        if a in ev and b in ev:
            print(f"timing: {what}: {float(ev[b]) - float(ev[a]):.1f} s")
    return c.done()


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "modules":
        cmd_modules(args[0], args[1], args[2:])
    elif cmd == "speedlog":
        cmd_speedlog(*args)
    elif cmd == "check":
        sys.exit(cmd_check(*args))
    elif cmd == "enobufs":
        sys.exit(cmd_enobufs(*args))
    elif cmd == "camera":
        sys.exit(cmd_camera(*args))
    elif cmd == "e2e":
        sys.exit(cmd_e2e(*args))
    elif cmd == "timing":
        cmd_timing(*args)
    elif cmd == "readme":
        cmd_readme(*args)
    elif cmd == "service":
        sys.exit(cmd_service(*args))
    else:
        sys.exit(__doc__)
