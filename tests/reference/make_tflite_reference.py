"""Writes tests/fixtures/reference/ssd_coco_tflite.json: TensorFlow Lite's own detections.

The original framework runs the original file, ../shared/models/ssd_mobilenet_v2_coco_quant/
mobilenet_ssd_v2_coco_quant_postprocess.tflite, with its own post-processing
(TFLite_Detection_PostProcess: decode against the stored anchors, best class per anchor,
class-agnostic NMS, 20 detections), on real street frames, the sample photos and COCO val2017
images. Our detector (models/ssd_mobilenet_v2_coco_300*.toml) is compared with it by
tests/tests/detector_reference.rs (tract, float form) and firmware-service/detect/tests/ort_parity.rs
(ONNX Runtime, QDQ and float forms).

The .tflite takes a uint8 300x300 image, so this script makes one the way the manifest says our
preprocessing does (stretch, bilinear with the manifest's sampling, then rounded to the nearest
grey level as the QDQ graph's input QuantizeLinear rounds it) with the numpy reference
resize of tests/reference/reference_decode.py. The pixels are the ones the daemon decodes
(tests/examples/decode_rgb.rs, the `image` crate): Pillow's libjpeg-turbo differs from it by a
grey level here and there, which this quantized network turns into score steps. Each image's
pixels are fingerprinted (`rgb_sha256`), so the test can check it decodes the same.

Run from the repo root, in a venv with tflite-runtime (it needs numpy < 2):
    python3 -m venv /tmp/tflite && /tmp/tflite/bin/pip install tflite-runtime==2.14.0 "numpy<2" pillow
    /tmp/tflite/bin/python tests/reference/make_tflite_reference.py [--check]
With --check it writes nothing and exits 1 if the fixture differs from what it would write;
--out PATH writes elsewhere (e.g. to compare two TensorFlow Lite versions).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import tomllib

import numpy as np

try:
    from tflite_runtime.interpreter import Interpreter
    import tflite_runtime

    RUNTIME = "tflite-runtime " + tflite_runtime.__version__
except ImportError:  # TensorFlow's bundled TensorFlow Lite is the same interpreter.
    import tensorflow as tf

    Interpreter = tf.lite.Interpreter
    RUNTIME = "tensorflow.lite " + tf.__version__

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_decode as rd  # noqa: E402

SHARED = "../shared"
TFLITE = f"{SHARED}/models/ssd_mobilenet_v2_coco_quant/mobilenet_ssd_v2_coco_quant_postprocess.tflite"
TFLITE_SHA256 = "7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd"
MANIFEST = "models/ssd_mobilenet_v2_coco_300.toml"
OUT = "tests/fixtures/reference/ssd_coco_tflite.json"
# COCO val2017 images of the mini set with a vehicle or bicycle, plus the first 10 others.
COCO = f"{SHARED}/eval/coco_val2017_mini/images"
COCO_ROAD = ["000000155341", "000000160012", "000000165518", "000000172648", "000000183709",
             "000000192699", "000000349860", "000000370208", "000000423617", "000000460229",
             "000000568290"]


def images():
    paths = ["samples/images/dog.jpg", "samples/images/person.jpg",
             "samples/vtest/frames/frame_0000.jpg", "samples/vtest/frames/frame_0050.jpg",
             "samples/vtest/frames/frame_0099.jpg"]
    for d in ("udacity_lanelines/stills", "udacity_camera/test_images",
              "udacity_vehicle_detection/test_images"):
        paths += sorted(glob.glob(f"{SHARED}/drives/{d}/*.jpg"))
    coco = [f"{COCO}/{i}.jpg" for i in COCO_ROAD]
    others = [p for p in sorted(glob.glob(f"{COCO}/*.jpg")) if p not in coco]
    return paths + coco + others[:10]


def decoded(paths):
    """(path, HxWx3 uint8) as the daemon decodes each image."""
    # $DECODE_RGB: a decode_rgb already built (CI takes the one its feature build compiled:
    # building it with another feature set recompiles a dozen crates).
    command = ([os.environ["DECODE_RGB"]] if os.environ.get("DECODE_RGB") else
               ["cargo", "run", "-q", "-p", "adas-system-tests", "--example", "decode_rgb", "--"])
    with tempfile.TemporaryDirectory() as tmp:
        listing = subprocess.run([*command, tmp, *paths], check=True, capture_output=True,
                                 text=True).stdout
        for line in listing.splitlines():
            n, w, h, path = line.split(" ", 3)
            raw = np.fromfile(os.path.join(tmp, n + ".rgb"), dtype=np.uint8)
            yield path, raw.reshape(int(h), int(w), 3)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main():
    args = sys.argv[1:]
    check = "--check" in args
    out = args[args.index("--out") + 1] if "--out" in args else OUT
    with open(TFLITE, "rb") as f:
        if sha256(f.read()) != TFLITE_SHA256:
            sys.exit(f"{TFLITE}: not the file DATA.md describes (sha256)")
    with open(MANIFEST, "rb") as f:
        manifest = tomllib.load(f)
    labels = manifest["labels"]
    half_pixel = manifest["input"].get("sampling", "half-pixel") == "half-pixel"
    interpreter = Interpreter(model_path=TFLITE, num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    # Outputs by name: boxes, classes, scores, count.
    outs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    names = ["TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1",
             "TFLite_Detection_PostProcess:2", "TFLite_Detection_PostProcess:3"]
    doc = {
        "_about": (
            "TensorFlow Lite running the original uint8 SSD-MobileNet-v2 COCO .tflite with its own "
            "TFLite_Detection_PostProcess (best class per anchor, class-agnostic NMS IoU 0.6, 20 "
            "detections, all kept). Input: stretch bilinear resize to 300x300 with the manifest's "
            f"sampling ({manifest['input'].get('sampling')}), rounded to uint8. Boxes: "
            "(ymin, xmin, ymax, xmax) x (H, W, H, W), clipped to the image. label_index = TFLite "
            "class = COCO category id - 1. Written by tests/reference/make_tflite_reference.py."),
        "model": TFLITE,
        "model_sha256": TFLITE_SHA256,
        "runtime": RUNTIME,
        "manifest": MANIFEST,
        "box_format": "x1,y1,x2,y2 original-image pixels",
        "images": {},
    }
    for path, img in decoded(images()):
        h, w = img.shape[:2]
        x = rd.resize_bilinear(img, 300, 300, half_pixel=half_pixel)
        pixels = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        interpreter.set_tensor(inp, pixels[None])
        interpreter.invoke()
        boxes, classes, scores, count = (interpreter.get_tensor(outs[n]) for n in names)
        dets = []
        for i in range(int(count[0])):
            y1, x1, y2, x2 = (float(v) for v in boxes[0, i])
            label = int(classes[0, i])
            dets.append({
                "label_index": label, "label": labels[label], "score": round(float(scores[0, i]), 6),
                "box": [round(min(max(v, 0.0), lim), 3)
                        for v, lim in ((x1 * w, w), (y1 * h, h), (x2 * w, w), (y2 * h, h))],
            })
        doc["images"][path] = {"width": w, "height": h, "rgb_sha256": sha256(img.tobytes()),
                               "detections": dets}
    text = json.dumps(doc, indent=1) + "\n"
    if check:
        with open(OUT) as f:
            old = json.load(f)
        old.pop("runtime", None)
        new = json.loads(text)
        new.pop("runtime", None)
        if old != new:
            sys.exit(f"{OUT} differs from TensorFlow Lite's output now: regenerate it")
        print(f"{OUT}: identical to TensorFlow Lite's output ({len(new['images'])} images)")
        return
    with open(out, "w") as f:
        f.write(text)
    print(f"wrote {out}: {len(doc['images'])} images, "
          f"{sum(len(v['detections']) for v in doc['images'].values())} detections")


if __name__ == "__main__":
    main()
