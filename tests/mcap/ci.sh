#!/usr/bin/env bash
# MCAP recording checks for CI (issue 7): installs the official Python `mcap` reader, validates the
# shipped sample recording and its reference with it, then replays the sample with the detector
# and compares the decisions and detections against the committed reference (exit 1 on any
# difference beyond the tolerances). The Foxglove views (issue 24) are checked against the official
# schemas (foxglove-schemas-protobuf, jsonschema): the embedded descriptor sets, and every
# SceneUpdate, FrameTransform and decoded CAN message of two replays, the sample's and 2 s of the
# udacity drive with its CAN input and a calibration with intrinsics (/tf). Run from the repository
# root after `cargo build -p adasd`.
set -euo pipefail
cd "$(dirname "$0")/../.."

PIP=("mcap==1.6.0" "protobuf==7.36.2" "foxglove-schemas-protobuf==0.4.0" "jsonschema==4.26.0")
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${PIP[@]}" \
    || python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --break-system-packages "${PIP[@]}"

SAMPLE=samples/vtest.mcap
REFERENCE=samples/vtest.reference.mcap
# No --config: both recordings name samples/vtest.toml relative to themselves (config_relative),
# so this works from any checkout.
ADASD=${ADASD:-target/debug/adasd}
[[ -x "$ADASD" ]] || cargo build -p adasd
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "--- independent check (python mcap): $SAMPLE $REFERENCE"
python3 tests/mcap/validate.py "$SAMPLE" "$REFERENCE"

echo "--- replay $SAMPLE against $REFERENCE"
"$ADASD" replay "$SAMPLE" --out "$OUT/replay" --compare "$REFERENCE"

echo "--- object-list replay of the reference (detections from the recording)"
"$ADASD" replay "$REFERENCE" --recorded-detections --out "$OUT/objects" --compare "$REFERENCE"

echo "--- Foxglove views against the official schemas"
python3 tests/mcap/foxglove_fds.py
"$ADASD" record import --video samples/udacity/solidWhiteRight.mp4 --can samples/udacity/ego.can.log \
    --fps 10 --max-frames 20 --config samples/udacity.toml --out "$OUT/udacity.mcap"
"$ADASD" replay "$OUT/udacity.mcap" --no-images --out "$OUT/udacity"
python3 tests/mcap/validate.py "$OUT/replay/replay.mcap" "$OUT/udacity/replay.mcap" | tee "$OUT/validate.txt"
for topic in /viz/bev /viz/tracks /viz/corridor /tf /can/rx/VehicleSpeed /can/tx/AEB_Warning /can/tx/AEB_Status; do
    grep -q "[,=]$topic:[1-9]" "$OUT/validate.txt" || { echo "no $topic messages in the replays" >&2; exit 1; }
done
echo "mcap CI checks passed"
