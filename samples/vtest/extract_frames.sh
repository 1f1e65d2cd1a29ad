#!/bin/sh
# Re-creates samples/vtest/frames/ from OpenCV's vtest.avi (see samples/PROVENANCE.md).
# Usage (repo root): sh samples/vtest/extract_frames.sh [path/to/vtest.avi]
# Needs ffmpeg (Debian 5.1) and python3 with Pillow.
set -eu
SRC="${1:-../shared/media/vtest.avi}"
OUT=samples/vtest/frames
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# Decoded frames 250..349 (0-based), i.e. t = 25.0 s .. 34.9 s at 10 fps, lossless PNG first.
ffmpeg -v error -i "$SRC" -vf "select='between(n\,250\,349)'" -fps_mode passthrough \
    -start_number 0 "$TMP/frame_%04d.png"
mkdir -p "$OUT"
python3 - "$TMP" "$OUT" <<'PY'
import glob, os, sys
from PIL import Image
tmp, out = sys.argv[1], sys.argv[2]
for p in sorted(glob.glob(os.path.join(tmp, "frame_*.png"))):
    name = os.path.splitext(os.path.basename(p))[0] + ".jpg"
    Image.open(p).convert("RGB").save(os.path.join(out, name), "JPEG", quality=80, optimize=True)
PY
