"""Converts the COCO SSD-MobileNet-v2 (uint8 TensorFlow Lite) into the two ONNX files in models/.

Run from the repository root, in a virtual environment with the converter's pins (TensorFlow is
only needed here, never by the product or its tests):

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.15.1 tf2onnx==1.16.1 "numpy<2" onnx==1.16.2 onnxruntime
    /tmp/tfenv/bin/python tools/models/convert_ssd_mobilenet_v2_coco.py \
        ../shared/models/ssd_mobilenet_v2_coco_quant/mobilenet_ssd_v2_coco_quant_postprocess.tflite

It writes
  models/ssd_mobilenet_v2_coco_300_int8.onnx   the network as QDQ (every tensor quantized as in the
                                               .tflite: uint8 activations, uint8 weights)
  models/ssd_mobilenet_v2_coco_300.onnx        the same network in float (weights dequantized,
                                               no activation quantization)
  models/ssd_mobilenet_v2_coco_300.anchors     the 1917 anchors stored in the .tflite, dequantized
and prints every fact the manifests state (input quantization, the post-process op's options,
output quantization) and how far each ONNX file is from TensorFlow Lite's own tensors on one image.

Both graphs are cut where TensorFlow Lite's `TFLite_Detection_PostProcess` begins: outputs `Squeeze`
(box encodings [1,1917,4]) and `convert_scores` (sigmoid class scores [1,1917,91], column 0 =
background). The post-process (decode with the anchors, best class per anchor, class-agnostic NMS)
is ours, configured from the op's custom options. Both take a float32 NHWC input
`normalized_input_image_tensor` = (pixel − 128) / 128, the .tflite's own input quantization;
the QDQ graph quantizes it back to the exact uint8 pixel in its first node.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SHA256 = "7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd"
OUT_DIR = "models"
BASE = "ssd_mobilenet_v2_coco_300"
INPUT = "normalized_input_image_tensor"
OUTPUTS = ["Squeeze", "convert_scores"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tflite_facts(path):
    """Tensor quantization, the anchors and the post-process op's custom options, from the file."""
    import tensorflow as tf
    from flatbuffers import flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    it = tf.lite.Interpreter(model_path=path)
    it.allocate_tensors()
    tensors = {d["name"]: d for d in it.get_tensor_details()}
    model = schema.Model.GetRootAsModel(open(path, "rb").read(), 0)
    graph = model.Subgraphs(0)
    options = None
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if model.OperatorCodes(op.OpcodeIndex()).CustomCode() == b"TFLite_Detection_PostProcess":
            options = flexbuffers.Loads(bytes(op.CustomOptionsAsNumpy()))
    if options is None:
        sys.exit("no TFLite_Detection_PostProcess op in the file")
    anchors = tensors["anchors"]
    scale = np.float32(anchors["quantization"][0])
    zero = anchors["quantization"][1]
    raw = it.get_tensor(anchors["index"]).astype(np.int32)
    # detection_postprocess.cc dequantizes uint8 anchors as scale · (q − zero_point) in float.
    dequantized = (scale * (raw - zero).astype(np.float32)).astype(np.float32)
    return tensors, options, dequantized


def tf2onnx(tflite, out, dequantize):
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--tflite", tflite, "--opset", "13",
           "--outputs", ",".join(OUTPUTS), "--output", out]
    if dequantize:
        cmd.append("--dequantize")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return onnx.load(out)


def float_input(graph, quantize):
    """Replaces the uint8 input by a float32 one holding (pixel − 128) / 128."""
    old = next(i for i in graph.input if i.name == INPUT)
    dims = [d.dim_value for d in old.type.tensor_type.shape.dim]
    graph.input.remove(old)
    graph.input.insert(0, helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, dims))
    if quantize:
        # The QDQ graph reads the uint8 tensor under the old name: quantize it back exactly.
        inner = INPUT + "_uint8"
        for node in graph.node:
            node.input[:] = [inner if n == INPUT else n for n in node.input]
        graph.initializer.extend([
            numpy_helper.from_array(np.array(1.0 / 128.0, np.float32), "input_scale"),
            numpy_helper.from_array(np.array(128, np.uint8), "input_zero_point"),
        ])
        graph.node.insert(0, helper.make_node(
            "QuantizeLinear", [INPUT, "input_scale", "input_zero_point"], [inner]))
    else:
        # The float graph starts Cast → Sub 128 → Mul 1/128: the input already is that value.
        chain = [n for n in graph.node if n.name.startswith(INPUT + "_dequant_")]
        assert [n.op_type for n in chain] == ["Cast", "Sub", "Mul"], chain
        last = chain[-1].output[0]
        for n in chain:
            graph.node.remove(n)
        for node in graph.node:
            node.input[:] = [INPUT if n == last else n for n in node.input]


def float_outputs(graph, tensors):
    """Makes both outputs float32: dequantized (QDQ) or never quantized (float graph)."""
    inits = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    for name in OUTPUTS:
        out = next(o for o in graph.output if o.name == name)
        out.type.tensor_type.elem_type = TensorProto.FLOAT
    # Float graph: remove every QuantizeLinear (tf2onnx leaves the requantizing of outputs and
    # of concat inputs in place even with --dequantize).
    quant = [n for n in graph.node if n.op_type == "QuantizeLinear"
             and n.input[0] != INPUT]
    if all(n.op_type != "DequantizeLinear" for n in graph.node):
        for n in quant:
            graph.node.remove(n)
            for node in graph.node:
                node.input[:] = [n.input[0] if i == n.output[0] else i for i in node.input]
            for o in graph.output:
                if o.name == n.output[0]:
                    # Rename the producer's output to the graph output's name.
                    producers[n.input[0]].output[:] = [
                        o.name if x == n.input[0] else x for x in producers[n.input[0]].output]
                    for node in graph.node:
                        node.input[:] = [o.name if i == n.input[0] else i for i in node.input]
        return
    # QDQ graph: dequantize each uint8 output with the .tflite's own output quantization.
    for name in OUTPUTS:
        scale, zero = tensors[name]["quantization"]
        q = name + "_uint8"
        for node in graph.node:
            node.output[:] = [q if o == name else o for o in node.output]
            node.input[:] = [q if i == name else i for i in node.input]
        graph.initializer.extend([
            numpy_helper.from_array(np.array(scale, np.float32), name + "_scale"),
            numpy_helper.from_array(np.array(zero, np.uint8), name + "_zero_point"),
        ])
        graph.node.append(helper.make_node(
            "DequantizeLinear", [q, name + "_scale", name + "_zero_point"], [name]))
    del inits


def drop_unused_initializers(graph):
    """tf2onnx leaves the input's and the removed nodes' quantization constants behind (some
    uint8): dead weight that strict importers reject."""
    used = {i for n in graph.node for i in n.input}
    dead = [i for i in graph.initializer if i.name not in used]
    for i in dead:
        graph.initializer.remove(i)


def tflite_tensors(path, pixels):
    """TensorFlow Lite's own `Squeeze` / `convert_scores` (dequantized) for one uint8 image."""
    import tensorflow as tf

    it = tf.lite.Interpreter(model_path=path, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], pixels[None])
    it.invoke()
    out = {}
    for d in it.get_tensor_details():
        if d["name"] in OUTPUTS:
            scale, zero = d["quantization"]
            out[d["name"]] = (it.get_tensor(d["index"]).astype(np.float32) - zero) * scale
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    tflite = sys.argv[1]
    digest = sha256(tflite)
    if digest != SHA256:
        sys.exit(f"{tflite}: sha256 {digest}, expected {SHA256}")
    tensors, options, anchors = tflite_facts(tflite)
    print("input quantization:", tensors[INPUT]["quantization"], tensors[INPUT]["dtype"].__name__)
    for name in OUTPUTS:
        print(f"{name} quantization:", tensors[name]["quantization"])
    print("anchors quantization:", tensors["anchors"]["quantization"],
          "range", anchors.min(), anchors.max())
    print("post-process options:", dict(sorted(options.items())))

    os.makedirs(OUT_DIR, exist_ok=True)
    anchor_path = os.path.join(OUT_DIR, BASE + ".anchors")
    with open(anchor_path, "w") as f:
        f.write("# The 1917 anchors of ssd_mobilenet_v2_coco_quant (the .tflite's constant tensor\n"
                "# `anchors`, uint8, dequantized as float32 scale·q): cy cx h w, normalised to the\n"
                "# 300x300 input, in the model's output order. Written by\n"
                "# tools/models/convert_ssd_mobilenet_v2_coco.py.\n")
        for row in anchors:
            f.write(" ".join(repr(float(v)) for v in row) + "\n")

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(300, 300, 3), dtype=np.uint8)
    reference = tflite_tensors(tflite, pixels)
    import onnxruntime as ort

    for suffix, dequantize in (("_int8", False), ("", True)):
        out = os.path.join(OUT_DIR, BASE + suffix + ".onnx")
        with tempfile.TemporaryDirectory() as tmp:
            model = tf2onnx(tflite, os.path.join(tmp, "m.onnx"), dequantize)
        float_input(model.graph, quantize=not dequantize)
        float_outputs(model.graph, tensors)
        drop_unused_initializers(model.graph)
        model.producer_name = "tools/models/convert_ssd_mobilenet_v2_coco.py (tf2onnx 1.16.1)"
        onnx.checker.check_model(model)
        onnx.save(model, out)
        sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        x = ((pixels.astype(np.float32) - 128.0) / 128.0)[None]
        got = dict(zip(OUTPUTS, sess.run(OUTPUTS, {INPUT: x})))
        for name in OUTPUTS:
            step = tensors[name]["quantization"][0]
            diff = np.abs(got[name] - reference[name])
            print(f"{out} {name}: max |ORT − TFLite| = {diff.max():.5f} "
                  f"({diff.max() / step:.2f} output steps), "
                  f"{(diff > step * 0.5).mean() * 100:.3f} % of values differ by a step or more")
        print(out, "sha256", sha256(out))
    print(anchor_path, "sha256", sha256(anchor_path))


if __name__ == "__main__":
    main()
