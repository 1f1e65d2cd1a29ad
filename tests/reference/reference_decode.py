"""Reference (Python/numpy) preprocessing and head decoders for the shipped detector models.

This is the yard-stick the Rust decoders in `plugins/` are checked against. It is deliberately
plain numpy — no OpenCV, no framework — so every step is visible and can be mirrored exactly:

* `load_rgb`          8-bit RGB image from a file (Pillow).
* `resize_bilinear`   bilinear resize without antialiasing; `half_pixel=True` is OpenCV's
                      `INTER_LINEAR` / ONNX `half_pixel`, `False` is TF1 `resize_bilinear`
                      (`align_corners=False`, ONNX `asymmetric`).
* `preprocess`        stretch or letterbox (pad bottom-right or centre), colour order, mean/std,
                      NCHW/NHWC; returns the tensor and the mapping back to original pixels.
* `tf_ssd_anchors`    TF Object Detection API `ssd_anchor_generator` (multiple grid anchors).
* `decode_ssd`        TF `FasterRcnnBoxCoder` decode (ty, tx, th, tw) + sigmoid scores.
* `decode_gfl`        NanoDet GFL head: per-level class scores + 4 x (reg_max+1) side bins.
* `nms`, `multiclass_nms`  greedy NMS, per class, "suppress if IoU > threshold".
"""

from __future__ import annotations

import numpy as np
from PIL import Image

COCO80 = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]


def load_rgb(path: str) -> np.ndarray:
    """HxWx3 uint8 RGB."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def resize_bilinear(img: np.ndarray, out_w: int, out_h: int, half_pixel: bool = True) -> np.ndarray:
    """Bilinear resize of an HxWxC image to out_h x out_w, float32 result, edge-clamped,
    no antialiasing. Source coordinate of output pixel i: (i+0.5)*in/out-0.5 (half_pixel) or
    i*in/out (asymmetric, TF1)."""
    in_h, in_w = img.shape[:2]
    src = img.astype(np.float32)

    def coords(n_out: int, n_in: int):
        scale = n_in / n_out
        i = np.arange(n_out, dtype=np.float64)
        c = (i + 0.5) * scale - 0.5 if half_pixel else i * scale
        c = np.clip(c, 0.0, n_in - 1)
        i0 = np.floor(c).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        f = (c - i0).astype(np.float32)
        return i0, i1, f

    y0, y1, fy = coords(out_h, in_h)
    x0, x1, fx = coords(out_w, in_w)
    top = src[y0][:, x0] * (1 - fx)[None, :, None] + src[y0][:, x1] * fx[None, :, None]
    bot = src[y1][:, x0] * (1 - fx)[None, :, None] + src[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bot * fy[:, None, None]


def preprocess(img_rgb: np.ndarray, in_w: int, in_h: int, *, layout: str = "nchw",
               colour: str = "rgb", resize: str = "stretch", pad: str = "bottom-right",
               pad_value: float = 0.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
               half_pixel: bool = True):
    """Returns (tensor [1,...] float32, geometry) where geometry maps model-input pixels back to
    original pixels: x_orig = (x_in - off_x) / sx, y_orig = (y_in - off_y) / sy.

    Letterbox: s = min(in_w/w, in_h/h); the image is resized to (round(w*s), round(h*s)) and
    placed at the top-left ("bottom-right" padding) or centred (offset floor(pad/2)); padding is
    `pad_value` in pixel units before normalisation; sx = sy = s.
    Stretch: sx = in_w/w, sy = in_h/h, no offset."""
    h, w = img_rgb.shape[:2]
    if resize == "stretch":
        canvas = resize_bilinear(img_rgb, in_w, in_h, half_pixel)
        geom = dict(sx=in_w / w, sy=in_h / h, off_x=0.0, off_y=0.0, width=w, height=h)
    elif resize == "letterbox":
        s = min(in_w / w, in_h / h)
        rw, rh = int(round(w * s)), int(round(h * s))
        resized = resize_bilinear(img_rgb, rw, rh, half_pixel)
        if pad == "bottom-right":
            ox, oy = 0, 0
        elif pad == "centre":
            ox, oy = (in_w - rw) // 2, (in_h - rh) // 2
        else:
            raise ValueError(pad)
        canvas = np.full((in_h, in_w, 3), pad_value, dtype=np.float32)
        canvas[oy:oy + rh, ox:ox + rw] = resized
        geom = dict(sx=s, sy=s, off_x=float(ox), off_y=float(oy), width=w, height=h)
    else:
        raise ValueError(resize)
    if colour == "bgr":
        canvas = canvas[:, :, ::-1]
    elif colour != "rgb":
        raise ValueError(colour)
    x = (canvas - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    x = x.astype(np.float32)
    if layout == "nchw":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None]), geom


def to_original(boxes_in: np.ndarray, geom: dict) -> np.ndarray:
    """Model-input pixel boxes (x1,y1,x2,y2) → original-image pixels, clipped to the image."""
    b = boxes_in.astype(np.float64).copy()
    b[:, [0, 2]] = (b[:, [0, 2]] - geom["off_x"]) / geom["sx"]
    b[:, [1, 3]] = (b[:, [1, 3]] - geom["off_y"]) / geom["sy"]
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, geom["width"])
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, geom["height"])
    return b


# --------------------------------------------------------------------------------------------
# SSD (TF Object Detection API)


def tf_ssd_anchors(feature_maps, min_scale, max_scale, aspect_ratios,
                   interpolated_scale_aspect_ratio=1.0, reduce_boxes_in_lowest_layer=True):
    """[A, 4] anchors as (y_centre, x_centre, h, w), normalised; order y, x, box (TF)."""
    n = len(feature_maps)
    scales = [min_scale + (max_scale - min_scale) * i / (n - 1) for i in range(n)] + [1.0]
    out = []
    for layer, fm in enumerate(feature_maps):
        s, s_next = scales[layer], scales[layer + 1]
        if layer == 0 and reduce_boxes_in_lowest_layer:
            specs = [(0.1, 1.0), (s, 2.0), (s, 0.5)]
        else:
            specs = [(s, a) for a in aspect_ratios]
            if interpolated_scale_aspect_ratio > 0:
                specs.append((np.sqrt(s * s_next), interpolated_scale_aspect_ratio))
        sc = np.array([p[0] for p in specs], np.float64)
        ar = np.sqrt(np.array([p[1] for p in specs], np.float64))
        hs, ws = sc / ar, sc * ar
        c = (np.arange(fm, dtype=np.float64) + 0.5) / fm
        yy, xx = np.meshgrid(c, c, indexing="ij")
        a = np.zeros((fm, fm, len(specs), 4))
        a[..., 0] = yy[..., None]
        a[..., 1] = xx[..., None]
        a[..., 2] = hs
        a[..., 3] = ws
        out.append(a.reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def decode_ssd(box_enc, logits, anchors, scales=(10.0, 10.0, 5.0, 5.0), background_class=True):
    """box_enc [A,4] (ty,tx,th,tw), logits [A,C] → boxes [A,4] normalised (x1,y1,x2,y2) clipped
    to [0,1] (TF clips to the window before NMS), scores [A, C-1 or C]."""
    e = box_enc.reshape(-1, 4).astype(np.float64)
    a = anchors.astype(np.float64)
    ty, tx = e[:, 0] / scales[0], e[:, 1] / scales[1]
    th, tw = e[:, 2] / scales[2], e[:, 3] / scales[3]
    h, w = np.exp(th) * a[:, 2], np.exp(tw) * a[:, 3]
    yc, xc = ty * a[:, 2] + a[:, 0], tx * a[:, 3] + a[:, 1]
    boxes = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1)
    boxes = np.clip(boxes, 0.0, 1.0)
    scores = sigmoid(logits.reshape(len(e), -1).astype(np.float64))
    if background_class:
        scores = scores[:, 1:]
    return boxes, scores


# --------------------------------------------------------------------------------------------
# GFL / NanoDet


def decode_gfl(levels, in_w, in_h, reg_max=10, cell_offset=0.0, score_activation="none",
               side_order="ltrb"):
    """levels: list of (stride, scores [N,C], dists [N, 4*(reg_max+1)]).
    Grid per level: ceil(in/stride) columns, row-major. Point = ((x+off)*stride, (y+off)*stride);
    each side = stride * sum_k k*softmax(bins)_k. Returns boxes [M,4] model-input pixels, scores."""
    all_b, all_s = [], []
    bins = reg_max + 1
    for stride, sc, dist in levels:
        gw, gh = -(-in_w // stride), -(-in_h // stride)
        n = sc.reshape(-1, sc.shape[-1]).shape[0]
        assert n == gw * gh, (n, gw, gh)
        ys, xs = np.divmod(np.arange(n), gw)
        px = (xs + cell_offset) * stride
        py = (ys + cell_offset) * stride
        d = dist.reshape(n, 4, bins).astype(np.float64)
        d = np.exp(d - d.max(axis=2, keepdims=True))
        d /= d.sum(axis=2, keepdims=True)
        d = (d * np.arange(bins)).sum(axis=2) * stride
        idx = {c: i for i, c in enumerate(side_order)}
        l, t, r, b = d[:, idx["l"]], d[:, idx["t"]], d[:, idx["r"]], d[:, idx["b"]]
        all_b.append(np.stack([px - l, py - t, px + r, py + b], axis=1))
        s = sc.reshape(n, -1).astype(np.float64)
        if score_activation == "sigmoid":
            s = sigmoid(s)
        all_s.append(s)
    boxes = np.concatenate(all_b)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, in_w)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, in_h)
    return boxes, np.concatenate(all_s)


# --------------------------------------------------------------------------------------------
# NMS


def iou_one(box, boxes):
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    a = (box[2] - box[0]) * (box[3] - box[1])
    b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = a + b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes, scores, iou_threshold):
    """Greedy NMS; ties broken by lower index first (stable sort). Returns kept indices."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        if order.size == 1:
            break
        ious = iou_one(boxes[i], boxes[order[1:]])
        order = order[1:][ious <= iou_threshold]
    return keep


def multiclass_nms(boxes, scores, score_threshold, iou_threshold, max_detections=100):
    """Per-class NMS over every (box, class) pair with score >= threshold (a box may appear under
    several classes, like TF's multiclass NMS). Returns list of (label, score, box) sorted by
    score descending, at most max_detections."""
    dets = []
    for c in range(scores.shape[1]):
        idx = np.nonzero(scores[:, c] >= score_threshold)[0]
        if idx.size == 0:
            continue
        keep = nms(boxes[idx], scores[idx, c], iou_threshold)
        dets.extend((c, float(scores[idx[k], c]), boxes[idx[k]]) for k in keep)
    dets.sort(key=lambda d: (-d[1], d[0]))
    return dets[:max_detections]
