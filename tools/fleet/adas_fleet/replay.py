"""One drive: `adasd replay REC --compare REF --json`, run and classified (no Ray here).

`adasd replay --compare --json` prints one JSON document and exits with the status of its
outcome: 0 SAME, 1 DIFFERENT, 2 FAILED, 3 DAMAGED (docs/RECORDING.md). Anything else — killed
by a signal, a crash, output that is not the document — is FAILED here, with what was seen.
These are results: the driver reports them, it never retries them (a retry is for a worker
that died, which Ray handles).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .manifest import Drive

OUTCOMES = {0: "SAME", 1: "DIFFERENT", 2: "FAILED", 3: "DAMAGED"}
# Where a retried task's earlier tries are counted (in the drive's output folder).
ATTEMPTS_FILE = ".attempts"


def command(adasd: str, drive: Drive, out: Path, backend: str | None) -> list[str]:
    """The `adasd replay` command line for `drive`, writing into `out`."""
    cmd = [adasd, "replay", drive.recording, "--out", str(out), "--compare", drive.reference, "--json"]
    if drive.config:
        cmd += ["--config", drive.config]
    if drive.recorded_detections:
        cmd.append("--recorded-detections")
    if backend:
        cmd += ["--backend", backend]
    return cmd + list(drive.args)


def _die_with_parent() -> None:
    """In the child: SIGKILL when the worker that started it dies (Linux), so that a retried
    task never races an orphaned replay writing into the same folder."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def count_attempt(out: Path) -> int:
    """This try's number (1 for the first) for the drive whose output folder is `out`; clears
    what an earlier try left there."""
    marker = out / ATTEMPTS_FILE
    try:
        attempt = int(marker.read_text()) + 1
    except (OSError, ValueError):
        attempt = 1
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    marker.write_text(str(attempt))
    return attempt


def run(adasd: str, drive: Drive, out_root: str, backend: str | None = None, timeout_s: float | None = None) -> dict:
    """Replays `drive` into `out_root/drives/NAME` and returns its result (a JSON-able dict)."""
    out = Path(out_root) / "drives" / drive.name
    attempt = count_attempt(out)
    cmd = command(adasd, drive, out / "replay", backend)
    started = time.monotonic()
    result = {
        "name": drive.name,
        "recording": drive.recording,
        "reference": drive.reference,
        "attempt": attempt,
        "command": cmd,
    }
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, preexec_fn=_die_with_parent)
    except FileNotFoundError as e:
        return {**result, "outcome": "FAILED", "exit_code": None, "wall_s": 0.0,
                "error": f"cannot run {adasd}: {e}; is the adasd binary on the shared path on this node?"}
    except subprocess.TimeoutExpired:
        return {**result, "outcome": "FAILED", "exit_code": None, "wall_s": time.monotonic() - started,
                "error": f"adasd replay ran longer than {timeout_s} s and was stopped"}
    wall = time.monotonic() - started
    (out / "stderr.log").write_text(p.stderr)
    return {**result, "wall_s": wall, **classify(p.returncode, p.stdout, p.stderr)}


def classify(code: int, stdout: str, stderr: str) -> dict:
    """Outcome, document and error of one `adasd replay --json` run."""
    tail = "\n".join(stderr.strip().splitlines()[-5:])
    if code < 0:
        return {"outcome": "FAILED", "exit_code": code,
                "error": f"adasd was killed by signal {-code} ({signal.Signals(-code).name}); {tail}".rstrip("; ")}
    if code not in OUTCOMES:
        return {"outcome": "FAILED", "exit_code": code, "error": f"adasd exited with status {code}: {tail}"}
    try:
        doc = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != "adasd-replay-compare":
        # Usage errors (exit 2 from the argument parser) print no document.
        return {"outcome": "FAILED", "exit_code": code, "error": f"no result document from adasd (exit {code}): {tail}"}
    if doc.get("exit_code") != code or doc.get("outcome") != OUTCOMES[code]:
        return {"outcome": "FAILED", "exit_code": code, "document": doc,
                "error": f"adasd's document says {doc.get('outcome')} but it exited with {code}"}
    error = doc.get("error") or (tail if code == 2 else None)
    return {"outcome": OUTCOMES[code], "exit_code": code, "document": doc, "error": error}
