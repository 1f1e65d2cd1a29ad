#!/usr/bin/env python3
"""PyTorch peer for adasd's cuda engine: the same ONNX weights converted with onnx2torch, timed on
the same GPU in the same run — eager FP32, eager FP16 over a batch sweep, and torch.compile (default
and reduce-overhead, which uses CUDA graphs) at batch 1.

Two mechanical edits make the exported graph usable by PyTorch at every batch size and under
torch.compile, without changing its maths: Reshape targets with a baked batch of 1 get 0 ("copy
the input's batch"), and constant subgraphs (tf2onnx's Expand/ScatterND shape arithmetic, which
dynamo cannot trace) are folded by ONNX Runtime's basic graph optimisation before conversion.

Timed: the network forward pass only, input already on the GPU (adasd's figures include the uint8
frame upload, preprocessing, decode + NMS and the download, so the comparison favours PyTorch).

usage: pytorch_peer.py --onnx models/X.onnx --shape 1,3,416,416 [--batch 1,2,4] [--iterations 50]
                       [--json out.json]
"""
import argparse
import json
import statistics
import time

import onnx
import torch
from onnx2torch import convert


def prepare(path):
    """The model with constant subgraphs folded and batch-agnostic reshapes."""
    import os
    import tempfile

    import onnxruntime as ort
    from onnx import numpy_helper

    # Fold first: tf2onnx computes some Reshape targets (NanoDet's) with Cast/Expand/ScatterND
    # chains, which only become constants here; patched before folding, they kept the baked batch
    # of 1 and reached onnx2torch as a tensor it turns into torch.Size — which dynamo cannot trace.
    tmp = tempfile.mkdtemp()
    folded = os.path.join(tmp, "folded.onnx")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = folded
    ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    model = onnx.load(folded)
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]]).copy()
            if shape.size and shape[0] == 1:
                shape[0] = 0
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    return model


def timed(fn, iterations):
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(iterations):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - t) * 1e3)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--shape", required=True, help="input shape with batch 1, e.g. 1,3,416,416")
    ap.add_argument("--batch", default="1,2,4,8,16,32,64")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--compile-batches", default="1")
    ap.add_argument("--json")
    a = ap.parse_args()
    shape = [int(v) for v in a.shape.split(",")]
    batches = [int(v) for v in a.batch.split(",")]
    torch.backends.cudnn.benchmark = True
    base = convert(prepare(a.onnx)).cuda().eval()
    rows = []
    with torch.inference_mode():
        for mode, dtype in (("eager fp32", torch.float32), ("eager fp16", torch.float16)):
            model = base.to(dtype)
            for b in batches:
                x = torch.randn([b] + shape[1:], device="cuda", dtype=dtype)
                ms = timed(lambda: model(x), a.iterations)
                rows.append({"mode": mode, "batch": b, "latency_ms": ms, "images_per_s": b / ms * 1e3})
                print(f"{mode:28} batch {b:3}: {ms:8.3f} ms {b / ms * 1e3:10.1f} img/s", flush=True)
        model = base.to(torch.float16)
        for compile_mode in ("default", "reduce-overhead"):
            torch._dynamo.reset()
            compiled = torch.compile(model, mode=compile_mode)
            mode = f"torch.compile {compile_mode} fp16"
            for b in [int(v) for v in a.compile_batches.split(",")]:
                x = torch.randn([b] + shape[1:], device="cuda", dtype=torch.float16)
                try:
                    t = time.perf_counter()
                    for _ in range(3):
                        compiled(x)
                    torch.cuda.synchronize()
                    warm = time.perf_counter() - t
                    ms = timed(lambda: compiled(x), a.iterations)
                except Exception as e:  # a model dynamo cannot trace: report, keep the rest
                    rows.append({"mode": mode, "batch": b, "error": f"{type(e).__name__}: {str(e).splitlines()[0]}"})
                    print(f"{mode:28} batch {b:3}: failed: {type(e).__name__}", flush=True)
                    continue
                rows.append({"mode": mode, "batch": b, "latency_ms": ms, "images_per_s": b / ms * 1e3, "compile_s": warm})
                print(f"{mode:28} batch {b:3}: {ms:8.3f} ms {b / ms * 1e3:10.1f} img/s (compile {warm:.0f} s)", flush=True)
    report = {
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0),
        "onnx": a.onnx,
        "rows": rows,
    }
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
