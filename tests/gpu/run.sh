#!/usr/bin/env bash
# The GPU test + benchmark run, on the GPU test machine (NVIDIA driver, CUDA 13, cuDNN 9, PyTorch):
#   tests   the GPU tests (kernels vs their CPU twins, engine vs tract, INT8 vs the integer
#           reference and TensorFlow Lite, detections vs the CPU pipeline, determinism, plan cache)
#   bench   `adasd bench` per model × precision over $BATCHES: FP16, FP32 and INT8 (the COCO SSD's
#           QDQ model; NanoDet and SSDLite with their calibration tables)
#   peer    the PyTorch peer on the same float ONNX weights (tests/bench/pytorch_peer.py): eager
#           FP16/FP32 over $BATCHES, torch.compile default and reduce-overhead at $COMPILE_BATCHES
#   run     `adasd run` end to end on the sample drive
#   eval    `adasd eval` on the COCO mini set (the cuda mAP rows, INT8 included)
#   report  tables, goals and plots (tests/gpu/report.py) into $OUT/summary.md and $OUT/*.png
# STEPS (default all, in that order) and MODELS (default the three) select; everything lands in
# $OUT (default out/gpu). Each command runs under `timeout`; a failure or timeout is written to
# $OUT/failures.txt and the run goes on, so one hang costs its limit, not the run. Seconds per
# step are in $OUT/timings.txt (both appended to, a header line per call).
#
# The bench gives two figures per batch: the whole frame (`latency_ms`: host copy into the pinned
# buffer → upload → preprocess → network → decode → NMS → download) and the network alone
# (`network_ms`: input already on the GPU, outputs left there), which is what the peer times.
#
# Device time (estimate, one H100/H200, fresh machine, defaults; the limits are the timeouts):
#   bench   9 sweeps (3 × 3) × 15–25 s (plan build per batch + 50 runs;       ≈ 135–225 s  (180 s each)
#           the first also compiles the kernels with NVRTC, cached for the rest)
#   peer    3 models × (10–15 s import, conversion, ONNX Runtime check, dynamo trace
#           + ≈ 20 s eager FP16/FP32 sweep + 4 torch.compile cells of 5–30 s)   ≈ 150–270 s  (240 s each,
#           one cell 60 s)
#   report  ≈ 5 s
#   → STEPS=bench,peer,report ≈ 4.5–7 min. eval (5 runs × ≈ 10 s on the 79-image mini set) adds
#   ≈ 1 min, run ≈ 10 s; tests take 5 min or more and belong to a run of their own.
#
# Binaries come prebuilt (the GPU machine has no Rust): on the development machine
#   cargo build --release -p adasd --features cuda
#   cargo test --release -p adas-detect --features cuda --test gpu --no-run
# and copy target/release/adasd and the gpu test binary into $BIN (default target/gpu-bin) as
# `adasd` and `gpu-tests` (gzip-compressed is fine). onnx2torch (pure Python) goes in $WHEELS as its
# wheel: `pip download onnx2torch==1.5.15 --no-deps -d DIR` on a machine with the package index.
# Optional: the same tests built with the JetPack 6 bindings (CUDARC_CUDA_VERSION=12060 cargo
# test ... --no-run) as `gpu-tests-cu12`, run after the others.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BIN=${BIN:-target/gpu-bin}
OUT=${OUT:-out/gpu}
WHEELS=${WHEELS:-$BIN}
# Scratch that need not come back: plan caches, the peer's Python packages.
WORK=${WORK:-${TMPDIR:-/tmp}/adas-gpu-run}
STEPS=${STEPS:-tests,bench,peer,run,eval,report}
MODELS=${MODELS:-ssd_mobilenet_v2_coco_300,nanodet_m_coco_416,ssdlite_mobilenet_v2_pedestrian_300}
BATCHES=${BATCHES:-1,4,8,16,32,64}
COMPILE_BATCHES=${COMPILE_BATCHES:-1,32}
ITERATIONS=${ITERATIONS:-50}
mkdir -p "$OUT" "$WORK"
# Appended to, so a run split over several calls into one $OUT keeps every call's record.
echo "# $(date -u +%FT%TZ) STEPS=$STEPS MODELS=$MODELS BATCHES=$BATCHES COMPILE_BATCHES=$COMPILE_BATCHES" \
  | tee -a "$OUT/failures.txt" >>"$OUT/timings.txt"
# Binaries may come gzip-compressed (the copy to the GPU machine is size-limited).
for z in "$BIN"/*.gz; do [[ -e "$z" ]] && gunzip -f "$z" && chmod +x "${z%.gz}"; done
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
export ADAS_REPO_ROOT=$PWD
# onnx2torch and torch warn on every converted node; the figures are what matters here.
export PYTHONWARNINGS=ignore
status=0
has() { [[ ",$STEPS," == *",$1,"* ]]; }
model_on() { [[ ",$MODELS," == *",$1,"* ]]; }
selected() { local m; for m in "$@"; do model_on "$m" && echo "$m"; done; }

# step SECONDS LOG CMD...: CMD under `timeout`, its output on the console and in LOG.
step() {
  local secs=$1 log=$2 t0=$SECONDS rc
  shift 2
  timeout -k 10 "$secs" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  printf '%5d s  rc %3d  %s\n' "$((SECONDS - t0))" "$rc" "$*" >>"$OUT/timings.txt"
  if ((rc != 0)); then
    status=1
    local why="exit status $rc"
    ((rc == 124 || rc == 137)) && why="timed out after $secs s"
    echo "FAILED ($why, log $log): $*" | tee -a "$OUT/failures.txt"
  fi
}

# The float model each ONNX peer and float bench runs; its input as the ONNX file declares it
# (with batch 1): the COCO SSD and SSDLite take float NHWC, NanoDet float NCHW.
declare -A SHAPE=([ssd_mobilenet_v2_coco_300]="1,300,300,3" [ssdlite_mobilenet_v2_pedestrian_300]="1,300,300,3"
  [nanodet_m_coco_416]="1,3,416,416")
# Precisions per model, in order of interest. INT8 runs the COCO SSD's own quantization (its QDQ
# form, models/*_int8.toml); NanoDet and SSDLite are float models quantized with the calibration
# table their manifest names (`int8_calibration`, made by `adasd calibrate-int8`).
declare -A PRECISIONS=([ssd_mobilenet_v2_coco_300]="fp16 int8 fp32" [ssdlite_mobilenet_v2_pedestrian_300]="fp16 int8 fp32"
  [nanodet_m_coco_416]="fp16 int8 fp32")
manifest() { [[ $2 == int8 && -f models/${1}_int8.toml ]] && echo "models/${1}_int8.toml" || echo "models/$1.toml"; }

# GPU model, driver and the date, for every table's header line.
nvidia-smi --query-gpu=timestamp,name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

if has tests; then
  echo "== GPU tests"
  step 480 "$OUT/tests.txt" "$BIN/gpu-tests" --ignored --nocapture --test-threads 1
  if [[ -x "$BIN/gpu-tests-cu12" ]]; then
    echo "== GPU tests, CUDA 12.6 bindings (the JetPack 6 build)"
    step 480 "$OUT/tests-cuda12-bindings.txt" "$BIN/gpu-tests-cu12" --ignored --nocapture --test-threads 1
  fi
fi

if has bench; then
  for m in $(selected ssd_mobilenet_v2_coco_300 nanodet_m_coco_416 ssdlite_mobilenet_v2_pedestrian_300); do
    for p in ${PRECISIONS[$m]}; do
      echo "== adasd bench $m $p"
      step 180 "$OUT/bench-$m-$p.txt" "$BIN/adasd" bench --model "$(manifest "$m" "$p")" --backend cuda \
        --precision "$p" --batch "$BATCHES" --iterations "$ITERATIONS" --cache-dir "$WORK/cache" \
        --json "$OUT/bench-$m-$p.json" samples/images/person.jpg
    done
  done
fi

if has peer; then
  if python3 -m pip install --quiet --no-deps --target "$WORK/py" "$WHEELS"/onnx2torch-*.whl; then
    for m in $(selected ssd_mobilenet_v2_coco_300 nanodet_m_coco_416 ssdlite_mobilenet_v2_pedestrian_300); do
      echo "== PyTorch peer $m"
      step 240 "$OUT/peer-$m.txt" env PYTHONPATH="$WORK/py" python3 tests/bench/pytorch_peer.py \
        --onnx "models/$m.onnx" --shape "${SHAPE[$m]}" --batch "$BATCHES" --iterations "$ITERATIONS" \
        --compile-batches "$COMPILE_BATCHES" --compile-timeout 60 --json "$OUT/peer-$m.json"
    done
  else
    status=1
    echo "FAILED: no onnx2torch wheel in $WHEELS (pip download onnx2torch==1.5.15 --no-deps -d $WHEELS): no peer" \
      | tee -a "$OUT/failures.txt"
  fi
fi

if has run; then
  echo "== adasd run on the GPU (sample drive)"
  ADASD_LOG=info step 60 "$OUT/run.txt" "$BIN/adasd" run --config samples/vtest_cuda.toml --out "$OUT/run" --quiet
fi

# COCO mAP inputs for the cuda rows of docs/ACCURACY.md: `adasd eval` per model × precision on
# the COCO mini set ($COCO_MINI, default ../shared/eval/coco_val2017_mini); score them on the
# development machine with tests/eval/coco_map.py beside tests/eval/run.sh's rows.
if has eval; then
  COCO_MINI=${COCO_MINI:-../shared/eval/coco_val2017_mini}
  for m in $(selected ssd_mobilenet_v2_coco_300 nanodet_m_coco_416); do
    for p in ${PRECISIONS[$m]}; do
      name=$(basename "$(manifest "$m" "$p")" .toml)
      echo "== adasd eval $name cuda $p"
      step 90 "$OUT/eval-$name-cuda-$p.txt" "$BIN/adasd" eval --model "$(manifest "$m" "$p")" --backend cuda \
        --precision "$p" --annotations "$COCO_MINI/instances_val2017_mini.json" --images "$COCO_MINI/images" \
        --out "$OUT/eval-$name-cuda-$p.json"
    done
  done
fi

if has report; then
  step 60 "$OUT/summary.md" python3 tests/gpu/report.py "$OUT"
fi
echo "== seconds per step ($OUT/timings.txt)"
cat "$OUT/timings.txt"
echo "== failures ($OUT/failures.txt)"
cat "$OUT/failures.txt"
exit $status
