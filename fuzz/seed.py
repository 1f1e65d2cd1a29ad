#!/usr/bin/env python3
"""Seeds fuzz/seeds/<target>/ from the repository's own files (samples, models, fixtures): the
starting points from which the committed corpora (fuzz/corpus/<target>/) were grown and minimised
(`cargo fuzz cmin`). Run from anywhere: python3 fuzz/seed.py. Needs Pillow (MJPEG seeds)."""

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "seeds"


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def files(target, *paths):
    for p in paths:
        put(target, p.replace("/", "_"), (ROOT / p).read_bytes())


files("config", "samples/udacity.toml", "samples/vtest.toml", "samples/vtest_cuda.toml",
      "tests/vm/camera/adasd.toml")
for m in sorted((ROOT / "models").glob("*.toml")):
    files("manifest", f"models/{m.name}")
files("calibration", "samples/vtest_calibration.toml", "samples/udacity/calibration.toml",
      "tests/vm/camera/calibration_640x480.toml")

# candump: the head of the ego log, single lines, an extended id, comments and blanks.
log = (ROOT / "samples/udacity/ego.can.log").read_text().splitlines()
put("candump", "ego_head.log", "\n".join(log[:13]) + "\n")
put("candump", "one_line.log", log[1] + "\n")
put("candump", "extended.log", "(0.000000) vcan0 18DAF110#ABCD\n\n# comment\n(0.000001) vcan0 7FF#\n")

# CAN frames: the supervision's default parameters, then the ego log's first frames as
# (time step in 0.1 ms, id index, DLC, data); ids by their index in the DBC's ALL_IDS.
ALL_IDS = [0x0A0, 0x0A1, 0x0A2, 0x120, 0x121]
params = b"".join(struct.pack("<QQBBB", 20, 100, 2, 3, 2) for _ in range(3))
frames, last_t = b"", None
for line in log:
    if not line.startswith("("):
        continue
    t, _iface, frame = line.split()
    t_us = round(float(t.strip("()")) * 1e6)
    ident, data = frame.split("#")
    dt = 0 if last_t is None else (t_us - last_t) // 100
    last_t = t_us
    payload = bytes.fromhex(data)
    frames += struct.pack("<HBB", dt, ALL_IDS.index(int(ident, 16)), len(payload))
    frames += payload.ljust(8, b"\0")
    if len(frames) >= 12 * 60:
        break
put("can_input", "ego_head.bin", params + frames)
put("can_input", "ego_short.bin", params + frames[: 12 * 9])

# Timestamps: the frame count, then the file.
put("timestamps", "two.txt", b"\x02# capture times\n0.5\n0.6\n")
put("timestamps", "ten.txt", b"\x0a" + "".join(f"{i / 10:.6f}\n" for i in range(10)).encode())

# Camera buffers: (format index in PREFERENCE: yuyv, uyvy, rgb24, mjpeg; width; height; stride
# u32) and the buffer. The packed ones are the yuv tests' 2x2 image with a padded stride; the
# JPEGs are crops of a sample frame, as a UVC camera sends them (baseline 4:2:0, 4:2:2, grey,
# progressive).
yuyv = bytes([16, 128, 235, 128, 0xEE, 0xEE, 81, 90, 81, 240, 0xEE, 0xEE])
uyvy = bytes([128, 16, 128, 235, 0, 0, 90, 81, 240, 81, 0, 0])
put("camera_frame", "yuyv_2x2.bin", struct.pack("<BBBI", 0, 2, 2, 6) + yuyv)
put("camera_frame", "uyvy_2x2.bin", struct.pack("<BBBI", 1, 2, 2, 6) + uyvy)
put("camera_frame", "rgb24_2x2.bin", struct.pack("<BBBI", 2, 2, 2, 7) + bytes(range(14)))
frame = Image.open(ROOT / "samples/vtest/frames/frame_0000.jpg").convert("RGB")
for name, size, kw in [
    ("420_16x8", (16, 8), dict(subsampling=2)),
    ("422_16x16", (16, 16), dict(subsampling=1)),
    ("grey_8x8", (8, 8), dict(mode="L")),
    ("progressive_16x16", (16, 16), dict(progressive=True)),
]:
    img = frame.crop((300, 300, 300 + size[0], 300 + size[1]))
    if kw.pop("mode", None):
        img = img.convert("L")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=75, **kw)
    put("camera_frame", f"mjpeg_{name}.bin", struct.pack("<BBBI", 3, *size, 0) + buf.getvalue())


# Recordings: the sample reference recording's head (header, schemas, metadata, its first frame:
# a cut-off file) and a slim copy of its first three frames without the large topics.
def records(buf, pos=0):
    while pos + 9 <= len(buf):
        op, n = buf[pos], struct.unpack_from("<Q", buf, pos + 1)[0]
        yield pos, op, buf[pos + 9 : pos + 9 + n]
        pos += 9 + n


def record(op, body):
    return bytes([op]) + struct.pack("<Q", len(body)) + body


def chunk_records(body):
    n = struct.unpack_from("<I", body, 28)[0]
    start = 32 + n + 8
    return body[start : start + struct.unpack_from("<Q", body, 32 + n)[0]]


def chunk(inner, t0, t1):
    head = struct.pack("<QQQI", t0, t1, len(inner), zlib.crc32(inner)) + struct.pack("<I", 0)
    return record(6, head + struct.pack("<Q", len(inner)) + inner)


ref = (ROOT / "samples/vtest.reference.mcap").read_bytes()
magic, recs = ref[:8], list(records(ref, 8))
chunks = [(pos, body) for pos, op, body in recs if op == 6]
second_frame = chunks[2][0]
put("read_recording", "reference_head.mcap", ref[:second_frame])
slim = magic + record(1, recs[0][2]) + record(6, chunks[0][1])
drop = (b"/camera/annotations", b"/adas/tracks", b"/adas/bev")
channels = {
    struct.unpack_from("<H", r)[0]: r[8 : 8 + struct.unpack_from("<I", r, 4)[0]]
    for _p, op, r in records(chunk_records(chunks[0][1]))
    if op == 4
}
for _pos, body in chunks[1:4]:
    kept = b""
    for _p, op, r in records(chunk_records(body)):
        if op == 5 and channels.get(struct.unpack_from("<H", r)[0]) in drop:
            continue
        kept += record(op, r)
    t0, t1 = struct.unpack_from("<QQ", body)
    slim += chunk(kept, t0, t1)
put("read_recording", "slim_3_frames.mcap", slim)
# Video files: the video source's test fixtures (MP4 with B-frames, High 10, HEVC, audio only).
for v in sorted((ROOT / "firmware-service/io/tests/fixtures/video").glob("*.mp4")):
    files("read_video", f"firmware-service/io/tests/fixtures/video/{v.name}")
print(f"seeds in {OUT}")
