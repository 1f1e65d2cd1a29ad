#!/usr/bin/env python3
"""PyTorch peer for adasd's cuda engine: the same ONNX weights converted with onnx2torch, timed on
the same GPU in the same run — eager FP32, eager FP16 over a batch sweep, and torch.compile (default
and reduce-overhead, which uses CUDA graphs) at batch 1.

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

usage: pytorch_peer.py --onnx models/X.onnx --shape 1,3,416,416 [--batch 1,2,4] [--iterations 50]
                       [--json out.json]
"""
import argparse
import copy
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
    converted = convert(prepare(a.onnx)).eval()
    base = copy.deepcopy(converted)
    baked = bake_constants(base)
    x = torch.rand([1] + shape[1:])
    with torch.inference_mode():
        want, got = converted(x), base(x)
    want = want if isinstance(want, (tuple, list)) else [want]
    got = got if isinstance(got, (tuple, list)) else [got]
    same = len(want) == len(got) and all(torch.equal(w, g) for w, g in zip(want, got))
    if not same:
        raise SystemExit("baking constants changed the network's outputs")
    base = base.cuda()
    explained = torch._dynamo.explain(copy.deepcopy(base).half())(x.cuda().half())
    graphs = {"constants_baked": baked, "dynamo_graphs": explained.graph_count,
              "dynamo_graph_breaks": explained.graph_break_count}
    print(f"{baked} onnx2torch modules got their constant operands as Python values (outputs identical); "
          f"dynamo: {explained.graph_count} graph(s), {explained.graph_break_count} break(s)", flush=True)
    torch._dynamo.reset()
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
        **graphs,
        "rows": rows,
    }
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
