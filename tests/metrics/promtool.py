#!/usr/bin/env python3
"""Prometheus's own linter on a running daemon's /metrics: `adasd run` with `[metrics]` on the
soak's inputs (the vtest sequence repeated, a VehicleSpeed log as CAN input, an event-mode
recording), scraped once a few frames are decided, the text piped into `promtool check metrics`.

    python3 tests/metrics/promtool.py --adasd target/release/adasd --promtool promtool --out /tmp/m

Pass/fail: /metrics answers 200 with the 0.0.4 content type, promtool finds no problem, /healthz
answers 200 (nothing in the corridor, a valid speed input), the daemon exits 0 after SIGTERM.
The scraped text is kept as DIR/metrics.prom.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "soak"))
from soak import make_inputs  # noqa: E402

DEADLINE_S = 180


def wait_for(what, check):
    """The first non-None result of `check()` within the deadline."""
    until = time.monotonic() + DEADLINE_S
    while time.monotonic() < until:
        value = check()
        if value is not None:
            return value
        time.sleep(0.1)
    sys.exit(f"metrics: no {what} within {DEADLINE_S} s")


def fetch(url):
    """(status, content type, body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adasd", required=True)
    p.add_argument("--promtool", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    config = make_inputs(a.out, 400)
    with open(config, "a") as f:
        f.write('\n[metrics]\nlisten = "127.0.0.1:0"\n')
    log_path = os.path.join(a.out, "adasd.log")
    # A frames.jsonl left by an earlier run would count as this run's decided frames.
    shutil.rmtree(os.path.join(a.out, "out"), ignore_errors=True)
    events = os.path.join(a.out, "out", "frames.jsonl")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [a.adasd, "run", "--quiet", "--config", config, "--out", os.path.join(a.out, "out")],
            stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ, ADASD_LOG="info"))
    try:
        def address():
            m = re.search(r"http://([0-9.:]+)/metrics", open(log_path).read())
            return m and m.group(1)

        def decided():
            n = sum(1 for _ in open(events)) if os.path.exists(events) else 0
            return n if n >= 3 else None

        addr = wait_for("metrics address in " + log_path, address)
        wait_for("3 decided frames", decided)
        status, ctype, text = fetch(f"http://{addr}/metrics")
        health = fetch(f"http://{addr}/healthz")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    prom = os.path.join(a.out, "metrics.prom")
    with open(prom, "w") as f:
        f.write(text)
    lint = subprocess.run([a.promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    families = sum(1 for line in text.splitlines() if line.startswith("# TYPE "))
    print(f"metrics: {families} families, {len(text)} bytes from http://{addr}/metrics ({prom})")
    print(f"metrics: /healthz {health[0]} {health[2].strip()}")
    print(f"metrics: promtool check metrics: exit {lint.returncode} {lint.stdout}{lint.stderr}".rstrip())
    failures = []
    if status != 200 or ctype != "text/plain; version=0.0.4; charset=utf-8":
        failures.append(f"/metrics answered {status} {ctype}")
    if lint.returncode != 0 or lint.stdout.strip() or lint.stderr.strip():
        failures.append("promtool found problems (above)")
    if health[0] != 200:
        failures.append(f"/healthz answered {health[0]}: {health[2].strip()}")
    if rc != 0:
        failures.append(f"adasd ended with status {rc} after SIGTERM; see {log_path}")
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
