#!/usr/bin/env bash
# Fleet replay on a real local Ray cluster (issue 26; docs/FLEET.md). Installs the pinned Ray
# into a venv, unit-tests the driver, generates a fleet from the scenario suite (two seeds of
# every variant, as recordings) and the real sample (samples/vtest.mcap against its committed
# reference), some drives deliberately changed, then on a Ray head plus a second worker node:
#   1. the clean fleet on the head alone (1 worker) and on both nodes (2 workers): all SAME,
#      exit 0, both wall times printed;
#   2. the fleet with the changed drives while the worker running one replay is SIGKILLed: the
#      report must name exactly the changed drives (DIFFERENT / DAMAGED / FAILED, with the field
#      of their first difference), the killed drive must have been retried and be SAME, and the
#      driver must exit 1.
# The cluster is stopped on every exit. Run from the repository root after the release build
# (ADASD, default target/release/adasd) and the test build (SCENARIO, default
# target/debug/scenario). Everything stays on this machine (127.0.0.1); usage stats are off.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

ADASD=${ADASD:-target/release/adasd}
SCENARIO=${SCENARIO:-target/debug/scenario}
VENV=${FLEET_VENV:-/tmp/adas-fleet-venv}
PORT=${FLEET_RAY_PORT:-6390}
ADDRESS=127.0.0.1:$PORT
WORK=$(mktemp -d /tmp/adas-fleet.XXXXXX)
export RAY_USAGE_STATS_ENABLED=0

step() { printf '\n--- [fleet t+%ds] %s\n' "$SECONDS" "$*"; }

cleanup() {
    local rc=$?
    [[ -x "$VENV/bin/ray" ]] && "$VENV/bin/ray" stop --force >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

[[ -x "$ADASD" ]] || cargo build --release -p adasd
[[ -x "$SCENARIO" ]] || cargo build -p adas-system-tests --bin scenario

step "pip: Ray (tools/fleet/requirements.txt) into $VENV"
t0=$SECONDS
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r tools/fleet/requirements.txt
echo "installed in $((SECONDS - t0)) s; the venv takes $(du -sm "$VENV" | cut -f1) MB"
PY=$VENV/bin/python
RAY=$VENV/bin/ray

step "driver unit tests (pytest); the KubeRay RayJob manifest against its schemas"
"$PY" -m pytest -q -p no:cacheprovider tools/fleet/tests
"$PY" tools/fleet/kuberay/validate.py tools/fleet/rayjob.yaml

# The "shared file system" every node mounts: the binary, recordings, references, outputs.
SHARED=$WORK/shared
SIM=$SHARED/sim
REFS=$SHARED/refs
mkdir -p "$SHARED/bin" "$REFS" "$SHARED/special"
cp "$ADASD" "$SHARED/bin/adasd"
ADASD=$SHARED/bin/adasd

step "fleet: the scenario suite as recordings (2 seeds per variant) and their references"
"$SCENARIO" run tests/scenarios/*.toml --seeds 2 --record-seeds 2 --out "$WORK/scenarios" --record "$SIM" \
    > "$WORK/scenarios.log"
tail -n 1 "$WORK/scenarios.log"
# The references: what the baseline build (here the same build) decides on each recording.
for rec in "$SIM"/*.mcap; do
    "$ADASD" replay "$rec" --recorded-detections --out "$WORK/baseline" > /dev/null
    cp "$WORK/baseline/replay.mcap" "$REFS/$(basename "$rec")"
done
SIM_DRIVES=$(ls "$SIM"/*.mcap | wc -l)
echo "$SIM_DRIVES simulated drives with references"

step "fleet: the deliberately changed drives"
# A candidate detector threshold on the real sample: detections lost.
sed -e "s|\"\.\./models/|\"$ROOT/models/|" -e "s|\"vtest_calibration.toml\"|\"$ROOT/samples/vtest_calibration.toml\"|" \
    -e 's|^backend = "tract"|backend = "tract"\nscore_threshold = 0.6|' samples/vtest.toml > "$SHARED/vtest-threshold.toml"
grep -q "score_threshold = 0.6" "$SHARED/vtest-threshold.toml"
# A candidate decider that warns later (fcw_lead_s 1.2 → 0.6 s): stage changes move.
cp "$SIM/sim.adasd.toml" "$SIM/candidate-fcw-lead.toml"
printf '\n[aeb]\nfcw_lead_s = 0.6\n' >> "$SIM/candidate-fcw-lead.toml"
# A recording with one byte flipped in the middle: read past, reported DAMAGED.
python3 - "$SIM/ccrm_40_km_h.mcap" "$SHARED/special/ccrm_40.damaged.mcap" <<'EOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[len(data) // 2] ^= 0xFF
open(sys.argv[2], "wb").write(data)
EOF
cp "$SIM/sim.adasd.toml" "$SIM/sim_calibration.toml" "$SHARED/special/"

cat > "$SHARED/clean.toml" <<EOF
# The fleet as recorded: every drive must replay the SAME as its reference.
[[drive]]
name = "vtest"
recording = "$ROOT/samples/vtest.mcap"
reference = "$ROOT/samples/vtest.reference.mcap"

[[folder]]
recordings = "sim"
references = "refs"
recorded_detections = true
EOF
cat > "$SHARED/changed.toml" <<EOF
# The fleet with deliberately changed drives that the report must find.
[defaults]
recorded_detections = true

[[drive]]
name = "vtest"
recording = "$ROOT/samples/vtest.mcap"
reference = "$ROOT/samples/vtest.reference.mcap"
recorded_detections = false

[[drive]]
name = "vtest-threshold-0.6"
recording = "$ROOT/samples/vtest.mcap"
reference = "$ROOT/samples/vtest.reference.mcap"
config = "vtest-threshold.toml"
recorded_detections = false

[[drive]]
name = "ccrm_50-fcw-lead-0.6"
recording = "sim/ccrm_50_km_h.mcap"
reference = "refs/ccrm_50_km_h.mcap"
config = "sim/candidate-fcw-lead.toml"

[[drive]]
name = "swapped-ccrs_100_20-vs-ccrm_30"
recording = "sim/ccrs_100_20_km_h.mcap"
reference = "refs/ccrm_30_km_h.mcap"

[[drive]]
name = "swapped-ccrm_30-vs-ccrs_100_20"
recording = "sim/ccrm_30_km_h.mcap"
reference = "refs/ccrs_100_20_km_h.mcap"

[[drive]]
name = "damaged-ccrm_40"
recording = "special/ccrm_40.damaged.mcap"
reference = "refs/ccrm_40_km_h.mcap"

[[drive]]
name = "missing-reference"
recording = "sim/ccrm_60_km_h.mcap"
reference = "refs/no-such-reference.mcap"

[[folder]]
recordings = "sim"
references = "refs"
EOF
CLEAN_DRIVES=$((SIM_DRIVES + 1))
CHANGED_DRIVES=$((SIM_DRIVES + 7))

fleet() { "$PY" tools/fleet/fleet.py "$@" --adasd "$ADASD" --address "$ADDRESS"; }

step "Ray: head node (1 CPU) on $ADDRESS"
"$RAY" start --head --node-ip-address 127.0.0.1 --port "$PORT" --num-cpus 1 --include-dashboard false \
    --disable-usage-stats > "$WORK/ray-head.log" 2>&1 || { cat "$WORK/ray-head.log"; exit 1; }

step "clean fleet, 1 worker: $CLEAN_DRIVES drives"
t0=$(date +%s.%N)
fleet "$SHARED/clean.toml" --out "$SHARED/out-1" > "$WORK/clean-1.txt"
t1=$(date +%s.%N)
head -n 2 "$WORK/clean-1.txt"

step "Ray: a second worker node (1 CPU) joins"
"$RAY" start --address "$ADDRESS" --node-ip-address 127.0.0.1 --num-cpus 1 --disable-usage-stats \
    > "$WORK/ray-worker.log" 2>&1 || { cat "$WORK/ray-worker.log"; exit 1; }

step "clean fleet, 2 workers: $CLEAN_DRIVES drives"
t2=$(date +%s.%N)
fleet "$SHARED/clean.toml" --out "$SHARED/out-2" > "$WORK/clean-2.txt"
t3=$(date +%s.%N)
head -n 2 "$WORK/clean-2.txt"
"$PY" -c "import json, sys; r = json.load(open(sys.argv[1])); n = {d['node'] for d in r['drives']}; \
assert r['passed'] and r['cluster']['nodes'] == 2 and len(n) == 2, (r['counts'], n); print('both nodes replayed:', sorted(n))" \
    "$SHARED/out-2/report.json"
python3 -c "import sys; a, b = float(sys.argv[2]) - float(sys.argv[1]), float(sys.argv[4]) - float(sys.argv[3]); \
print(f'wall time of the clean fleet ($CLEAN_DRIVES drives, driver start included): 1 worker {a:.1f} s, 2 workers {b:.1f} s: {a / b:.2f}x')" \
    "$t0" "$t1" "$t2" "$t3"

step "changed fleet, 2 workers, the worker running drive 'vtest' killed mid-run: $CHANGED_DRIVES drives"
set +e
fleet "$SHARED/changed.toml" --out "$SHARED/out-changed" > "$WORK/changed.txt" 2> "$WORK/changed.log" &
driver=$!
"$PY" tests/fleet/kill_worker.py vtest --after 1.0
killed=$?
wait "$driver"
rc=$?
set -e
cat "$WORK/changed.txt"
[[ $killed -eq 0 ]] || { cat "$WORK/changed.log"; exit 1; }
[[ $rc -eq 1 ]] || { echo "the fleet driver exited $rc, expected 1 (regressions found)"; cat "$WORK/changed.log"; exit 1; }
"$PY" tests/fleet/check_report.py "$SHARED/out-changed/report.json" --drives "$CHANGED_DRIVES" \
    --expect vtest-threshold-0.6=DIFFERENT:detections \
    --expect ccrm_50-fcw-lead-0.6=DIFFERENT:stage \
    --expect swapped-ccrs_100_20-vs-ccrm_30=DIFFERENT \
    --expect swapped-ccrm_30-vs-ccrs_100_20=DIFFERENT \
    --expect damaged-ccrm_40=DAMAGED \
    --expect missing-reference=FAILED \
    --retried vtest

step "cost per drive (2 workers, clean fleet)"
"$PY" -c "import json, sys; c = json.load(open(sys.argv[1]))['cost']; \
print(f\"{c['drives_replayed']} drives, {c['data_s']:.0f} s of data replayed in {c['replay_s']:.1f} s of adasd \
({c['realtime_factor']:.0f}x real time); {c['task_s_per_drive'] * 1000:.0f} ms per task; {c['drives_per_s']:.1f} drives/s\")" \
    "$SHARED/out-2/report.json"
echo "fleet CI checks passed"
