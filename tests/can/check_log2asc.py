#!/usr/bin/env python3
"""Checks that can-utils' `log2asc` converts an adasd can.log with the invocation docs/CAN.md
gives (the times moved out of the epoch's first second, which log2asc takes for "no start
time yet"; the interfaces named).

usage: check_log2asc.py CAN_LOG

Runs `sed 's/^(0/(1/' CAN_LOG | log2asc IFACE...`, then checks that the ASC file has one header
and, frame by frame, the log's id, payload and time since its first frame (to the microsecond).
Exit status 1 on any difference.
"""
import re
import subprocess
import sys

LOG_LINE = re.compile(r"^\((\d+)\.(\d{6})\) (\S+) ([0-9A-Fa-f]+)#([0-9A-Fa-f]*)$")
ASC_LINE = re.compile(r"^\s*(\d+)\.(\d{6}) (\d+)\s+([0-9A-Fa-f]+)(x?)\s+Rx\s+d (\d+)((?: [0-9A-F]{2})*)\s*$")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    path = sys.argv[1]
    frames = []
    ifaces = []
    with open(path) as f:
        for line in f:
            m = LOG_LINE.match(line.strip())
            if not m:
                continue
            sec, usec, iface, can_id, data = m.groups()
            if iface not in ifaces:
                ifaces.append(iface)
            frames.append((int(sec) * 1_000_000 + int(usec), ifaces.index(iface) + 1, int(can_id, 16), data.upper()))
    if not frames:
        print(f"FAIL {path}: no CAN frames")
        return 1
    # The invocation docs/CAN.md gives.
    command = f"sed 's/^(0/(1/' '{path}' | log2asc {' '.join(ifaces)}"
    asc = subprocess.run(command, shell=True, check=True, capture_output=True, text=True).stdout
    headers = asc.count("base hex")
    rows = [ASC_LINE.match(line) for line in asc.splitlines()]
    rows = [r for r in rows if r]
    problems = []
    if headers != 1:
        problems.append(f"{headers} ASC headers (expected 1)")
    if len(rows) != len(frames):
        problems.append(f"{len(rows)} ASC frames for {len(frames)} log frames")
    t0 = frames[0][0]
    for i, (frame, row) in enumerate(zip(frames, rows)):
        t_us, channel, can_id, data = frame
        sec, usec, ch, asc_id, _, dlc, payload = row.groups()
        got = (int(sec) * 1_000_000 + int(usec), int(ch), int(asc_id, 16), payload.replace(" ", ""))
        want = (t_us - t0, channel, can_id, data)
        if got != want or int(dlc) != len(data) // 2:
            problems.append(f"frame {i + 1}: ASC {got}, log {want}")
            if len(problems) > 5:
                break
    if problems:
        print(f"FAIL {path}: {command}")
        for p in problems:
            print(f"  {p}")
        return 1
    print(f"ok {path}: {len(frames)} frames over {(frames[-1][0] - t0) / 1e6:.3f} s converted by `{command}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
