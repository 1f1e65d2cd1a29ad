"""Detector accuracy with the official COCO evaluator (pycocotools), one row per results file.

    python3 tests/eval/coco_map.py --annotations A.json --row NAME=detections.json [--row ...] \
        --out-md table.md --out-json results.json --out-png chart.png [--check OURS=REF ...]

Per row: bbox mAP@[.5:.95] and mAP@.5 over all categories, the same over the road-user classes
only (COCOeval with params.catIds restricted), and AP@[.5:.95] per road-user class. The table
also gives the ground-truth boxes per road-user class (iscrowd ignored, as COCOeval ignores them)
and the number of images. `--check OURS=REF` fails (exit 1) when row OURS is more than
`--tolerance` mAP@[.5:.95] points from row REF: our pipeline must reproduce its framework.
`--check OURS>=REF` fails only when OURS is more than `--tolerance` points *below* REF: for a
row that is not the same computation as its reference (a float form of a uint8 network has no
activation rounding and may score higher), but must not be worse.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ROAD_USERS = ["person", "bicycle", "car", "motorcycle", "bus", "truck"]


def evaluate(gt: COCO, dt_path: str, cat_ids: list[int] | None):
    """(COCOeval stats, per-category AP@[.5:.95] for cat_ids) in percent; -1 = no ground truth."""
    with open(dt_path) as f:
        dets = json.load(f)
    with contextlib.redirect_stdout(io.StringIO()):
        # loadRes refuses an empty list; an empty result set scores 0 everywhere.
        dt = gt.loadRes(dets) if dets else COCO()
        if not dets:
            dt.dataset = {"images": gt.dataset["images"], "categories": gt.dataset["categories"],
                          "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, "bbox")
        if cat_ids is not None:
            ev.params.catIds = cat_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_cat = {}
    if cat_ids is not None:
        # precision[T, R, K, A, M]: K follows params.catIds; area "all", maxDets 100.
        prec = ev.eval["precision"]
        for k, cid in enumerate(cat_ids):
            p = prec[:, :, k, 0, -1]
            p = p[p > -1]
            per_cat[cid] = float(np.mean(p)) * 100 if p.size else -1.0
    return [float(s) * 100 for s in ev.stats], per_cat


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--row", action="append", required=True, metavar="NAME=DETECTIONS.json")
    ap.add_argument("--out-md")
    ap.add_argument("--out-json")
    ap.add_argument("--out-png")
    ap.add_argument("--check", action="append", default=[], metavar="OURS=REF")
    ap.add_argument("--tolerance", type=float, default=0.5, help="mAP points (default 0.5)")
    args = ap.parse_args()

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(args.annotations)
    names = {c["id"]: c["name"] for c in gt.loadCats(gt.getCatIds())}
    road = [cid for cid in sorted(names) if names[cid] in ROAD_USERS]
    gt_boxes = {names[c]: len(gt.getAnnIds(catIds=[c], iscrowd=False)) for c in road}
    n_images = len(gt.getImgIds())

    rows = []
    for spec in args.row:
        name, sep, path = spec.partition("=")
        if not sep:
            sys.exit(f"error: --row {spec!r}: expected NAME=DETECTIONS.json")
        stats_all, _ = evaluate(gt, path, None)
        stats_road, per_cat = evaluate(gt, path, road)
        with open(path) as f:
            n_dets = len(json.load(f))
        rows.append({
            "name": name, "detections": path, "count": n_dets,
            "map": stats_all[0], "map50": stats_all[1],
            "map_road": stats_road[0], "map50_road": stats_road[1],
            "ap_road": {names[c]: per_cat[c] for c in road},
        })
    by_name = {r["name"]: r for r in rows}

    checks = []
    for spec in args.check:
        at_least = ">=" in spec
        ours, _, ref = spec.partition(">=" if at_least else "=")
        if ours not in by_name or ref not in by_name:
            sys.exit(f"error: --check {spec}: no such row (rows: {', '.join(by_name)})")
        diff = by_name[ours]["map"] - by_name[ref]["map"]
        ok = diff >= -args.tolerance if at_least else abs(diff) <= args.tolerance
        checks.append({"ours": ours, "reference": ref, "diff": diff, "at_least": at_least,
                       "ok": ok})

    fmt = lambda v: "n/a" if v < 0 else f"{v:.1f}"  # noqa: E731
    lines = [
        f"COCO bbox AP (pycocotools) on {n_images} images of `{args.annotations}`, in percent. "
        "mAP = AP@[.5:.95]; road = person, bicycle, car, motorcycle, bus, truck only.",
        "",
        "| row | mAP | mAP@.5 | mAP road | mAP@.5 road | "
        + " | ".join(f"{names[c]} ({gt_boxes[names[c]]})" for c in road) + " | detections |",
        "|---|" + "---:|" * (5 + len(road)),
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['map']:.1f} | {r['map50']:.1f} | {r['map_road']:.1f} | "
                     f"{r['map50_road']:.1f} | "
                     + " | ".join(fmt(r["ap_road"][names[c]]) for c in road)
                     + f" | {r['count']} |")
    lines += ["", "Ground-truth boxes per road-user class in brackets (iscrowd excluded). "
              "Per-class columns: AP@[.5:.95]."]
    if checks:
        lines += ["", f"Gate: our row within ±{args.tolerance} mAP points of its reference "
                  f"(\"at least\": not more than {args.tolerance} below it):", ""]
        lines += [f"- {c['ours']} vs {c['reference']}{' (at least)' if c['at_least'] else ''}: "
                  f"{c['diff']:+.2f} {'ok' if c['ok'] else 'FAILED'}" for c in checks]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out_md:
        with open(args.out_md, "w") as f:
            f.write(table)
    if args.out_json:
        with open(args.out_json, "w") as f:
            json.dump({"annotations": args.annotations, "images": n_images,
                       "gt_boxes_road": gt_boxes, "rows": rows, "checks": checks,
                       "tolerance": args.tolerance}, f, indent=2)
    if args.out_png:
        chart(rows, args.out_png, n_images)
    failed = [c for c in checks if not c["ok"]]
    for c in failed:
        print(f"FAILED: {c['ours']} is {c['diff']:+.2f} mAP points from {c['reference']} "
              f"(tolerance ±{args.tolerance})", file=sys.stderr)
    sys.exit(1 if failed else 0)


def chart(rows, path, n_images):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("map", "mAP@[.5:.95] all"), ("map50", "mAP@.5 all"),
               ("map_road", "mAP@[.5:.95] road users")]
    x = np.arange(len(rows))
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(rows) + 2), 5.5))
    for i, (key, label) in enumerate(metrics):
        vals = [r[key] for r in rows]
        bars = ax.bar(x + (i - (len(metrics) - 1) / 2) * width, vals, width, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(x, [r["name"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("AP, %")
    ax.set_title(f"COCO bbox AP (pycocotools), {n_images} val2017 images")
    # Head room for the legend, which would otherwise hide a group's bars and values.
    ax.set_ylim(0, max([r[k] for r in rows for k, _ in metrics] + [1]) * 1.25)
    ax.legend(fontsize=8, loc="upper center", ncol=len(metrics))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
