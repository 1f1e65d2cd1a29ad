#!/usr/bin/env python3
"""Checks a fleet report (tools/fleet) against what the fleet was made to contain.

    check_report.py REPORT.json --drives N [--expect NAME=OUTCOME[:FIELD] ...] [--retried NAME]

Every drive must be in the report; the drives named with --expect must have that outcome (and
their first difference that field), every other drive SAME; --retried names a drive whose
worker was killed: it must have needed a second try and still have its outcome. Prints what it
checked; exit 1 on the first mismatch.
"""

import argparse
import json
import sys


def fail(msg: str) -> None:
    print(f"check_report: {msg}", file=sys.stderr)
    sys.exit(1)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("report")
    p.add_argument("--drives", type=int, required=True)
    p.add_argument("--expect", action="append", default=[])
    p.add_argument("--retried")
    a = p.parse_args()
    r = json.load(open(a.report))
    drives = {d["name"]: d for d in r["drives"]}
    if len(drives) != a.drives or r["counts"]["drives"] != a.drives:
        fail(f"{len(drives)} drives in the report, {a.drives} in the fleet")
    expected = {}
    for e in a.expect:
        name, _, rest = e.partition("=")
        outcome, _, field = rest.partition(":")
        expected[name] = (outcome, field or None)
    for name, d in drives.items():
        outcome, field = expected.get(name, ("SAME", None))
        if d["outcome"] != outcome:
            fail(f"{name}: {d['outcome']} ({d['error'] or d['failures']}), expected {outcome}")
        if field and (d["first_difference"] or {}).get("field") != field:
            fail(f"{name}: first difference {d['first_difference']}, expected one in {field}")
    missing = set(expected) - set(drives)
    if missing:
        fail(f"drives missing from the report: {sorted(missing)}")
    if r["passed"] != (not expected):
        fail(f"passed = {r['passed']} with {len(expected)} drive(s) expected to differ")
    if a.retried:
        d = drives[a.retried]
        if d["attempts"] < 2:
            fail(f"{a.retried}: its worker was killed, yet it ran once ({d['attempts']} try)")
        if r["counts"]["retried"] < 1:
            fail("counts.retried is 0")
    act, lead = r["activity"]["new"], r["warning_lead"]["new"]
    if act["braking_episodes"] == 0 or lead["episodes"] == 0 or lead["min_s"] is None:
        fail(f"no braking in the fleet: activity {act}, warning lead {lead}")
    c = r["counts"]
    print(f"check_report: {c['drives']} drives, {c['SAME']} SAME, {c['DIFFERENT']} DIFFERENT, {c['FAILED']} FAILED, "
          f"{c['DAMAGED']} DAMAGED, {c['retried']} retried — as expected; braking episodes "
          f"{r['activity']['reference']['braking_episodes']} → {act['braking_episodes']}, "
          f"shortest warning lead {lead['min_s']:.2f} s, median {lead['median_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
