#!/usr/bin/env python3
"""Peer timing for `adasd bench`: ONNX Runtime (CPU) on the same ONNX file, same input shape and
thread count, so the ratio tract / ONNX Runtime can be reported from one run.

    python3 tests/bench/ort_peer.py --model models/nanodet_m_coco_416.toml --threads 1 --iterations 20

Only the network is timed (like the `inference` row of `adasd bench`), on a random input.
"""
import argparse
import statistics
import time
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="model manifest (TOML)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=20)
    args = ap.parse_args()

    manifest_path = Path(args.model)
    manifest = tomllib.loads(manifest_path.read_text())
    onnx = manifest_path.parent / manifest["onnx"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
    shape = manifest["input"]["shape"]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feed = {manifest["input"]["name"]: x}
    for _ in range(3):
        sess.run(None, feed)
    times = []
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    p99 = times[min(len(times) - 1, round((len(times) - 1) * 0.99))]
    print(
        f"onnxruntime {ort.__version__} {manifest['name']} threads={args.threads} "
        f"runs={args.iterations}: mean {statistics.mean(times):.2f} ms, "
        f"p50 {statistics.median(times):.2f} ms, p99 {p99:.2f} ms"
    )


if __name__ == "__main__":
    main()
