#!/usr/bin/env python3
"""Host-side helpers for the VM test bed (the guest has no Python).

  vmtool.py modules KMODDIR DEST NAME...   copy NAME.ko and every module it depends on (read from
                                          each .ko's .modinfo `depends=`), print the load order
  vmtool.py speedlog DBC OUT               candump log feeding VehicleSpeed (E2E protected)
  vmtool.py check DBC CAPTURE             decode the guest's `candump -L` capture with cantools
                                          and check values, counters, CRCs and timing
"""
import os
import shutil
import sys

import cantools


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


# --- E2E (must match firmware-service/src/can/e2e.rs and the DBC) -----------------------------
def crc8_sae_j1850(data):
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1D) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ 0xFF


def e2e_crc(frame_id, payload, crc_byte=7):
    body = bytes(b for i, b in enumerate(payload) if i != crc_byte)
    return crc8_sae_j1850(bytes([frame_id & 0xFF, (frame_id >> 8) & 0xFF]) + body)


def protect(frame_id, payload, counter):
    p = bytearray(payload)
    p[6] = (p[6] & 0xF0) | (counter % 15)
    p[7] = e2e_crc(frame_id, p)
    return bytes(p)


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


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "modules":
        cmd_modules(args[0], args[1], args[2:])
    elif cmd == "speedlog":
        cmd_speedlog(*args)
    elif cmd == "check":
        sys.exit(cmd_check(*args))
    else:
        sys.exit(__doc__)
