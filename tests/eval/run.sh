#!/usr/bin/env bash
# Detector accuracy as the papers measure it: COCO bbox mAP by the official evaluator
# (pycocotools), for every shipped model × CPU backend (`adasd eval`) and for the frameworks the
# models come from (tests/eval/reference_detections.py), on the same images. Writes
# docs/accuracy/{table.md,results.json,chart.png} and fails when one of our rows is more than
# 0.5 mAP points from its reference (the gate; tests/eval/coco_map.py --check; see MODELS).
#
#   bash tests/eval/run.sh            (from anywhere; needs ../shared/eval/coco_val2017_mini)
#
# Python 3.11 with numpy, Pillow, onnxruntime, pycocotools and matplotlib ($PYTHON, default
# python3). TensorFlow Lite runs in its own venv (tflite-runtime needs numpy<2): $TFLITE_PYTHON,
# else target/eval/venv-tflite, made here on first use. ORT rows need libonnxruntime.so:
# $ORT_DYLIB_PATH, else the one in the onnxruntime wheel (as .ci/run does); without it they are
# skipped with a note. $ADASD: an adasd built with the `ort` feature (CI passes the one its
# accelerated-backend tests built); else `cargo build -p adasd --features ort` here.
set -euo pipefail
cd "$(dirname "$0")/../.."
START=$(date +%s)

DATA=${COCO_MINI:-../shared/eval/coco_val2017_mini}
ANNOTATIONS=$DATA/instances_val2017_mini.json
IMAGES=$DATA/images
OUT=${EVAL_OUT:-docs/accuracy}
WORK=target/eval
PYTHON=${PYTHON:-python3}
TOLERANCE=0.5

# Our models, one line each: group|row name|manifest|gate|reference row its backends are gated
# against. Gate `=`: within the tolerance either way (the same computation as the reference);
# `>=`: not more than the tolerance below it (the float form of the uint8 SSD has no activation
# rounding and scores higher than TensorFlow Lite's uint8 execution). A manifest that does not
# exist (yet) is skipped with a note.
MODELS=(
    "nanodet|nanodet|models/nanodet_m_coco_416.toml|=|nanodet ref ORT stretch c0.5"
    "ssd|ssd fp32|models/ssd_mobilenet_v2_coco_300.toml|>=|ssd ref TFLite asymmetric"
    "ssd|ssd int8|models/ssd_mobilenet_v2_coco_300_int8.toml|=|ssd ref TFLite asymmetric"
)
# Reference rows: group|row name|reference_detections.py arguments. NanoDet: the manifest's
# preprocessing (stretch, cell offset 0.5); SSD: the manifest's sampling. With EVAL_ALL=1 also the
# alternatives they were chosen over (docs/ACCURACY.md); CI runs only the gated references.
REFERENCES=(
    "nanodet|nanodet ref ORT stretch c0.5|--model nanodet-ort --resize stretch --cell-offset 0.5"
    "ssd|ssd ref TFLite asymmetric|--model ssd-tflite --sampling asymmetric"
)
if [[ ${EVAL_ALL:-0} == 1 ]]; then
    REFERENCES+=(
        "nanodet|nanodet ref ORT stretch c0|--model nanodet-ort --resize stretch --cell-offset 0"
        "nanodet|nanodet ref ORT letterbox c0.5|--model nanodet-ort --resize letterbox --cell-offset 0.5"
        "nanodet|nanodet ref ORT letterbox c0|--model nanodet-ort --resize letterbox --cell-offset 0"
        "ssd|ssd ref TFLite half-pixel|--model ssd-tflite --sampling half-pixel"
    )
fi

mkdir -p "$WORK" "$OUT"
slug() { tr -c 'A-Za-z0-9\n' '_' <<<"$1"; }

"$PYTHON" -c 'import numpy, PIL, onnxruntime, pycocotools, matplotlib' || {
    echo "error: $PYTHON lacks a package: pip install numpy Pillow onnxruntime pycocotools matplotlib" >&2
    exit 1
}
if [[ -z ${TFLITE_PYTHON:-} ]]; then
    TFLITE_PYTHON=$WORK/venv-tflite/bin/python
    if [[ ! -x $TFLITE_PYTHON ]]; then
        echo "=== making $WORK/venv-tflite (tflite-runtime 2.14 needs numpy<2)"
        "$PYTHON" -m venv "$WORK/venv-tflite"
        "$TFLITE_PYTHON" -m pip install --quiet --disable-pip-version-check \
            "tflite-runtime==2.14.0" "numpy<2" "Pillow==13.0.0"
    fi
fi

BACKENDS=(tract)
if [[ -z ${ORT_DYLIB_PATH:-} ]]; then
    ORT_DYLIB_PATH=$("$PYTHON" -c 'import glob, os, onnxruntime; print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.*")))[-1])' 2>/dev/null || true)
fi
if [[ -n $ORT_DYLIB_PATH ]]; then
    export ORT_DYLIB_PATH
    BACKENDS+=(ort)
else
    echo "note: no libonnxruntime.so (ORT_DYLIB_PATH / onnxruntime wheel): ort rows skipped"
fi

# The ort feature loads the library at run time, so it always builds; one binary serves both.
# The dev profile (dependencies optimised, see Cargo.toml) evaluates the 79 images in ~11 s per
# row.
if [[ -z ${ADASD:-} ]]; then
    echo "=== cargo build -p adasd --features ort"
    cargo build --quiet -p adasd --features ort
    ADASD=target/debug/adasd
fi

declare -A ROW_FILE=() GROUP_ROWS=()
GROUP_ORDER=()
add_row() { # group name file
    [[ -v GROUP_ROWS[$1] ]] || GROUP_ORDER+=("$1")
    GROUP_ROWS[$1]+="$2"$'\n'
    ROW_FILE[$2]=$3
}

CHECKS=()
for entry in "${MODELS[@]}"; do
    IFS='|' read -r group name manifest gate reference <<<"$entry"
    if [[ ! -f $manifest ]]; then
        echo "note: $manifest not found: $name skipped"
        continue
    fi
    for backend in "${BACKENDS[@]}"; do
        row="$name $backend"
        file=$WORK/$(slug "$row").json
        echo "=== $row"
        "$ADASD" eval --model "$manifest" --backend "$backend" \
            --annotations "$ANNOTATIONS" --images "$IMAGES" --out "$file"
        add_row "$group" "$row" "$file"
        CHECKS+=(--check "$row$gate$reference")
    done
done

for entry in "${REFERENCES[@]}"; do
    IFS='|' read -r group name args <<<"$entry"
    file=$WORK/$(slug "$name").json
    py=$PYTHON
    [[ $args == *ssd-tflite* ]] && py=$TFLITE_PYTHON
    echo "=== $name"
    # shellcheck disable=SC2086 # $args is a list of options
    "$py" tests/eval/reference_detections.py $args \
        --annotations "$ANNOTATIONS" --images "$IMAGES" --out "$file"
    add_row "$group" "$name" "$file"
done

ROWS=()
for group in "${GROUP_ORDER[@]}"; do
    while IFS= read -r row; do
        [[ -n $row ]] && ROWS+=(--row "$row=${ROW_FILE[$row]}")
    done <<<"${GROUP_ROWS[$group]}"
done

echo "=== COCO evaluation"
status=0
"$PYTHON" tests/eval/coco_map.py --annotations "$ANNOTATIONS" "${ROWS[@]}" "${CHECKS[@]}" \
    --tolerance "$TOLERANCE" \
    --out-md "$OUT/table.md" --out-json "$OUT/results.json" --out-png "$OUT/chart.png" || status=$?
echo "=== tests/eval/run.sh: $(($(date +%s) - START)) s, exit $status; $OUT/{table.md,results.json,chart.png}"
exit "$status"
