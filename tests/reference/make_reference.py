"""Writes the detector reference fixtures in tests/fixtures/reference/ with ONNX Runtime.

Run from the repo root:   python3 tests/reference/make_reference.py
Needs: numpy, pillow, onnxruntime (single-threaded CPU, so the output is deterministic), and
../shared/models/ssdlite_mobilenet_v2_pedestrian_300_postprocessed.onnx (too big to ship; set
SSD_POSTPROCESSED to point elsewhere).

Outputs (boxes are x1, y1, x2, y2 in original-image pixels; images keyed by repo-relative path):
  ssd_tf_postprocessed.json   TF's own decode + NMS (the full-graph SSD), score >= 0.3.
  ssd_ort_reference.json      raw-head SSD + reference_decode.py with the manifest's settings.
  nanodet_ort_reference.json  raw-head NanoDet + reference_decode.py with the manifest's settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tomllib

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_decode as rd  # noqa: E402

IMAGES = [
    "samples/images/dog.jpg",
    "samples/images/person.jpg",
    "samples/vtest/frames/frame_0000.jpg",
    "samples/vtest/frames/frame_0050.jpg",
    "samples/vtest/frames/frame_0099.jpg",
]
OUT_DIR = "tests/fixtures/reference"
SSD_MANIFEST = "models/ssdlite_mobilenet_v2_pedestrian_300.toml"
NANODET_MANIFEST = "models/nanodet_m_coco_416.toml"
SSD_POSTPROCESSED = os.environ.get(
    "SSD_POSTPROCESSED",
    "../shared/models/ssdlite_mobilenet_v2_pedestrian_300_postprocessed.onnx")
TF_SCORE_MIN = 0.3

COMMON_NOTE = (
    "Produced by tests/reference/make_reference.py with ONNX Runtime (CPU, 1 thread). Images "
    "decoded with Pillow (libjpeg); another JPEG decoder may differ by a grey level or two, and "
    "ORT vs tract/CUDA by float rounding: compare with a tolerance (score ~0.02, box ~2 px), and "
    "treat detections within ~0.02 of the score cut as optional.")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def load_manifest(path):
    with open(path, "rb") as f:
        m = tomllib.load(f)
    m["onnx"] = os.path.join(os.path.dirname(path), m["onnx"])
    return m


def r(x, nd):
    return round(float(x), nd)


def det_json(label_index, label, cls, score, box):
    return {"label_index": int(label_index), "label": label, "class": cls, "score": r(score, 5),
            "box": [r(v, 2) for v in box]}


def input_args(m):
    i = m["input"]
    layout = i["layout"]
    shape = i["shape"]
    w, h = (shape[3], shape[2]) if layout == "nchw" else (shape[2], shape[1])
    return w, h, dict(layout=layout, colour=i["colour"], resize=i["resize"],
                      pad=i.get("pad", "bottom-right"), pad_value=i.get("pad_value", 0.0),
                      mean=i["mean"], std=i["std"], half_pixel=True)


def header(m, model_path, extra):
    return {
        "_about": extra + " " + COMMON_NOTE,
        "model": model_path,
        "model_sha256": sha256(model_path),
        "manifest": m.get("_path"),
        "onnxruntime": ort.__version__,
        "box_format": "x1,y1,x2,y2 original-image pixels",
    }


def decoded_dets(m, boxes_in, scores, geom):
    dets = rd.multiclass_nms(boxes_in, scores, m["score_threshold"], m["nms_iou"],
                             m.get("max_detections", 100))
    out = []
    for c, s, b in dets:
        label = m["labels"][c]
        box = rd.to_original(np.asarray(b, np.float64)[None], geom)[0]
        out.append(det_json(c, label, m.get("classes", {}).get(label, "ignored"), s, box))
    return out


def ssd_tf(images):
    s = session(SSD_POSTPROCESSED)
    doc = {
        "_about": ("TF's own postprocessing (full-graph SSDLite pedestrian model: its internal "
                   "resize = TF1 bilinear/asymmetric, sigmoid, per-class NMS IoU 0.6, max 100), "
                   f"kept where score >= {TF_SCORE_MIN}; detection_boxes (ymin,xmin,ymax,xmax "
                   "normalised) scaled to pixels. label_index = TF class id - 1. " + COMMON_NOTE),
        "model": SSD_POSTPROCESSED,
        "model_sha256": sha256(SSD_POSTPROCESSED),
        "onnxruntime": ort.__version__,
        "score_min": TF_SCORE_MIN,
        "box_format": "x1,y1,x2,y2 original-image pixels",
        "images": {},
    }
    for p, img in images.items():
        o = dict(zip([x.name for x in s.get_outputs()], s.run(None, {"image_tensor:0": img[None]})))
        h, w = img.shape[:2]
        n = int(o["num_detections:0"][0])
        dets = []
        for i in range(n):
            score = float(o["detection_scores:0"][0, i])
            if score < TF_SCORE_MIN:
                continue
            y1, x1, y2, x2 = (float(v) for v in o["detection_boxes:0"][0, i])
            cls = int(o["detection_classes:0"][0, i])
            dets.append(det_json(cls - 1, "person" if cls == 1 else f"class{cls}",
                                 "pedestrian" if cls == 1 else "ignored", score,
                                 [x1 * w, y1 * h, x2 * w, y2 * h]))
        doc["images"][p] = {"width": w, "height": h, "detections": dets}
    return doc


def ssd_ort(images):
    m = load_manifest(SSD_MANIFEST)
    m["_path"] = SSD_MANIFEST
    s = session(m["onnx"])
    w, h, pre = input_args(m)
    a = m["head"]["anchors"]
    anchors = rd.tf_ssd_anchors(a["feature_maps"], a["min_scale"], a["max_scale"],
                                a["aspect_ratios"], a.get("interpolated_scale_aspect_ratio", 1.0),
                                a.get("reduce_boxes_in_lowest_layer", False))
    doc = header(m, m["onnx"], (
        "Raw-head SSD run with the manifest's preprocessing (bilinear resize with half-pixel "
        "centres, like OpenCV INTER_LINEAR — not TF's asymmetric resize, so scores differ from "
        "ssd_tf_postprocessed.json by up to ~0.05), decoded by tests/reference/reference_decode.py "
        "(TF anchors, box coder 10,10,5,5, sigmoid, background column dropped, boxes clipped to "
        "the input), per-class NMS at the manifest's nms_iou, score >= score_threshold."))
    doc.update(score_threshold=m["score_threshold"], nms_iou=m["nms_iou"], images={})
    for p, img in images.items():
        x, geom = rd.preprocess(img, w, h, **pre)
        outs = dict(zip([o.name for o in s.get_outputs()], s.run(None, {m["input"]["name"]: x})))
        boxes, scores = rd.decode_ssd(outs[m["head"]["boxes"]][0], outs[m["head"]["scores"]][0],
                                      anchors, m["head"]["box_coder_scales"],
                                      m["head"]["background_class"])
        boxes_px = boxes * np.array([w, h, w, h], np.float64)
        doc["images"][p] = {"width": img.shape[1], "height": img.shape[0],
                            "detections": decoded_dets(m, boxes_px, scores, geom)}
    return doc


def nanodet_ort(images):
    m = load_manifest(NANODET_MANIFEST)
    m["_path"] = NANODET_MANIFEST
    s = session(m["onnx"])
    w, h, pre = input_args(m)
    head = m["head"]
    doc = header(m, m["onnx"], (
        "Raw-head NanoDet run with the manifest's preprocessing (bilinear resize with half-pixel "
        "centres, like OpenCV INTER_LINEAR), decoded by tests/reference/reference_decode.py (GFL: "
        "softmax over reg_max+1 bins per side, expectation x stride from the cell point "
        "(x+cell_offset, y+cell_offset) x stride; boxes clipped to the input), per-class NMS at "
        "the manifest's nms_iou, score >= score_threshold."))
    doc.update(score_threshold=m["score_threshold"], nms_iou=m["nms_iou"], images={})
    for p, img in images.items():
        x, geom = rd.preprocess(img, w, h, **pre)
        outs = dict(zip([o.name for o in s.get_outputs()], s.run(None, {m["input"]["name"]: x})))
        levels = [(lv["stride"], outs[lv["scores"]][0], outs[lv["boxes"]][0]) for lv in head["levels"]]
        boxes, scores = rd.decode_gfl(levels, w, h, head["reg_max"], head.get("cell_offset", 0.0),
                                      head["score_activation"])
        doc["images"][p] = {"width": img.shape[1], "height": img.shape[0],
                            "detections": decoded_dets(m, boxes, scores, geom)}
    return doc


def main():
    images = {p: rd.load_rgb(p) for p in IMAGES}
    os.makedirs(OUT_DIR, exist_ok=True)
    docs = {"ssd_ort_reference.json": ssd_ort(images),
            "nanodet_ort_reference.json": nanodet_ort(images)}
    if os.path.exists(SSD_POSTPROCESSED):
        docs["ssd_tf_postprocessed.json"] = ssd_tf(images)
    else:
        print(f"warning: {SSD_POSTPROCESSED} missing; ssd_tf_postprocessed.json not rewritten")
    for name, doc in docs.items():
        path = os.path.join(OUT_DIR, name)
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        n = sum(len(v["detections"]) for v in doc["images"].values())
        print(f"{path}: {n} detections over {len(doc['images'])} images")


if __name__ == "__main__":
    main()
