#!/usr/bin/env bash
# Benchmark table for docs/ORT.md: `adasd bench` with tract and with ONNX Runtime (CPU EP), beside
# ONNX Runtime's own Python timing (tests/bench/ort_peer.py) of the same model and thread count,
# in one run. Prints a Markdown table; the last column is our overhead on top of ONNX Runtime's
# inference: (preprocess + decode + NMS) / Python ORT inference; it must stay < 5 %.
#
#   bash tests/bench/ort_compare.sh [THREADS] [ITERATIONS]
#
# Needs the release binary with the feature (built if missing):
#   cargo build --release -p adasd --features ort
# and the onnxruntime wheel (its libonnxruntime.so is found automatically, or set ORT_DYLIB_PATH).
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${1:-1}
ITER=${2:-50}
BIN=target/release/adasd
[[ -x $BIN ]] || cargo build --release -p adasd --features ort
IMAGE=samples/vtest/frames/frame_0000.jpg

mean_of() { awk -v row="$1" '$1 == row { print $2 }'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); threads=$THREADS; runs=$ITER; image $IMAGE"
echo
echo "| model | backend | preprocess ms | inference ms | decode+NMS ms | total ms | ORT Python inference ms | overhead vs ORT Python |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for m in nanodet_m_coco_416 ssdlite_mobilenet_v2_pedestrian_300; do
    peer=$(python3 tests/bench/ort_peer.py --model "models/$m.toml" --threads "$THREADS" --iterations "$ITER" \
        | sed -E 's/.*mean ([0-9.]+) ms.*/\1/')
    for backend in tract ort; do
        out=$($BIN bench --model "models/$m.toml" --backend "$backend" --threads "$THREADS" --iterations "$ITER" "$IMAGE")
        pre=$(mean_of preprocess <<<"$out")
        inf=$(mean_of inference <<<"$out")
        dec=$(mean_of decode+nms <<<"$out")
        tot=$(mean_of total <<<"$out")
        name=$(head -1 <<<"$out" | awk '{print $4}')
        over=$(awk -v p="$pre" -v d="$dec" -v r="$peer" 'BEGIN { printf "%.1f %%", 100 * (p + d) / r }')
        [[ $backend == tract ]] && over="—"
        echo "| $m | $name | $pre | $inf | $dec | $tot | $peer | $over |"
    done
done
