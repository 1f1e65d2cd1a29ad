#!/usr/bin/env bash
# MCAP recording checks for CI (issue 7): installs the official Python `mcap` reader, validates the
# shipped sample recording and its reference with it, then replays the sample with the detector
# and compares the decisions and detections against the committed reference (exit 1 on any
# difference beyond the tolerances). Run from the repository root after `cargo build -p adasd`.
set -euo pipefail
cd "$(dirname "$0")/../.."

PIP=("mcap==1.6.0" "protobuf==7.36.2")
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
python3 tests/mcap/validate.py "$OUT/replay/replay.mcap"
echo "mcap CI checks passed"
