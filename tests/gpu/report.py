#!/usr/bin/env python3
"""Tables and plots of a tests/gpu/run.sh output folder: adasd's cuda engine vs the PyTorch peer.

Two adasd figures per batch: `adasd cuda <precision>` is the whole frame (host copy into the pinned
buffer → upload → preprocess → network → decode → NMS → download, one CUDA graph), `adasd network
only fp16` the network alone as one CUDA graph, input already on the GPU and outputs left there —
the work the PyTorch peer times. Bench JSONs from before `network_ms` give an empty column.

usage: report.py OUT   (reads OUT/bench-*.json and OUT/peer-*.json, writes OUT/*.png, prints Markdown)
"""
import json
import pathlib
import sys

from PIL import Image, ImageDraw

out = pathlib.Path(sys.argv[1])
models = ["ssdlite_mobilenet_v2_pedestrian_300", "nanodet_m_coco_416"]
colours = {"adasd cuda fp16": (200, 30, 30), "adasd network only fp16": (150, 30, 150),
           "adasd cuda fp32": (240, 140, 40), "eager fp16": (30, 90, 200),
           "eager fp32": (90, 160, 230), "torch.compile default fp16": (40, 150, 60),
           "torch.compile reduce-overhead fp16": (20, 90, 30)}


# Dense FP16 tensor-core peak (FLOP/s) and memory bandwidth (B/s) from NVIDIA's datasheets.
PEAKS = {
    "H200": (989.5e12, 4.8e12, "H200 SXM: 989.5 TFLOPS FP16 dense, 4.8 TB/s"),
    "H100 80GB HBM3": (989.5e12, 3.35e12, "H100 SXM: 989.5 TFLOPS FP16 dense, 3.35 TB/s"),
    "H100 PCIe": (756e12, 2.0e12, "H100 PCIe: 756 TFLOPS FP16 dense, 2.0 TB/s"),
}


def load(path):
    return json.loads(path.read_text()) if path.exists() else None


# The peer's modes compared with at batch 1, in this order.
PEERS = ("eager fp16", "eager fp32", "torch.compile default fp16", "torch.compile reduce-overhead fp16")
# Each of adasd's whole-frame and network-only figures against the peer, described in its line.
OURS = (("adasd cuda fp16", "whole frame (host copy → upload → preprocess → network → decode → NMS → download)"),
        ("adasd network only fp16", "network only, input on the GPU, outputs left there (the peer's work)"))


def columns(s):
    """adasd's columns first, the network-only figure next to the whole frame's, then the peer's."""
    first = [n for n in ("adasd cuda fp16", "adasd network only fp16", "adasd cuda fp32") if n in s]
    return first + sorted(n for n in s if n not in first)


def faster(ours, theirs):
    ratio = theirs / ours
    return f"{ratio:.1f}× faster than" if ratio >= 1 else f"{1 / ratio:.1f}× slower than"


def series(model):
    s = {}
    for p in ("fp16", "fp32"):
        b = load(out / f"bench-{model}-{p}.json")
        if b:
            s[f"adasd cuda {p}"] = {r["batch"]: r["latency_ms"] for r in b["rows"]}
            if p == "fp16":
                # Absent (older JSONs) or null (not captured): an empty column, not an error.
                s["adasd network only fp16"] = {r["batch"]: r["network_ms"] for r in b["rows"]
                                                if r.get("network_ms") is not None}
    peer = load(out / f"peer-{model}.json")
    if peer:
        for r in peer["rows"]:
            if "latency_ms" in r:
                s.setdefault(r["mode"], {})[r["batch"]] = r["latency_ms"]
    return s


def plot(model, s, path):
    import math
    w, h, m = 900, 520, 70
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    batches = sorted({b for v in s.values() for b in v})
    vals = [t for v in s.values() for t in v.values() if t > 0]
    if not batches or not vals:
        return
    lo, hi = math.log10(min(vals)) - 0.1, math.log10(max(vals)) + 0.1
    bx = lambda b: m + (w - 2 * m) * (math.log2(b) / max(1, math.log2(max(batches))))
    by = lambda t: h - m - (h - 2 * m) * (math.log10(t) - lo) / (hi - lo)
    d.rectangle([m, m, w - m, h - m], outline="black")
    for b in batches:
        d.text((bx(b) - 6, h - m + 8), str(b), fill="black")
    for e in range(math.floor(lo), math.ceil(hi) + 1):
        for k in (1, 2, 5):
            t = k * 10 ** e
            if lo <= math.log10(t) <= hi:
                d.line([m, by(t), w - m, by(t)], fill=(225, 225, 225))
                d.text((8, by(t) - 6), f"{t:g} ms", fill="black")
    d.text((w / 2 - 150, 20), f"{model}: latency per batch (log-log), lower is better", fill="black")
    d.text((w / 2 - 20, h - 30), "batch", fill="black")
    for i, (name, v) in enumerate(sorted((n, v) for n, v in s.items() if v)):
        c = colours.get(name, (0, 0, 0))
        pts = [(bx(b), by(t)) for b, t in sorted(v.items()) if t > 0]
        if len(pts) > 1:
            d.line(pts, fill=c, width=3)
        for x, y in pts:
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=c)
        d.text((m + 10, m + 10 + 16 * i), name, fill=c)
    img.save(path)


for model in models:
    s = series(model)
    if not s:
        continue
    plot(model, s, out / f"latency-{model}.png")
    print(f"\n### {model}\n")
    names = columns(s)
    batches = sorted({b for v in s.values() for b in v})
    print("| batch | " + " | ".join(names) + " |")
    print("|---:|" + "---:|" * len(names))
    for b in batches:
        print(f"| {b} | " + " | ".join(f"{s[n][b]:.3f} ms" if b in s[n] else "" for n in names) + " |")
    ours = s.get("adasd cuda fp16", {})
    lines = [f"- batch 1, {what}: {name} is {faster(s[name][1], s[peer][1])} PyTorch {peer}"
             for name, what in OURS if 1 in s.get(name, {})
             for peer in PEERS if 1 in s.get(peer, {})]
    if lines:
        print()
        print("\n".join(lines))
    peer = load(out / f"peer-{model}.json")
    if peer and "dynamo_graphs" in peer:
        print(f"- PyTorch peer: {peer['constants_baked']} onnx2torch modules given their constant operands as "
              f"Python values; dynamo traces {peer['dynamo_graphs']} graph(s), {peer['dynamo_graph_breaks']} break(s)")
    bench = load(out / f"bench-{model}-fp16.json")
    if 32 in ours and bench and bench.get("flops_per_image"):
        ips = 32 / ours[32] * 1e3
        peak = next((v for k, v in PEAKS.items() if k in bench["device"]), None)
        line = f"- batch 32: adasd cuda fp16 {ips:.0f} images/s; {bench['flops_per_image'] / 1e9:.2f} GFLOP and {bench['bytes_per_image'] / 1e6:.1f} MB per image"
        if peak:
            flops_bound = peak[0] / bench["flops_per_image"]
            bytes_bound = peak[1] / bench["bytes_per_image"]
            bound = min(flops_bound, bytes_bound)
            kind = "memory" if bytes_bound < flops_bound else "compute"
            line += (f"; roofline ({peak[2]}): {bound:.0f} images/s ({kind}-bound) → {ips / bound * 100:.1f} % of roofline")
        print(line)
