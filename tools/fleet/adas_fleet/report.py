"""The fleet's results merged: one JSON summary a CI system gates on, and a table for people.

Per drive: the outcome (SAME / DIFFERENT / FAILED / DAMAGED), the first differing decision,
warnings and braking episodes in the reference vs the new run, their warning-lead statistics
(docs/AEB.md, "Warning lead before braking"), the tries it took. For the fleet: the counts per
outcome, the same activity and lead statistics over every drive, and what a drive cost.
Anything but SAME is a regression: the fleet fails.
"""

from __future__ import annotations

import statistics

FORMAT = "adas-fleet-report"
VERSION = 1
OUTCOMES = ("SAME", "DIFFERENT", "FAILED", "DAMAGED")
ACTIVITY_KEYS = ("frames", "warnings", "warning_frames", "braking_episodes", "braking_frames")


def drive_summary(r: dict) -> dict:
    """One drive's entry in the report, from the result `replay.run` gave."""
    doc = r.get("document") or {}
    cmp = doc.get("comparison") or {}
    run = doc.get("run") or {}
    episodes = cmp.get("episodes") or {}
    return {
        "name": r["name"],
        "outcome": r["outcome"],
        "exit_code": r.get("exit_code"),
        "recording": r.get("recording"),
        "reference": r.get("reference"),
        "first_difference": cmp.get("first_difference"),
        "failures": cmp.get("failures", []),
        "error": r.get("error"),
        "damage": doc.get("damage", []),
        "activity": cmp.get("activity"),
        "warning_lead": cmp.get("warning_lead"),
        "regressions": sum(1 for e in episodes.get("new", []) if e.get("regression")),
        "attempts": r.get("attempt", 1),
        "node": r.get("node"),
        "wall_s": r.get("wall_s"),
        "data_s": run.get("data_s"),
        "replay_wall_s": run.get("wall_s"),
    }


def lead_stats(episodes: list[dict]) -> dict:
    """Warning leads of braking episodes (the `episodes` lists of adasd's document): adasd's
    per-drive `warning_lead`, over the episodes of every drive."""
    leads = sorted(e["warning_lead_s"] for e in episodes)
    judged = [e["warning_lead_s"] for e in episodes if not e.get("excused") and not e.get("censored")]
    return {
        "episodes": len(episodes),
        "min_s": leads[0] if leads else None,
        "median_s": statistics.median(leads) if leads else None,
        "mean_s": statistics.fmean(leads) if leads else None,
        "min_judged_s": min(judged) if judged else None,
        "short": sum(1 for e in episodes if e.get("short")),
        "excused": sum(1 for e in episodes if e.get("excused")),
        "interrupted": sum(1 for e in episodes if e.get("interrupted")),
        "censored": sum(1 for e in episodes if e.get("censored")),
    }


def merge(results: list[dict], cluster: dict, wall_s: float, adasd: str, manifest: str) -> dict:
    """The fleet report."""
    drives = [drive_summary(r) for r in results]
    counts = {o: sum(1 for d in drives if d["outcome"] == o) for o in OUTCOMES}
    all_episodes = {"reference": [], "new": []}
    activity = {side: dict.fromkeys(ACTIVITY_KEYS, 0) for side in ("reference", "new")}
    for r in results:
        cmp = ((r.get("document") or {}).get("comparison")) or {}
        for side in ("reference", "new"):
            all_episodes[side] += (cmp.get("episodes") or {}).get(side, [])
            for k in ACTIVITY_KEYS:
                activity[side][k] += ((cmp.get("activity") or {}).get(side) or {}).get(k, 0)
    replayed = [d for d in drives if d["replay_wall_s"] is not None]
    data_s = sum(d["data_s"] or 0.0 for d in replayed)
    replay_s = sum(d["replay_wall_s"] for d in replayed)
    task_s = sum(d["wall_s"] or 0.0 for d in drives)
    return {
        "format": FORMAT,
        "version": VERSION,
        "passed": counts["SAME"] == len(drives),
        "manifest": manifest,
        "adasd": adasd,
        "cluster": cluster,
        "wall_s": wall_s,
        "counts": {"drives": len(drives), **counts, "retried": sum(1 for d in drives if d["attempts"] > 1)},
        "activity": activity,
        "warning_lead": {side: lead_stats(eps) for side, eps in all_episodes.items()},
        "cost": {
            "drives_replayed": len(replayed),
            "data_s": data_s,
            # The replay itself (adasd's own wall clock) and the whole task (process start,
            # reading the reference, writing outputs), summed over drives.
            "replay_s": replay_s,
            "task_s": task_s,
            "task_s_per_drive": task_s / len(drives) if drives else None,
            "realtime_factor": data_s / replay_s if replay_s > 0 else None,
            "drives_per_s": len(drives) / wall_s if wall_s > 0 else None,
        },
        "drives": drives,
    }


def exit_code(report: dict) -> int:
    """0 when every drive is SAME, else 1."""
    return 0 if report["passed"] else 1


def _lead(s: dict | None) -> str:
    if not s or s["min_s"] is None:
        return "–"
    return f"{s['min_s']:.2f}" + (f" ({s['short']} short)" if s["short"] else "")


def _pair(a, b) -> str:
    return f"{a}" if a == b else f"{a} → {b}"


def _first(d: dict) -> str:
    f = d["first_difference"]
    if f:
        return f"t={f['t_s']:.3f}s frame {f['frame']} {f['field']}: {f['reference']} → {f['new']}"
    if d["error"]:
        return d["error"].splitlines()[0][:100]
    return ""


def table(report: dict) -> str:
    """The report for people: counts, then one row per drive (regressions first)."""
    c = report["counts"]
    lines = [
        f"fleet: {c['drives']} drives on {report['cluster'].get('nodes', '?')} node(s), "
        f"{report['cluster'].get('cpus', 0):.0f} CPU(s), {report['wall_s']:.1f} s: "
        + ", ".join(f"{c[o]} {o}" for o in OUTCOMES)
        + f"; {c['retried']} retried after a worker died",
        f"result: {'PASSED (every drive SAME)' if report['passed'] else 'REGRESSION'}",
        "",
        "| drive | outcome | first difference | warnings ref → new | braking episodes ref → new "
        "| shortest warning lead s ref → new | tries |",
        "|---|---|---|---|---|---|---|",
    ]
    order = {o: k for k, o in enumerate(("DIFFERENT", "FAILED", "DAMAGED", "SAME"))}
    for d in sorted(report["drives"], key=lambda d: (order[d["outcome"]], d["name"])):
        a = d["activity"] or {}
        ref, new = a.get("reference") or {}, a.get("new") or {}
        lead = d["warning_lead"] or {}
        lines.append(
            f"| {d['name']} | {d['outcome']} | {_first(d).replace('|', '/')} "
            f"| {_pair(ref.get('warnings', '–'), new.get('warnings', '–'))} "
            f"| {_pair(ref.get('braking_episodes', '–'), new.get('braking_episodes', '–'))} "
            f"| {_pair(_lead(lead.get('reference')), _lead(lead.get('new')))} | {d['attempts']} |"
        )
    return "\n".join(lines) + "\n"
