#!/usr/bin/env python3
"""PyTorch peer for adasd's cuda engine: the same ONNX weights converted with onnx2torch, timed on
the same GPU in the same run — eager FP16 and FP32 over a batch sweep, and torch.compile (default
and reduce-overhead, which uses CUDA graphs) at the --compile-batches (static shapes, compiled anew
per batch: 5–60 s each, hence a few batches only; the report marks the others "not run").

Before timing, the converted model (FP32, CPU) is checked against ONNX Runtime running the
original file on the same input: the peer must compute the network our engine computes.

Three mechanical edits make the exported graph run in PyTorch as a PyTorch user would write it, at
every batch size and under torch.compile, without changing its maths (checked: the outputs are
identical before and after):
- constant subgraphs (tf2onnx's Expand/ScatterND shape arithmetic, which dynamo cannot trace) are
  folded by ONNX Runtime's basic graph optimisation before conversion;
- Reshape targets with a baked batch of 1 get 0 ("copy the input's batch");
- onnx2torch's Pad, Reshape, Split and Resize modules take their constant operands (pads, target
  shape, split sizes, scales) as GPU tensors and read them back with `.tolist()` on every call:
  a device-to-host copy and stream sync per node (NanoDet: 42 of them per forward pass), and a
  graph break for dynamo (NanoDet: 17 breaks, so torch.compile's "reduce-overhead" captured 18
  small CUDA graphs with Python in between). `bake_constants` reads them once and replaces those
  modules with ones holding Python values, as the model's PyTorch source would have them.

Timed: the network forward pass only, input already on the GPU, host wall time of the call and a
`torch.cuda.synchronize()`, median. `adasd bench` times its network alone the same way
(`network_ms`: one CUDA graph launch and a stream synchronize); its whole-frame figure
(`latency_ms`) also includes the host copy, the uint8 frame upload, preprocessing, decode + NMS and
the download, which this script does not do.

The JSON is rewritten after every row, so a run cut short (timeout) keeps what it measured. A
torch.compile cell that fails or runs past --compile-timeout becomes a row with "error" and the
rest goes on (the limit is SIGALRM in the main thread: a compile inside code that swallows the
exception runs on; the caller's own timeout is the hard limit). Exit status 1 when the model does
not match ONNX Runtime or a cell failed, after all rows are written.

usage: pytorch_peer.py --onnx models/X.onnx --shape 1,3,416,416 [--batch 1,4,8] [--iterations 50]
                       [--compile-batches 1,32] [--compile-timeout 90] [--device cuda|cpu]
                       [--json out.json]
   --device cpu: a dry run of every step on the CPU (conversion, ONNX Runtime check, all modes).
"""
import argparse
import copy
import json
import os
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


def bake_constants(graph_module):
    """Replaces onnx2torch modules that read constant operands from tensors on every call (a host
    sync each, a dynamo graph break each) with modules holding them as Python values. Returns how
    many were replaced."""
    import functools

    import torch.nn.functional as F
    from onnx2torch.node_converters.pad import (OnnxPadDynamic, OnnxPadStatic, _onnx_padding_to_torch,
                                                _torch_padding_to_mode_format)
    from onnx2torch.node_converters.reshape import OnnxReshape
    from onnx2torch.node_converters.resize import OnnxResize, _onnx_mode_to_torch_mode
    from onnx2torch.node_converters.split import OnnxSplit13

    class Reshape(torch.nn.Module):
        def __init__(self, shape):
            super().__init__()
            self.shape = shape

        def forward(self, x):  # ONNX: 0 copies the input's dimension
            return torch.reshape(x, [x.shape[i] if d == 0 else d for i, d in enumerate(self.shape)])

    class Split(torch.nn.Module):
        def __init__(self, sizes, axis):
            super().__init__()
            self.sizes, self.axis = sizes, axis

        def forward(self, x):
            return torch.split(x, self.sizes, dim=self.axis)

    class Resize(torch.nn.Module):
        def __init__(self, onnx_mode, align_corners, scales, sizes):
            super().__init__()
            self.onnx_mode, self.align_corners, self.scales, self.sizes = onnx_mode, align_corners, scales, sizes

        def forward(self, x):
            return F.interpolate(x, size=self.sizes, scale_factor=self.scales,
                                 mode=_onnx_mode_to_torch_mode(self.onnx_mode, x.dim() - 2),
                                 align_corners=self.align_corners)

    def constant(arg):
        """The tensor behind a get_attr argument, as a Python list (None when absent or computed)."""
        if isinstance(arg, torch.fx.Node) and arg.op == "get_attr":
            return functools.reduce(getattr, arg.target.split("."), graph_module).tolist()
        return None

    replaced = 0
    for node in graph_module.graph.nodes:
        if node.op != "call_module" or node.kwargs:
            continue
        module, args = graph_module.get_submodule(node.target), node.args
        operands = [constant(a) for a in args[1:]]
        if any(o is None and a is not None for o, a in zip(operands, args[1:])):
            continue  # an operand computed by the network: leave the module as it is
        if isinstance(module, OnnxPadDynamic):
            pads = _torch_padding_to_mode_format(_onnx_padding_to_torch(operands[0]), module.mode)
            value = operands[1] if len(operands) > 1 and operands[1] is not None else 0.0
            value = value[0] if isinstance(value, list) else value
            static = OnnxPadStatic(pads=pads, mode=module.mode, constant_value=float(value))
        elif isinstance(module, OnnxReshape):
            static = Reshape(operands[0])
        elif isinstance(module, OnnxSplit13) and operands:
            static = Split(operands[0], module.axis)
        elif isinstance(module, OnnxResize) and not module.ignore_bs_ch_size:
            roi, scales, sizes = (operands + [None, None, None])[:3]
            if roi or (scales and scales[:2] != [1, 1]) or (sizes and sizes[:2] != [1, 1]):
                continue  # cases onnx2torch itself refuses; keep its error
            static = Resize(module.onnx_mode, module.align_corners, scales[2:] if scales else None,
                            sizes[2:] if sizes else None)
        else:
            continue
        parent, _, name = node.target.rpartition(".")
        setattr(graph_module.get_submodule(parent) if parent else graph_module, name, static)
        node.args = (args[0],)
        replaced += 1
    graph_module.graph.eliminate_dead_code()
    graph_module.recompile()
    return replaced


def check_against_onnxruntime(path, model, x):
    """Max |difference| between the converted model (FP32, on the CPU) and ONNX Runtime running
    the original file on the same input, and the largest reference value: the proof that the
    peer computes what our engine computes."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.inference_mode():
        got = model(x)
    got = got if isinstance(got, (tuple, list)) else [got]
    if len(got) != len(want):
        raise SystemExit(f"{path}: onnx2torch gives {len(got)} outputs, ONNX Runtime {len(want)}")
    diff = max(float(np.abs(g.numpy().reshape(w.shape) - w).max()) for g, w in zip(got, want))
    scale = max(float(np.abs(w).max()) for w in want)
    return diff, scale


def timed(fn, iterations, sync):
    for _ in range(10):
        fn()
    sync()
    samples = []
    for _ in range(iterations):
        t = time.perf_counter()
        fn()
        sync()
        samples.append((time.perf_counter() - t) * 1e3)
    return statistics.median(samples)


class CellTimeout(Exception):
    """A torch.compile cell ran past --compile-timeout."""


def time_limit(seconds):
    """Raises CellTimeout in the main thread after `seconds` (SIGALRM), so one slow compile
    costs at most that and the remaining cells still run."""
    import contextlib
    import signal

    def expire(*_):
        raise CellTimeout(f"ran past {seconds} s")

    @contextlib.contextmanager
    def limit():
        previous = signal.signal(signal.SIGALRM, expire)
        signal.alarm(seconds)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    return limit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--shape", required=True, help="input shape with batch 1, e.g. 1,3,416,416")
    ap.add_argument("--batch", default="1,4,8,16,32,64")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--compile-batches", default="1,32",
                    help="batches torch.compile runs at (each mode × batch compiles anew: 5-60 s)")
    ap.add_argument("--compile-modes", default="reduce-overhead,default")
    ap.add_argument("--compile-timeout", type=int, default=90, help="seconds per torch.compile cell")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                    help="cpu: a dry run of the whole script (conversion, check, every mode)")
    ap.add_argument("--json", help="written after every row, so a run cut short keeps its rows")
    a = ap.parse_args()
    shape = [int(v) for v in a.shape.split(",")]
    batches = [int(v) for v in a.batch.split(",")]
    compile_batches = [int(v) for v in a.compile_batches.split(",") if v]
    compile_modes = [v for v in a.compile_modes.split(",") if v]
    device = torch.device(a.device)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    torch.backends.cudnn.benchmark = True
    converted = convert(prepare(a.onnx)).eval()
    base = copy.deepcopy(converted)
    baked = bake_constants(base)
    x = torch.rand([1] + shape[1:]) * 2 - 1
    with torch.inference_mode():
        want, got = converted(x), base(x)
    want = want if isinstance(want, (tuple, list)) else [want]
    got = got if isinstance(got, (tuple, list)) else [got]
    same = len(want) == len(got) and all(torch.equal(w, g) for w, g in zip(want, got))
    if not same:
        raise SystemExit("baking constants changed the network's outputs")
    diff, scale = check_against_onnxruntime(a.onnx, base, x)
    # FP32 on two CPU libraries: differences of summation order only.
    matches = diff <= 1e-4 * max(1.0, scale)
    print(f"converted model vs ONNX Runtime (FP32, CPU, batch 1): max |difference| {diff:.3g} "
          f"(largest output {scale:.3g}): {'match' if matches else 'MISMATCH'}", flush=True)
    base = base.to(device)
    try:
        explained = torch._dynamo.explain(copy.deepcopy(base).half())(x.to(device).half())
        graphs, breaks = explained.graph_count, explained.graph_break_count
    except Exception as e:  # the compile cells below then fail and say why; eager still runs
        print(f"dynamo cannot trace the model: {type(e).__name__}: {e}", flush=True)
        graphs, breaks = None, None
    report = {
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu",
        "onnx": a.onnx,
        "shape": shape,
        "constants_baked": baked,
        "dynamo_graphs": graphs,
        "dynamo_graph_breaks": breaks,
        "onnxruntime_max_abs_diff": diff,
        "onnxruntime_max_abs_output": scale,
        "matches_onnxruntime": matches,
        "batches": batches,
        "compile_batches": compile_batches,
        "compile_modes": compile_modes,
        "rows": [],
    }
    print(f"{baked} onnx2torch modules got their constant operands as Python values (outputs identical); "
          f"dynamo: {graphs} graph(s), {breaks} break(s)", flush=True)
    torch._dynamo.reset()

    def add(row):
        report["rows"].append(row)
        if a.json:
            tmp = a.json + ".tmp"
            with open(tmp, "w") as f:
                json.dump(report, f, indent=1)
            os.replace(tmp, a.json)

    with torch.inference_mode():
        # FP16 first: the speed-up tables are against it.
        for mode, dtype in (("eager fp16", torch.float16), ("eager fp32", torch.float32)):
            model = base.to(dtype)
            for b in batches:
                x = torch.randn([b] + shape[1:], device=device, dtype=dtype)
                ms = timed(lambda: model(x), a.iterations, sync)
                add({"mode": mode, "batch": b, "latency_ms": ms, "images_per_s": b / ms * 1e3})
                print(f"{mode:34} batch {b:3}: {ms:8.3f} ms {b / ms * 1e3:10.1f} img/s", flush=True)
        model = base.to(torch.float16)
        # Batch by batch, reduce-overhead first: batch 1 reduce-overhead is the goal's yardstick.
        for b in compile_batches:
            for compile_mode in compile_modes:
                mode = f"torch.compile {compile_mode} fp16"
                # Static shapes, compiled anew per batch: what a user deploying one batch size gets
                # (with dynamic shapes the second batch would run a shape-generic graph).
                torch._dynamo.reset()
                compiled = torch.compile(model, mode=compile_mode, dynamic=False)
                x = torch.randn([b] + shape[1:], device=device, dtype=torch.float16)
                try:
                    with time_limit(a.compile_timeout):
                        t = time.perf_counter()
                        for _ in range(3):
                            compiled(x)
                        sync()
                        warm = time.perf_counter() - t
                        ms = timed(lambda: compiled(x), a.iterations, sync)
                except Exception as e:  # a model dynamo cannot trace, or a compile past its limit
                    add({"mode": mode, "batch": b, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"})
                    print(f"{mode:34} batch {b:3}: failed: {type(e).__name__}: {e}", flush=True)
                    continue
                add({"mode": mode, "batch": b, "latency_ms": ms, "images_per_s": b / ms * 1e3, "compile_s": warm})
                print(f"{mode:34} batch {b:3}: {ms:8.3f} ms {b / ms * 1e3:10.1f} img/s (compile {warm:.0f} s)", flush=True)
    failed = [f"{r['mode']} batch {r['batch']}" for r in report["rows"] if "error" in r]
    if not matches:
        raise SystemExit(f"{a.onnx}: the converted model does not match ONNX Runtime; its timings are of another network")
    if failed:
        raise SystemExit(f"{a.onnx}: {len(failed)} cell(s) failed ({', '.join(failed)}); the other rows are in the JSON")


if __name__ == "__main__":
    main()
