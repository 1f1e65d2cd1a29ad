"""Which preprocessing / decoding does the shipped NanoDet-m ONNX expect? An experiment.

Run from the repo root:  python3 tests/reference/verify_nanodet_preprocessing.py

For every variant (resize × colour order × normalisation × cell offset) the model is run with
ONNX Runtime on the sample images, decoded with the reference GFL decoder, NMS'd per class, and
scored on two things:
  * score: the best score of each expected object class (mean over the expected objects), and
  * fit:   IoU of that best detection with a reference box: hand-drawn boxes (±5 px, drawn by
           eye on the images) for dog.jpg / person.jpg, and for vtest frames the TF SSDLite
           pedestrian model's own detections (score >= 0.5; each matched to the best-IoU
           NanoDet person box).
Prints one line per variant, best first. Deterministic (single-threaded ORT, fixed inputs).
"""

from __future__ import annotations

import itertools
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_decode as rd  # noqa: E402

NANODET = "models/nanodet_m_coco_416.onnx"
SSD_FULL = os.environ.get(
    "SSD_POSTPROCESSED",
    "../shared/models/ssdlite_mobilenet_v2_pedestrian_300_postprocessed.onnx")

# Hand-drawn reference boxes (x1, y1, x2, y2) in original pixels, by eye on the images.
HAND = {
    "samples/images/dog.jpg": [("bicycle", (125, 135, 568, 420)), ("dog", (130, 222, 312, 535)),
                               ("truck", (468, 80, 688, 170))],
    "samples/images/person.jpg": [("person", (190, 98, 275, 375)), ("dog", (64, 263, 205, 345)),
                                  ("horse", (405, 140, 602, 345))],
}
VTEST = [f"samples/vtest/frames/frame_{i:04d}.jpg" for i in range(0, 100, 5)]

BGR_MEAN, BGR_STD = (103.53, 116.28, 123.675), (57.375, 57.12, 58.395)
NORMS = {
    "nanodet": lambda colour: (BGR_MEAN, BGR_STD) if colour == "bgr" else (BGR_MEAN[::-1], BGR_STD[::-1]),
    "unit": lambda colour: ((0.0,) * 3, (255.0,) * 3),
    "tf": lambda colour: ((127.5,) * 3, (127.5,) * 3),
}


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def nanodet_levels(sess, outs):
    """Find (stride, scores, dists) by shape: N = 2704/676/169 → stride 8/16/32; 80 vs 44 cols."""
    by_n = {}
    for meta, arr in zip(sess.get_outputs(), outs):
        n, c = arr.shape[1], arr.shape[2]
        by_n.setdefault(n, {})["scores" if c == 80 else "boxes"] = (meta.name, arr)
    levels, names = [], []
    for stride in (8, 16, 32):
        n = (416 // stride) ** 2
        levels.append((stride, by_n[n]["scores"][1][0], by_n[n]["boxes"][1][0]))
        names.append((stride, by_n[n]["scores"][0], by_n[n]["boxes"][0]))
    return levels, names


def tf_person_boxes(sess, img, min_score=0.5):
    o = dict(zip([x.name for x in sess.get_outputs()], sess.run(None, {"image_tensor:0": img[None]})))
    n = int(o["num_detections:0"][0])
    h, w = img.shape[:2]
    out = []
    for i in range(n):
        if o["detection_scores:0"][0, i] >= min_score:
            y1, x1, y2, x2 = o["detection_boxes:0"][0, i]
            out.append(("person", (x1 * w, y1 * h, x2 * w, y2 * h)))
    return out


def main():
    nd = session(NANODET)
    refs = dict(HAND)
    if os.path.exists(SSD_FULL):
        tf = session(SSD_FULL)
        for p in VTEST:
            refs[p] = tf_person_boxes(tf, rd.load_rgb(p))
    images = {p: rd.load_rgb(p) for p in refs}

    names_printed = False
    rows = []
    for resize, colour, norm in itertools.product(
            [("stretch", "bottom-right"), ("letterbox", "bottom-right"), ("letterbox", "centre")],
            ["bgr", "rgb"], ["nanodet", "unit", "tf"]):
        mean, std = NORMS[norm](colour)
        raw = {}
        for p, img in images.items():
            x, geom = rd.preprocess(img, 416, 416, layout="nchw", colour=colour, resize=resize[0],
                                    pad=resize[1], mean=mean, std=std)
            outs = nd.run(None, {"input_1:0": x})
            levels, names = nanodet_levels(nd, outs)
            if not names_printed:
                print("output names by stride (scores, boxes):", names)
                s = levels[0][1]
                print("score range [%.4f, %.4f], row sums max %.3f (independent probabilities)"
                      % (s.min(), s.max(), s.sum(axis=1).max()))
                names_printed = True
            raw[p] = (levels, geom)
        for off in (0.0, 0.5):
            ious, scores, per_image = [], [], {}
            for p, (levels, geom) in raw.items():
                boxes, sc = rd.decode_gfl(levels, 416, 416, reg_max=10, cell_offset=off)
                dets = rd.multiclass_nms(boxes, sc, 0.05, 0.6, 100)
                for label, ref in refs[p]:
                    c = rd.COCO80.index(label)
                    cand = [(s, rd.to_original(b[None], geom)[0]) for (k, s, b) in dets if k == c]
                    if not cand:
                        ious.append(0.0)
                        scores.append(0.0)
                        continue
                    ref = np.asarray(ref, np.float64)
                    if p in HAND:  # best-scoring detection of the class
                        s, b = max(cand, key=lambda t: t[0])
                    else:  # crowded scene: the person box overlapping the SSD box most
                        s, b = max(cand, key=lambda t: rd.iou_one(ref, t[1][None])[0])
                    ious.append(float(rd.iou_one(ref, b[None])[0]))
                    scores.append(s)
                    per_image.setdefault(p, []).append(ious[-1])
            hand = [i for p in HAND for i in per_image.get(p, [])]
            vt = [i for p in VTEST for i in per_image.get(p, [])]
            rec = np.mean([i >= 0.5 for i in vt]) if vt else float("nan")
            rows.append((np.mean(ious), np.mean(scores), f"{resize[0]}/{resize[1]}", colour, norm, off,
                         np.mean(hand), np.mean(vt) if vt else float("nan"), rec, len(vt)))
    rows.sort(key=lambda r: (-r[0], -r[1]))
    print(f"{'mean IoU':>8} {'mean score':>10}  resize/pad              colour norm     offset"
          f"  IoU(hand, 6 objects)  IoU(vtest vs SSD, n={rows[0][9]})  recall@IoU0.5")
    for r in rows:
        print(f"{r[0]:8.3f} {r[1]:10.3f}  {r[2]:<23} {r[3]:<6} {r[4]:<8} {r[5]:<6}  {r[6]:20.3f}  {r[7]:22.3f}  {r[8]:12.3f}")


if __name__ == "__main__":
    main()
