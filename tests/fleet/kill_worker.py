#!/usr/bin/env python3
"""Kills the Ray worker process that runs one drive's replay, mid-run (tests/fleet/ci.sh).

    kill_worker.py DRIVE [--after 1.0] [--within 120]

Ray names a worker process after the task it runs (`ray::replay:DRIVE`, tools/fleet); this
finds that process on this machine once it has run `--after` seconds and SIGKILLs it — the
worker, not the replay it started (which dies with it), as when a node's worker crashes or is
killed by the OOM killer. Prints the killed pid; exit 1 when no such task ran within `--within`
seconds.
"""

import argparse
import os
import signal
import sys
import time


def find(title: str) -> int | None:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmdline == title or cmdline.startswith(title + " "):
            return int(pid)
    return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("drive")
    p.add_argument("--after", type=float, default=1.0, help="seconds the task runs before the kill")
    p.add_argument("--within", type=float, default=120.0, help="seconds to wait for the task to start")
    a = p.parse_args()
    title = f"ray::replay:{a.drive}"
    deadline = time.monotonic() + a.within
    while time.monotonic() < deadline:
        pid = find(title)
        if pid is not None:
            time.sleep(a.after)
            if find(title) == pid:
                os.kill(pid, signal.SIGKILL)
                print(f"killed the worker of drive {a.drive}: pid {pid} ({title})", flush=True)
                return 0
        time.sleep(0.05)
    print(f"no worker ran {title} for {a.after} s within {a.within} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
