#!/usr/bin/env python3
"""Decodes a candump ego-input log (`[can] input_log`) with cantools against our DBC, an
implementation nobody here wrote, and checks it says what its provenance claims: every frame
decodes, VehicleSpeed is valid and equal to SPEED_KPH, each message comes every 20 ms (its DBC
cycle) with its alive counter counting 0..14.

    python3 tests/can/check_ego_log.py firmware-service/can/adas.dbc samples/udacity/ego.can.log 119
"""
import re
import sys

import cantools

LINE = re.compile(r"^\((\d+)\.(\d{6})\) (\S+) ([0-9A-Fa-f]+)#([0-9A-Fa-f]*)$")


def main(dbc_path, log_path, speed_kph):
    db = cantools.database.load_file(dbc_path)
    last = {}  # message name -> (t_us, counter)
    frames = 0
    with open(log_path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = LINE.match(line)
            if not m:
                sys.exit(f"{log_path}:{n}: not a candump -L line: {line}")
            t_us = int(m[1]) * 1_000_000 + int(m[2])
            msg = db.get_message_by_frame_id(int(m[4], 16))
            sig = msg.decode(bytes.fromhex(m[5]))
            counter = next(v for k, v in sig.items() if k.endswith("Counter"))
            if msg.name == "VehicleSpeed":
                # Value tables: the flag reads by its label; "NotAvailable" (raw 0xFFFF) is no speed.
                speed = sig["VS_Speed"]
                if sig["VS_SpeedValid"] != "Valid" or isinstance(speed, str) or abs(speed - speed_kph) > 0.005:
                    sys.exit(f"{log_path}:{n}: {sig}, expected {speed_kph} km/h valid")
            if msg.name in last:
                t0, c0 = last[msg.name]
                if t_us - t0 != msg.cycle_time * 1000:
                    sys.exit(f"{log_path}:{n}: {msg.name} {t_us - t0} us after the last, cycle {msg.cycle_time} ms")
                if counter != (c0 + 1) % 15:
                    sys.exit(f"{log_path}:{n}: {msg.name} counter {counter} after {c0}")
            last[msg.name] = (t_us, counter)
            frames += 1
    if set(last) != {"VehicleSpeed", "DriverInput", "YawRate"}:
        sys.exit(f"{log_path}: messages {sorted(last)}, expected VehicleSpeed, DriverInput, YawRate")
    print(f"{log_path}: {frames} frames decode with cantools; {speed_kph} km/h valid, 20 ms cycle, counters in order")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
