"""Ray: one task per drive on whatever cluster `address` names, results as they come.

Each drive is a Ray task (one CPU, or one GPU for `--backend cuda`) that runs `adasd replay` on
the node it lands on (`replay.run`). A task whose worker process or node dies is retried by Ray
(`max_retries`: system failures only; `retry_exceptions` stays off): the replay's own outcomes,
DIFFERENT or FAILED included, are results and are never retried. A drive whose retries are
spent is reported FAILED, so the report always has every drive.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import ray

from . import replay
from .manifest import Drive


def connect(address: str | None) -> dict:
    """Joins the cluster at `address` (`auto`: the one `ray start` runs here; None: a private
    one-node cluster) with this package shipped to every worker; returns its size."""
    ray.init(
        address=address,
        runtime_env={"py_modules": [str(Path(__file__).resolve().parent)]},
        logging_level="warning",
        log_to_driver=False,
    )
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    return {"nodes": len(nodes), "cpus": total.get("CPU", 0.0), "gpus": total.get("GPU", 0.0)}


def replay_here(adasd: str, drive: Drive, out: str, backend: str | None, timeout_s: float | None) -> dict:
    """The task: `replay.run` on this node, the result labelled with the node it ran on."""
    result = replay.run(adasd, drive, out, backend, timeout_s)
    result["node"] = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"
    return result


def run_all(
    drives: list[Drive],
    adasd: str,
    out: str,
    backend: str | None,
    max_retries: int,
    timeout_s: float | None,
    log=sys.stderr,
) -> list[dict]:
    """Every drive's result, in the order of `drives`."""
    resources = {"num_gpus": 1} if backend == "cuda" else {"num_cpus": 1}
    task = ray.remote(replay_here)
    options = {"max_retries": max_retries, "retry_exceptions": False, **resources}
    # Named after the drive: `ray::replay:NAME` is the worker's process title while it runs.
    refs = {
        task.options(name=f"replay:{d.name}", **options).remote(adasd, d, out, backend, timeout_s): d
        for d in drives
    }
    results: dict[str, dict] = {}
    pending = list(refs)
    started = time.monotonic()
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            d = refs[ref]
            try:
                r = ray.get(ref)
            except ray.exceptions.RayError as e:
                r = lost(d, max_retries, e)
            results[d.name] = r
            retried = f", try {r['attempt']}" if r.get("attempt", 1) > 1 else ""
            print(
                f"[{len(results)}/{len(drives)} {time.monotonic() - started:6.1f} s] {d.name}: {r['outcome']}"
                f" ({r.get('wall_s', 0.0):.2f} s on {r.get('node', '?')}{retried})",
                file=log,
                flush=True,
            )
    return [results[d.name] for d in drives]


def lost(d: Drive, max_retries: int, e: Exception) -> dict:
    """The result of a drive whose every try died with its worker or node."""
    first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return {
        "name": d.name,
        "recording": d.recording,
        "reference": d.reference,
        "outcome": "FAILED",
        "exit_code": None,
        "attempt": max_retries + 1,
        "error": f"the task's worker died on each of {max_retries + 1} tries ({type(e).__name__}: {first_line})",
    }
