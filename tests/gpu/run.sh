#!/usr/bin/env bash
# The GPU test + benchmark run, on the GPU test machine (NVIDIA driver, CUDA 13, cuDNN 9, PyTorch):
#   1. the GPU tests (kernels vs their CPU twins, engine vs tract, detections vs the CPU pipeline,
#      determinism, plan cache), 2. `adasd bench` sweeps (FP32/FP16, batch 1…64) for both models,
#   3. the PyTorch peer on the same ONNX weights, 4. `adasd run` end to end on the sample drive,
#   5. `adasd eval` on the COCO mini set (cuda mAP rows), 6. tables + plots
#   (tests/gpu/report.py). Everything lands in $OUT (default out/gpu).
# The bench gives two figures per batch: the whole frame (`latency_ms`: host copy into the pinned
# buffer → upload → preprocess → network → decode → NMS → download) and the network alone
# (`network_ms`: input already on the GPU, outputs left there), which is what the peer times; the
# report compares both with the peer.
#
# Binaries come prebuilt (the GPU machine has no Rust): on the development machine
#   cargo build --release -p adasd --features cuda
#   cargo test --release -p adas-detect --features cuda --test gpu --no-run
# and copy target/release/adasd and the gpu test binary into $BIN (default target/gpu-bin) as
# `adasd` and `gpu-tests`. onnx2torch (pure Python, from the package index) goes in $WHEELS.
# Optional: the same tests built with the JetPack 6 bindings (CUDARC_CUDA_VERSION=12060 cargo
# test ... --no-run) as `gpu-tests-cu12`, run after the others.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BIN=${BIN:-target/gpu-bin}
OUT=${OUT:-out/gpu}
WHEELS=${WHEELS:-$BIN}
STEPS=${STEPS:-tests,bench,peer,run,eval,report}
mkdir -p "$OUT"
# Binaries may come gzip-compressed (the copy to the GPU machine is size-limited).
for z in "$BIN"/*.gz; do [[ -e "$z" ]] && gunzip -f "$z" && chmod +x "${z%.gz}"; done
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
export ADAS_REPO_ROOT=$PWD
status=0
has() { [[ ",$STEPS," == *",$1,"* ]]; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

if has tests; then
  echo "== GPU tests"
  "$BIN/gpu-tests" --ignored --nocapture --test-threads 1 2>&1 | tee "$OUT/tests.txt" || status=1
  if [[ -x "$BIN/gpu-tests-cu12" ]]; then
    echo "== GPU tests, CUDA 12.6 bindings (the JetPack 6 build)"
    "$BIN/gpu-tests-cu12" --ignored --nocapture --test-threads 1 2>&1 | tee "$OUT/tests-cuda12-bindings.txt" || status=1
  fi
fi

declare -A SHAPE=([ssdlite_mobilenet_v2_pedestrian_300]="1,300,300,3" [nanodet_m_coco_416]="1,3,416,416")
if has bench; then
  for m in ssdlite_mobilenet_v2_pedestrian_300 nanodet_m_coco_416; do
    for p in fp16 fp32; do
      echo "== adasd bench $m $p"
      "$BIN/adasd" bench --model "models/$m.toml" --backend cuda --precision "$p" \
        --batch "${BATCHES:-1,2,4,8,16,32,64}" --iterations "${ITERATIONS:-50}" --cache-dir "$OUT/cache" \
        --json "$OUT/bench-$m-$p.json" samples/images/person.jpg 2>&1 | tee "$OUT/bench-$m-$p.txt" || status=1
    done
  done
fi

if has peer; then
  python3 -m pip install --quiet --no-deps --target "$OUT/py" "$WHEELS"/onnx2torch-*.whl || status=1
  for m in ssdlite_mobilenet_v2_pedestrian_300 nanodet_m_coco_416; do
    echo "== PyTorch peer $m"
    PYTHONPATH="$OUT/py" python3 tests/bench/pytorch_peer.py --onnx "models/$m.onnx" --shape "${SHAPE[$m]}" \
      --batch "${BATCHES:-1,2,4,8,16,32,64}" --iterations "${ITERATIONS:-50}" --json "$OUT/peer-$m.json" \
      2>&1 | grep -v Warning | tee "$OUT/peer-$m.txt" || status=1
  done
fi

if has run; then
  echo "== adasd run on the GPU (sample drive)"
  ADASD_LOG=info "$BIN/adasd" run --config samples/vtest_cuda.toml --out "$OUT/run" --quiet 2>&1 | tail -20 | tee "$OUT/run.txt" || status=1
fi

# COCO mAP inputs for the cuda rows of docs/ACCURACY.md: `adasd eval` per model × precision on
# the COCO mini set ($COCO_MINI, default ../shared/eval/coco_val2017_mini); score them on the
# development machine with tests/eval/coco_map.py beside tests/eval/run.sh's rows.
if has eval; then
  COCO_MINI=${COCO_MINI:-../shared/eval/coco_val2017_mini}
  for m in ssd_mobilenet_v2_coco_300 nanodet_m_coco_416; do
    for p in fp32 fp16; do
      echo "== adasd eval $m cuda $p"
      "$BIN/adasd" eval --model "models/$m.toml" --backend cuda --precision "$p" \
        --annotations "$COCO_MINI/instances_val2017_mini.json" --images "$COCO_MINI/images" \
        --out "$OUT/eval-$m-cuda-$p.json" 2>&1 | tail -3 || status=1
    done
  done
fi

if has report; then
  python3 tests/gpu/report.py "$OUT" | tee "$OUT/summary.md" || status=1
fi
exit $status
