#!/usr/bin/env python3
"""Tables, goals and plots of a tests/gpu/run.sh output folder: adasd's cuda engine beside the
PyTorch peer on the same weights, per model, precision and batch (issue #25).

adasd gives two figures per batch and precision: the whole frame (`latency_ms`: host copy into the
pinned buffer → upload → preprocess → network → decode → NMS → download, one CUDA graph) and the
network alone (`network_ms`: the network's steps as one CUDA graph, input already on the GPU,
outputs left there — the work the PyTorch peer times). Cells with no figure say why: "not run"
(not asked for, or its step did not produce it), "failed" (the reason is listed under the table);
INT8 runs the COCO SSD's own quantization (models/<stem>_int8.toml) and NanoDet's and
SSDLite's calibration tables.

usage: report.py OUT   (reads OUT/gpu.txt, OUT/bench-*.json, OUT/peer-*.json, OUT/failures.txt;
                        writes OUT/latency-*.png and OUT/throughput-batch32.png; prints Markdown)
"""
import json
import math
import pathlib
import sys
import textwrap
from dataclasses import dataclass, field

# (file stem, name in the tables).
MODELS = (("ssd_mobilenet_v2_coco_300", "COCO SSD-MobileNet-v2 300"),
          ("nanodet_m_coco_416", "NanoDet-m 416"),
          ("ssdlite_mobilenet_v2_pedestrian_300", "SSDLite-MobileNet-v2 pedestrian 300"))
PRECISIONS = ("int8", "fp16", "fp32")
DEFAULT_BATCHES = (1, 4, 8, 16, 32, 64)
# The peer's modes, as pytorch_peer.py names them, and their columns.
PEER_MODES = (("eager fp16", "PyTorch eager FP16"), ("eager fp32", "PyTorch eager FP32"),
              ("torch.compile default fp16", "torch.compile default FP16"),
              ("torch.compile reduce-overhead fp16", "torch.compile reduce-overhead FP16"))
EAGER_FP16, REDUCE_OVERHEAD = "PyTorch eager FP16", "torch.compile reduce-overhead FP16"

# Datasheet peaks, dense (no sparsity), by a part of the GPU's name (first match wins, so the NVL
# parts come before their SXM namesakes): FP32 on CUDA cores (the engine's FP32 is plain FMA, no
# TF32), FP16 and INT8 on tensor cores, and memory bandwidth.
PEAKS = (
    ("H200 NVL", "H200 NVL", {"fp32": 60e12, "fp16": 835e12, "int8": 1671e12}, 4.8e12),
    ("H200", "H200 SXM", {"fp32": 67e12, "fp16": 989.5e12, "int8": 1979e12}, 4.8e12),
    ("H100 NVL", "H100 NVL", {"fp32": 60e12, "fp16": 835e12, "int8": 1671e12}, 3.9e12),
    ("H100 PCIe", "H100 PCIe", {"fp32": 51e12, "fp16": 756e12, "int8": 1513e12}, 2.0e12),
    ("H100", "H100 SXM", {"fp32": 67e12, "fp16": 989.5e12, "int8": 1979e12}, 3.35e12),
)
PEAK_KIND = {"fp32": "TFLOPS FP32 (CUDA cores)", "fp16": "TFLOPS FP16 dense tensor",
             "int8": "TOPS INT8 dense tensor"}


@dataclass
class Series:
    """One column: batch → median latency of one batch (ms), or the reason there is none."""
    label: str
    values: dict = field(default_factory=dict)
    missing: str = "not run"

    def get(self, batch):
        return self.values.get(batch, self.missing)

    def ms(self, batch):
        v = self.get(batch)
        return v if isinstance(v, float) else None


@dataclass
class Model:
    stem: str
    name: str
    columns: list
    benches: dict  # precision → bench JSON
    peer: dict | None
    notes: list

    def column(self, label):
        return next(c for c in self.columns if c.label == label)


def load(path):
    return json.loads(path.read_text()) if path.exists() else None


def ours_label(precision, what):
    return f"ours {precision.upper()} {what}"


def load_model(out, stem, name):
    notes = []
    benches, frames, networks = {}, [], []
    for p in PRECISIONS:
        frame, network = Series(ours_label(p, "frame")), Series(ours_label(p, "network"))
        frames.append(frame)
        networks.append(network)
        bench = load(out / f"bench-{stem}-{p}.json")
        if bench is None:
            notes.append(f"{p.upper()}: no bench-{stem}-{p}.json (see bench-{stem}-{p}.txt and failures)")
            continue
        benches[p] = bench
        for r in bench["rows"]:
            frame.values[r["batch"]] = float(r["latency_ms"])
            # null: the network could not be captured on its own at that batch.
            network.values[r["batch"]] = (float(r["network_ms"]) if r.get("network_ms") is not None
                                          else "not captured")
    peers = {mode: Series(label) for mode, label in PEER_MODES}
    peer = load(out / f"peer-{stem}.json")
    if peer is None:
        notes.append(f"PyTorch: no peer-{stem}.json (see peer-{stem}.txt and failures)")
    else:
        for r in peer["rows"]:
            s = peers.get(r["mode"])
            if s is None:
                continue
            if "error" in r:
                s.values[r["batch"]] = "failed"
                notes.append(f"{s.label} batch {r['batch']} failed: {r['error']}")
            else:
                s.values[r["batch"]] = float(r["latency_ms"])
        if "compile_batches" in peer:
            run = ", ".join(str(b) for b in peer["compile_batches"])
            notes.append(f"torch.compile ran at batch {run} only (each batch compiles anew); "
                         "its other cells are not run, not estimated")
        engine = next((b["device"] for b in benches.values()), None)
        if engine and peer.get("gpu") and peer["gpu"] not in engine:
            notes.append(f"WARNING: PyTorch ran on {peer['gpu']}, our engine on {engine}: not one GPU")
        if peer.get("matches_onnxruntime") is False:
            notes.append(f"WARNING: the converted model does not match ONNX Runtime (max |difference| "
                         f"{peer['onnxruntime_max_abs_diff']:.3g}): the PyTorch figures are of another network")
    columns = frames + networks + list(peers.values())
    return Model(stem, name, columns, benches, peer, notes)


def header(out, models):
    """GPU model, driver and date (nvidia-smi at the start of the run), the engine's CUDA stack and
    PyTorch's version: the line every table carries."""
    gpu = out / "gpu.txt"
    lines = [ln for ln in gpu.read_text().splitlines() if ln.strip()] if gpu.exists() else []
    fields = [f.strip() for f in lines[0].split(",")] if lines else []
    if len(fields) >= 3:
        when, name, driver = fields[0], fields[1], fields[2]
        text = f"GPU: {name} · driver {driver} · {when}"
    else:
        text = "GPU: unknown (no nvidia-smi line in gpu.txt) · driver unknown · date unknown"
    engine = next((b["device"] for m in models for b in m.benches.values()), None)
    torch = next((m.peer["torch"] for m in models if m.peer), None)
    if engine:
        text += f" · engine: {engine}"
    if torch:
        text += f" · PyTorch {torch}"
    return f"_{text}_"


def gpu_name(out, models):
    engine = next((b["device"] for m in models for b in m.benches.values()), "")
    gpu = out / "gpu.txt"
    return engine + (gpu.read_text() if gpu.exists() else "")


def peaks_for(name):
    return next(((label, flops, bw) for key, label, flops, bw in PEAKS if key in name), None)


def batches_of(models):
    found = {b for m in models for c in m.columns for b, v in c.values.items()}
    return sorted(found) or list(DEFAULT_BATCHES)


def fmt_ms(ms):
    return f"{ms:.3f}" if ms >= 0.1 else f"{ms:.4f}"


def cell(series, batch):
    v = series.get(batch)
    if not isinstance(v, float):
        return v
    return f"{fmt_ms(v / batch)} ms · {batch / v * 1e3:.0f}/s"


def ratio(theirs, ours):
    return f"{theirs / ours:.2f}×" if theirs is not None and ours is not None else None


def model_tables(m, head, batches):
    print(f"\n## {m.name} (`{m.stem}`)\n\n{head}\n")
    print("Time per sample (batch latency ÷ batch) and images/s. frame: the whole frame (host copy → "
          "upload → preprocess → network → decode → NMS → download); network: the network alone, input "
          "on the GPU, outputs left there — the work PyTorch is timed on (same float ONNX weights, "
          "onnx2torch).\n")
    print("| batch | " + " | ".join(c.label for c in m.columns) + " |")
    print("|---:|" + "---:|" * len(m.columns))
    for b in batches:
        print(f"| {b} | " + " | ".join(cell(c, b) for c in m.columns) + " |")
    if m.notes:
        print()
        print("\n".join(f"- {n}" for n in dict.fromkeys(m.notes)))
    if m.peer and m.peer.get("dynamo_graphs") is not None:
        print(f"- PyTorch peer: {m.peer['constants_baked']} onnx2torch modules given their constant operands "
              f"as Python values; dynamo traces {m.peer['dynamo_graphs']} graph(s), "
              f"{m.peer['dynamo_graph_breaks']} break(s); vs ONNX Runtime max |difference| "
              f"{m.peer.get('onnxruntime_max_abs_diff', float('nan')):.3g}")
    ours = [c for c in m.columns if c.label.startswith("ours")]
    for peer_label, title in ((EAGER_FP16, "ours ÷ PyTorch FP16 (eager)"),
                              (REDUCE_OVERHEAD, "ours ÷ torch.compile reduce-overhead FP16")):
        peer = m.column(peer_label)
        rows = [b for b in batches if peer.ms(b) is not None]
        print(f"\n### {m.name}: speed-up {title}\n\n{head}\n")
        if not rows:
            print(f"{peer_label}: no figure at any batch ({peer.get(batches[0])}).")
            continue
        print(f"{peer_label} time ÷ ours, same batch; > 1: ours is faster.\n")
        print("| batch | " + " | ".join(c.label for c in ours) + " |")
        print("|---:|" + "---:|" * len(ours))
        for b in rows:
            print(f"| {b} | " + " | ".join(ratio(peer.ms(b), c.ms(b)) or c.get(b) for c in ours) + " |")
        skipped = [str(b) for b in batches if b not in rows]
        if skipped:
            print(f"\nBatch {', '.join(skipped)}: {peer_label} not run or failed (no ratio).")


def roofline(m, name):
    """Per precision: (precision, FLOPs, bytes, peak text, roofline images/s, bound kind), or a
    reason string."""
    found = peaks_for(name)
    rows = []
    for p in PRECISIONS:
        bench = m.benches.get(p)
        if not bench or not bench.get("flops_per_image") or not bench.get("bytes_per_image"):
            continue
        flops, nbytes = bench["flops_per_image"], bench["bytes_per_image"]
        if not found:
            rows.append((p, flops, nbytes, None, None, None))
            continue
        label, peak_flops, bandwidth = found
        compute, memory = peak_flops[p] / flops, bandwidth / nbytes
        unit = 1e12
        peak = (f"{label}: {peak_flops[p] / unit:g} {PEAK_KIND[p]}, {bandwidth / 1e12:g} TB/s → compute "
                f"{compute:.0f}/s, memory {memory:.0f}/s")
        rows.append((p, flops, nbytes, peak, min(compute, memory), "memory" if memory < compute else "compute"))
    return rows


def roofline_section(models, head, name):
    print(f"\n## Roofline at batch 32\n\n{head}\n")
    print("FLOPs: 2 × the multiply-adds of the convolutions (everything else — adds, activations, "
          "resizes, decode — is under 1 % of the arithmetic). Bytes: every activation buffer of the "
          "engine's plan written once and read once at the plan's element size, plus every weight "
          "read once (the bench JSON of that precision): the traffic of an engine that re-reads "
          "nothing and keeps nothing on chip between layers. The INT8 plan's buffers are FP16-sized "
          "(with extra quantize copies), so its bytes exceed FP16's. Peaks: NVIDIA's datasheet, "
          "dense; roofline = min(peak FLOP/s ÷ FLOPs, bandwidth ÷ bytes) images/s.\n")
    if not peaks_for(name):
        print(f"No datasheet peaks for this GPU ({name.strip() or 'unknown'}): roofline not computed.\n")
    for m in models:
        for p, flops, nbytes, peak, bound, kind in roofline(m, name):
            frame, network = m.column(ours_label(p, "frame")).ms(32), m.column(ours_label(p, "network")).ms(32)
            line = f"- {m.name} {p.upper()}: {flops / 1e9:.3f} GFLOP, {nbytes / 1e6:.1f} MB per image"
            if bound:
                line += f"; {peak}: roofline {bound:.0f} images/s ({kind}-bound)"
                for what, ms in (("whole frame", frame), ("network", network)):
                    if ms is not None:
                        ips = 32 / ms * 1e3
                        line += f"; {what} {ips:.0f}/s = {ips / bound * 100:.1f} % ({bound / ips:.1f}× below)"
            print(line)


def verdict(ok):
    return "**MET**" if ok else "**NOT MET**"


NOT_MEASURED = "**NOT MEASURED**"


def goals(models, head, name):
    print(f"\n## Goals (issue #25)\n\n{head}\n")
    print("Throughput and latency are the whole frame (what the daemon waits for); the network-only "
          "figure is given beside it.\n")
    by = {m.stem: m for m in models}
    # (a) every model: our fastest precision at batch 1 vs torch.compile reduce-overhead's network.
    verdicts = []
    for m in models:
        ro = m.column(REDUCE_OVERHEAD).ms(1)
        timed = [(c.ms(1), p) for p in PRECISIONS if (c := m.column(ours_label(p, "frame"))).ms(1) is not None]
        if ro is None or not timed:
            missing = "torch.compile reduce-overhead" if ro is None else "ours"
            print(f"- (a) {m.name}: batch 1 whole frame vs torch.compile reduce-overhead network: "
                  f"{NOT_MEASURED} (no {missing} figure at batch 1)")
            verdicts.append((m.name, "not measured"))
            continue
        ms, p = min(timed)
        ok = ro / ms >= 2
        others = ", ".join(f"{q.upper()} {fmt_ms(t)} ms ({ro / t:.2f}×)" for t, q in timed if q != p)
        network = m.column(ours_label(p, "network")).ms(1)
        line = (f"- (a) {m.name}: batch 1, ours {p.upper()} whole frame {fmt_ms(ms)} ms vs torch.compile "
                f"reduce-overhead network {fmt_ms(ro)} ms: {ro / ms:.2f}× faster (≥ 2× needed) → {verdict(ok)}")
        if network is not None:
            line += f"; our network alone {fmt_ms(network)} ms ({ro / network:.2f}×)"
        if others:
            line += f"; other precisions: {others}"
        print(line)
        verdicts.append((m.name, "met" if ok else "not met"))
    states = {state for _, state in verdicts}
    overall = (verdict(False) if "not met" in states else NOT_MEASURED if "not measured" in states
               else verdict(True))
    print(f"- (a) every model: {overall} ({'; '.join(f'{n} {state}' for n, state in verdicts)})")
    # (b) batch 32: INT8 ≥ 1.5 × FP16 throughput, per model.
    for m in models:
        i8, f16 = (m.column(ours_label(p, "frame")).ms(32) for p in ("int8", "fp16"))
        if i8 is None or f16 is None:
            print(f"- (b) {m.name} batch 32, INT8 ≥ 1.5× FP16 throughput: {NOT_MEASURED} "
                  f"(INT8 {'missing' if i8 is None else 'present'}, FP16 {'missing' if f16 is None else 'present'})")
            continue
        n8, n16 = (m.column(ours_label(p, "network")).ms(32) for p in ("int8", "fp16"))
        line = (f"- (b) {m.name} batch 32: INT8 {32 / i8 * 1e3:.0f}/s vs FP16 {32 / f16 * 1e3:.0f}/s whole frame: "
                f"{f16 / i8:.2f}× (≥ 1.5× needed) → {verdict(f16 / i8 >= 1.5)}")
        if n8 is not None and n16 is not None:
            line += f"; network alone {n16 / n8:.2f}×"
        print(line)
    # (c) batch 32 within 3× of the roofline, per model and precision.
    if not peaks_for(name):
        print(f"- (c) batch 32 within 3× of the roofline: {NOT_MEASURED} (no datasheet peaks for this GPU)")
    for m in models:
        rows = roofline(m, name)
        for p in PRECISIONS:
            if p not in (r[0] for r in rows):
                print(f"- (c) {m.name} {p.upper()}: {NOT_MEASURED} (no bench JSON with FLOPs and bytes)")
        for p, _, _, _, bound, _ in rows:
            ms = m.column(ours_label(p, "frame")).ms(32)
            if bound is None or ms is None:
                print(f"- (c) {m.name} {p.upper()}: {NOT_MEASURED} (no batch-32 figure or no peaks)")
                continue
            ips = 32 / ms * 1e3
            print(f"- (c) {m.name} {p.upper()}: batch 32 whole frame {ips:.0f}/s vs roofline {bound:.0f}/s: "
                  f"{bound / ips:.1f}× below (≤ 3× needed) → {verdict(bound / ips <= 3)}")
    # (d) the COCO SSD, batch 1 whole frame under 0.3 ms, fastest precision.
    coco = by.get("ssd_mobilenet_v2_coco_300")
    timed = [(c.ms(1), p) for p in PRECISIONS
             if coco and (c := coco.column(ours_label(p, "frame"))).ms(1) is not None]
    if not timed:
        print(f"- (d) COCO SSD batch 1 whole frame < 0.3 ms: {NOT_MEASURED}")
    else:
        ms, p = min(timed)
        others = ", ".join(f"{q.upper()} {fmt_ms(t)} ms" for t, q in timed if q != p)
        print(f"- (d) COCO SSD batch 1 whole frame: {p.upper()} {fmt_ms(ms)} ms (< 0.3 ms needed) → "
              f"{verdict(ms < 0.3)}" + (f"; {others}" if others else ""))


def plots(out, models, batches, head):
    """Per model latency per image vs batch (log-log), and images/s of every series at batch 32."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        print("\nNo plots: matplotlib is not installed here; run `report.py OUT` where it is.")
        return
    title = textwrap.fill(head.strip("_"), 110)
    colours = {"INT8": "#c62828", "FP16": "#6a1b9a", "FP32": "#ef6c00"}
    # torch.compile runs at a few batches only: markers, no line implying the batches between.
    peer_style = {EAGER_FP16: ("#1565c0", "-", "s"), "PyTorch eager FP32": ("#64b5f6", "-", "s"),
                  "torch.compile default FP16": ("#43a047", "none", "^"), REDUCE_OVERHEAD: ("#1b5e20", "none", "D")}

    def style(label):
        if label.startswith("ours"):
            precision = label.split()[1]
            return colours[precision], "-" if label.endswith("frame") else "--", "o"
        return peer_style[label]

    written = []
    for m in models:
        series = [(c, [(b, c.ms(b) / b) for b in batches if c.ms(b) is not None]) for c in m.columns]
        series = [(c, pts) for c, pts in series if pts]
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(10, 6), dpi=110)
        for c, pts in series:
            colour, line, marker = style(c.label)
            ax.plot(*zip(*pts), linestyle=line, marker=marker, markersize=8, color=colour, label=c.label,
                    linewidth=2)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        # Plain numbers (0.2, not 2×10⁻¹), labels at 1, 2 and 5 of each decade.
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(ticker.FuncFormatter(
            lambda v, _: f"{v:g}" if round(v / 10 ** math.floor(math.log10(v))) in (2, 5) else ""))
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.set_xlabel("batch")
        ax.set_ylabel("time per image, ms (log)")
        fig.suptitle(f"{m.name}: time per image vs batch (lower is better)\n{title}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        path = out / f"latency-{m.stem}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path.name)
    bars = [(m, c) for m in models for c in m.columns if c.ms(32) is not None]
    if bars:
        labels = list(dict.fromkeys(c.label for _, c in bars))
        fig, ax = plt.subplots(figsize=(12, 6), dpi=110)
        width = 0.8 / len(labels)
        for i, label in enumerate(labels):
            xs, ys = [], []
            for j, m in enumerate(models):
                ms = m.column(label).ms(32)
                if ms is not None:
                    xs.append(j + (i - (len(labels) - 1) / 2) * width)
                    ys.append(32 / ms * 1e3)
            colour, line, _ = style(label)
            ax.bar(xs, ys, width, color=colour, label=label, hatch="//" if line == "--" else None,
                   edgecolor="white")
        ax.set_xticks(range(len(models)), [m.name for m in models], fontsize=9)
        ax.set_ylabel("images/s at batch 32")
        fig.suptitle(f"Throughput at batch 32 (higher is better)\n{title}", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        fig.savefig(out / "throughput-batch32.png")
        plt.close(fig)
        written.append("throughput-batch32.png")
    print("\nPlots: " + ", ".join(f"`{w}`" for w in written))


def failures(out):
    path = out / "failures.txt"
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")] if path.exists() else []
    if lines:
        print("\n## Failed steps (failures.txt)\n")
        print("\n".join(f"- {ln}" for ln in lines))


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = pathlib.Path(sys.argv[1])
    # Every model, also one with no figures: its cells say "not run" and its goals "not measured".
    models = [load_model(out, stem, name) for stem, name in MODELS]
    if not any(m.benches or m.peer for m in models):
        raise SystemExit(f"{out}: no bench-*.json or peer-*.json — did tests/gpu/run.sh's bench and peer steps run?")
    head = header(out, models)
    name = gpu_name(out, models)
    batches = batches_of(models)
    print(f"# GPU engine vs PyTorch: precision × batch\n\n{head}")
    for m in models:
        model_tables(m, head, batches)
    roofline_section(models, head, name)
    goals(models, head, name)
    plots(out, models, batches, head)
    failures(out)


if __name__ == "__main__":
    main()
