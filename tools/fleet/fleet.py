#!/usr/bin/env python3
"""Fleet regression on Ray: replay every drive of a manifest against its reference, merge.

    python3 tools/fleet/fleet.py MANIFEST --adasd /shared/bin/adasd --out /shared/fleet/run1 \\
        [--address auto] [--backend cuda] [--max-retries 3] [--timeout 600]

Each drive is one Ray task running `adasd replay REC --compare REF --json` (docs/FLEET.md).
Writes OUT/report.json (the summary a CI system gates on) and OUT/report.md (the table, also
printed), each drive's outputs under OUT/drives/NAME. Exit status: 0 every drive SAME, 1 a
regression (any drive DIFFERENT, FAILED or DAMAGED), 2 the fleet could not run (manifest,
cluster, paths).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adas_fleet import manifest, report  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", help="TOML or JSON manifest of drives (tools/fleet/adas_fleet/manifest.py)")
    p.add_argument("--adasd", required=True,
                   help="the adasd binary, at a path every node has (shared file system or the image)")
    p.add_argument("--out", required=True, help="output folder, on the shared file system")
    p.add_argument("--address", default="auto",
                   help="Ray cluster: auto (the one `ray start` runs here, or RAY_ADDRESS), "
                        "host:port, or local (a private one-node cluster)")
    p.add_argument("--backend", choices=["tract", "ort", "cuda"],
                   help="detector backend for every replay (cuda: one GPU per task)")
    p.add_argument("--max-retries", type=int, default=3,
                   help="tries after a worker or node died (default 3); outcomes are never retried")
    p.add_argument("--timeout", type=float, default=None, help="seconds one replay may run (default: no limit)")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    try:
        drives = manifest.load(a.manifest)
    except manifest.ManifestError as e:
        print(f"fleet: {e}", file=sys.stderr)
        return 2
    adasd = os.path.abspath(a.adasd)
    if not os.access(adasd, os.X_OK):
        print(f"fleet: {adasd} is not an executable adasd; build it (cargo build --release -p adasd) "
              "and put it where every node sees it", file=sys.stderr)
        return 2
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # Imported here: the manifest checks above need no Ray.
    from adas_fleet import cluster

    try:
        size = cluster.connect(None if a.address == "local" else a.address)
    except (ConnectionError, RuntimeError) as e:
        print(f"fleet: cannot join the Ray cluster at {a.address}: {e}; start one (ray start --head) "
              "or pass --address local", file=sys.stderr)
        return 2
    print(f"fleet: {len(drives)} drives on {size['nodes']} node(s), {size['cpus']:.0f} CPU(s), "
          f"{size['gpus']:.0f} GPU(s)", file=sys.stderr)
    started = time.monotonic()
    results = cluster.run_all(drives, adasd, str(out), a.backend, a.max_retries, a.timeout)
    merged = report.merge(results, size, time.monotonic() - started, adasd, str(Path(a.manifest).resolve()))
    (out / "report.json").write_text(json.dumps(merged, indent=1) + "\n")
    text = report.table(merged)
    (out / "report.md").write_text(text)
    print(text)
    print(f"report: {out / 'report.json'}, {out / 'report.md'}", file=sys.stderr)
    return report.exit_code(merged)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
