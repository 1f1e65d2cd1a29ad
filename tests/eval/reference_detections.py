"""Detections of the reference frameworks in the COCO results format, so each `adasd eval` row is
compared with the framework its model comes from, on the same images, by the same evaluator.

  --model ssd-tflite   TensorFlow Lite running the original uint8 .tflite, post-processing and
                       all (its own `TFLite_Detection_PostProcess` op). Input: stretch bilinear
                       resize to 300×300, rounded to uint8; `--sampling` chooses the resize
                       convention (TF1 asymmetric or half-pixel), which mAP settles.
  --model nanodet-ort  ONNX Runtime on the shipped NanoDet-m ONNX, decoded and NMS'd by the numpy
                       reference (tests/reference/reference_decode.py) with the manifest's
                       settings; `--resize` and `--cell-offset` override the manifest to settle
                       the preprocessing question by mAP.

Python 3.11. ssd-tflite needs `tflite-runtime` (CI: tflite-runtime==2.14.0, numpy<2, Pillow in a
venv) or TensorFlow; nanodet-ort needs onnxruntime. Both need numpy and Pillow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import reference_decode as rd  # noqa: E402

TFLITE = "../shared/models/ssd_mobilenet_v2_coco_quant/mobilenet_ssd_v2_coco_quant_postprocess.tflite"
NANODET = "models/nanodet_m_coco_416.toml"


def tflite_interpreter(path):
    """tflite-runtime where installed (CI), else TensorFlow's own copy of the same interpreter."""
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter
    it = Interpreter(model_path=path, num_threads=os.cpu_count())
    it.allocate_tensors()
    return it


def ssd_tflite(args, images):
    """Yields (image entry, [(category_id, score, (x1, y1, x2, y2) px)])."""
    it = tflite_interpreter(args.tflite)
    inp = it.get_input_details()[0]
    _, in_h, in_w, _ = inp["shape"]
    # The op's outputs by name: boxes, classes, scores, count.
    out = {d["name"]: d["index"] for d in it.get_output_details()}
    base = "TFLite_Detection_PostProcess"
    for entry, img in images:
        h, w = img.shape[:2]
        x = rd.resize_bilinear(img, in_w, in_h, half_pixel=args.sampling == "half-pixel")
        it.set_tensor(inp["index"], np.clip(np.rint(x), 0, 255).astype(np.uint8)[None])
        it.invoke()
        boxes = it.get_tensor(out[base])[0]
        classes = it.get_tensor(out[base + ":1"])[0]
        scores = it.get_tensor(out[base + ":2"])[0]
        count = int(it.get_tensor(out[base + ":3"])[0])
        dets = []
        for (y1, x1, y2, x2), c, s in zip(boxes[:count], classes[:count], scores[:count]):
            # Output class = 0-based index into the 90-id COCO label list; category id = index + 1.
            box = (np.clip(x1 * w, 0, w), np.clip(y1 * h, 0, h),
                   np.clip(x2 * w, 0, w), np.clip(y2 * h, 0, h))
            dets.append((int(c) + 1, float(s), box))
        yield entry, dets


def top_k_multiclass_nms(boxes, scores, score_threshold, iou_threshold, max_detections):
    """`reference_decode.multiclass_nms` with the same result, fast enough for a 0.001 threshold
    (which keeps ~90 000 (box, class) pairs per NanoDet image: 10 s per image there). Greedy NMS
    keeps a box by looking only at higher-ranked boxes of its class, so walking all candidates in
    the final order (score descending, then class, then index: multiclass_nms's ties) and keeping
    the first `max_detections` survivors gives exactly its first `max_detections`."""
    idx, cls = np.nonzero(scores >= score_threshold)
    s = scores[idx, cls]
    order = np.lexsort((idx, cls, -s))
    kept, per_class = [], {}
    for k in order:
        c, box = int(cls[k]), boxes[idx[k]]
        prev = per_class.setdefault(c, [])
        if prev and np.any(rd.iou_one(box, np.asarray(prev)) > iou_threshold):
            continue
        prev.append(box)
        kept.append((c, float(s[k]), box))
        if len(kept) == max_detections:
            break
    return kept


def nanodet_ort(args, images, categories):
    import onnxruntime as ort

    with open(args.manifest, "rb") as f:
        m = tomllib.load(f)
    inp, head = m["input"], m["head"]
    resize = args.resize or inp["resize"]
    offset = head["cell_offset"] if args.cell_offset is None else args.cell_offset
    sess = ort.InferenceSession(os.path.join(os.path.dirname(args.manifest), m["onnx"]),
                                providers=["CPUExecutionProvider"])
    _, _, in_h, in_w = inp["shape"]
    names = [n for lv in head["levels"] for n in (lv["scores"], lv["boxes"])]
    ids = {i: categories[name] for i, name in enumerate(m["labels"]) if name in categories}
    for entry, img in images:
        x, geom = rd.preprocess(img, in_w, in_h, layout=inp["layout"], colour=inp["colour"],
                                resize=resize, pad=inp.get("pad", "bottom-right"),
                                pad_value=inp.get("pad_value", 0.0), mean=inp["mean"],
                                std=inp["std"],
                                half_pixel=inp.get("sampling", "half-pixel") == "half-pixel")
        outs = dict(zip(names, sess.run(names, {inp["name"]: x})))
        levels = [(lv["stride"], outs[lv["scores"]], outs[lv["boxes"]]) for lv in head["levels"]]
        boxes, scores = rd.decode_gfl(levels, in_w, in_h, reg_max=head["reg_max"],
                                      cell_offset=offset,
                                      score_activation=head["score_activation"])
        kept = top_k_multiclass_nms(boxes, scores, args.threshold, m["nms_iou"], m["max_detections"])
        px = rd.to_original(np.array([b for _, _, b in kept]).reshape(-1, 4), geom)
        # Labels without a COCO category get id None and are dropped by the caller.
        yield entry, [(ids.get(c), s, tuple(b)) for (c, s, _), b in zip(kept, px)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", required=True, choices=["ssd-tflite", "nanodet-ort"])
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threshold", type=float, default=0.001)
    ap.add_argument("--tflite", default=TFLITE, help="ssd-tflite: the .tflite file")
    ap.add_argument("--sampling", choices=["asymmetric", "half-pixel"], default="asymmetric",
                    help="ssd-tflite: bilinear resize convention")
    ap.add_argument("--manifest", default=NANODET, help="nanodet-ort: the model manifest")
    ap.add_argument("--resize", choices=["stretch", "letterbox"],
                    help="nanodet-ort: override the manifest's resize")
    ap.add_argument("--cell-offset", type=float, help="nanodet-ort: override the manifest's")
    args = ap.parse_args()

    t0 = time.perf_counter()
    with open(args.annotations) as f:
        coco = json.load(f)
    categories = {c["name"]: c["id"] for c in coco["categories"]}
    valid = set(categories.values())

    def images():
        for entry in coco["images"]:
            path = os.path.join(args.images, entry["file_name"])
            try:
                img = rd.load_rgb(path)
            except OSError as e:
                sys.exit(f"error: cannot read image {path} (image {entry['id']} of "
                         f"{args.annotations}): {e}")
            if img.shape[:2] != (entry["height"], entry["width"]):
                sys.exit(f"error: image {path} is {img.shape[1]}×{img.shape[0]} but "
                         f"{args.annotations} says {entry['width']}×{entry['height']}")
            yield entry, img

    source = (ssd_tflite(args, images()) if args.model == "ssd-tflite"
              else nanodet_ort(args, images(), categories))
    results, dropped, n = [], 0, 0
    for entry, dets in source:
        n += 1
        for cat, score, (x1, y1, x2, y2) in dets:
            if score < args.threshold:
                continue
            if cat not in valid:
                dropped += 1
                continue
            results.append({"image_id": entry["id"], "category_id": cat,
                            "bbox": [round(float(v), 3) for v in (x1, y1, x2 - x1, y2 - y1)],
                            "score": float(score)})
    with open(args.out, "w") as f:
        json.dump(results, f)
    print(f"reference {args.model}: {n} images, {len(results)} detections written to {args.out}, "
          f"{dropped} dropped (no category), {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
