"""Writes TensorFlow Lite's raw integer outputs of the quantized COCO SSD for one image: the
fixture of adas-gpu's host test `the_int8_plan_computes_tensorflow_lites_integers` (the engine's
INT8 plan on its CPU reference, compared value for value, no GPU needed).

- tests/fixtures/reference/ssd_coco_int8_input.png: the network's 300x300 uint8 input (Pillow's
  bilinear resize of samples/images/person.jpg; a PNG, so both sides read the same pixels);
- tests/fixtures/reference/ssd_coco_int8_raw.bin: the two uint8 tensors the .tflite hands its
  TFLite_Detection_PostProcess, in this order: `Squeeze` (box encodings, 1917 x 4) then
  `convert_scores` (the Logistic's class scores, 1917 x 91).

TensorFlow Lite's reference kernels run it (OpResolverType.BUILTIN_REF): the integer arithmetic
the engine implements, gemmlowp's rounding, which its default XNNPACK delegate reproduces here
(ssd_coco_tflite.json is identical with either). Its optimized built-in kernels (ruy) round a
tie of the final shift upward instead of away from zero and land one step apart here and there
(363 of the 360 000 values of the first projection). Every intermediate tensor is kept, so the two
can be read after the run.

Run from the repo root in the venv of make_tflite_reference.py (tflite-runtime 2.14):
    python3 tests/reference/make_int8_raw_reference.py [--check]
--check writes nothing and exits 1 if the fixture differs from what it would write.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np
from PIL import Image

try:
    from tflite_runtime.interpreter import Interpreter, OpResolverType
except ImportError:  # TensorFlow's bundled TensorFlow Lite is the same interpreter.
    import tensorflow as tf

    Interpreter = tf.lite.Interpreter
    OpResolverType = tf.lite.experimental.OpResolverType

TFLITE = "../shared/models/ssd_mobilenet_v2_coco_quant/mobilenet_ssd_v2_coco_quant_postprocess.tflite"
TFLITE_SHA256 = "7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd"
IMAGE = "samples/images/person.jpg"
INPUT = "tests/fixtures/reference/ssd_coco_int8_input.png"
RAW = "tests/fixtures/reference/ssd_coco_int8_raw.bin"
TENSORS = ("Squeeze", "convert_scores")


def main() -> int:
    check = "--check" in sys.argv[1:]
    with open(TFLITE, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != TFLITE_SHA256:
            raise SystemExit(f"{TFLITE}: not the model the fixtures were made from")
    pixels = np.asarray(Image.open(IMAGE).convert("RGB").resize((300, 300), Image.BILINEAR), dtype=np.uint8)
    it = Interpreter(model_path=TFLITE, num_threads=1, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], pixels[None])
    it.invoke()
    index = {d["name"]: d["index"] for d in it.get_tensor_details()}
    raw = b"".join(it.get_tensor(index[n]).astype(np.uint8).tobytes() for n in TENSORS)
    if len(raw) != 1917 * 95:
        raise SystemExit(f"{len(raw)} bytes of outputs, expected {1917 * 95}")
    if check:
        with open(RAW, "rb") as f:
            same = f.read() == raw and np.array_equal(np.asarray(Image.open(INPUT)), pixels)
        print(f"{RAW}: {'identical to' if same else 'DIFFERENT from'} TensorFlow Lite's output now")
        return 0 if same else 1
    Image.fromarray(pixels).save(INPUT, optimize=True)
    with open(RAW, "wb") as f:
        f.write(raw)
    print(f"wrote {INPUT} and {RAW} ({len(raw)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
