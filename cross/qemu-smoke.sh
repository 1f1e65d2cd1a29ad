#!/usr/bin/env bash
# Run the cross-built aarch64 `adasd` under qemu-user (no Jetson needed):
#   1. `adasd --version`
#   2. `adasd detect --model models/ssdlite_mobilenet_v2_pedestrian_300.toml --json samples/images/person.jpg`
#      must print JSON with at least one detection whose "class" is "pedestrian".
#
# Usage: cross/qemu-smoke.sh [path/to/aarch64/adasd]
# Needs (Debian): qemu-user-static, libc6-arm64-cross (the aarch64 glibc + loader used via -L).
# Environment (optional):
#   CARGO_TARGET_DIR   where cross/build-aarch64.sh built (default: <repo>/target)
#   ADAS_QEMU_CPU      CPU model for qemu (default cortex-a76: ARMv8.2 + fp16 + dotprod and no SVE,
#                      the closest qemu-user model to Jetson Orin's Cortex-A78AE; "max" enables
#                      everything qemu can emulate, SVE included)
#   ADAS_QEMU_SYSROOT  aarch64 sysroot (default /usr/aarch64-linux-gnu)
#   ADAS_SMOKE_TIMEOUT seconds allowed per command (default 900)
set -euo pipefail

cd "$(dirname "$0")/.."

TRIPLE=aarch64-unknown-linux-gnu
SYSROOT=${ADAS_QEMU_SYSROOT:-/usr/aarch64-linux-gnu}
QEMU_CPU_MODEL=${ADAS_QEMU_CPU:-cortex-a76}
TIMEOUT=${ADAS_SMOKE_TIMEOUT:-900}
MODEL=models/ssdlite_mobilenet_v2_pedestrian_300.toml
IMAGE=samples/images/person.jpg

log() { printf '[qemu-smoke] %s\n' "$*" >&2; }
die() { printf '[qemu-smoke] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ $# -ge 1 ]]; then
    BIN=$1
else
    TARGET_DIR=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null \
        || echo target)}
    BIN=$TARGET_DIR/$TRIPLE/release/adasd
fi
[[ -f "$BIN" ]] || die "no binary at $BIN: run cross/build-aarch64.sh first"
command -v qemu-aarch64-static >/dev/null 2>&1 \
    || die "qemu-aarch64-static missing: apt-get install qemu-user-static"
[[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ]] \
    || die "no aarch64 loader under $SYSROOT: apt-get install libc6-arm64-cross"

run_aarch64() {
    timeout "$TIMEOUT" qemu-aarch64-static -L "$SYSROOT" -cpu "$QEMU_CPU_MODEL" "$BIN" "$@"
}

log "qemu: $(qemu-aarch64-static --version | head -n1), cpu $QEMU_CPU_MODEL, sysroot $SYSROOT"
log "binary: $BIN"

# --- 1. --version ----------------------------------------------------------------------------------
version=$(run_aarch64 --version) || die "adasd --version failed (exit $?)"
[[ -n "$version" ]] || die "adasd --version printed nothing"
log "adasd --version: $version"

# --- 2. detect on a sample image -------------------------------------------------------------------
[[ -f "$MODEL" ]] || die "missing $MODEL"
[[ -f "$IMAGE" ]] || die "missing $IMAGE"
log "adasd detect --model $MODEL --json $IMAGE"
start=$(date +%s)
out=$(run_aarch64 detect --model "$MODEL" --json "$IMAGE") || die "adasd detect failed (exit $?)"
log "detect took $(($(date +%s) - start)) s under qemu"
printf '%s\n' "$out"

# Any JSON line, any nesting: look for an object with "class": "pedestrian".
SMOKE_OUT=$out python3 - <<'EOF' || die 'no detection with "class":"pedestrian" in the JSON output'
import json, os, sys

def has_pedestrian(v):
    if isinstance(v, dict):
        if v.get("class") == "pedestrian":
            return True
        return any(has_pedestrian(x) for x in v.values())
    if isinstance(v, list):
        return any(has_pedestrian(x) for x in v)
    return False

parsed = 0
for line in os.environ["SMOKE_OUT"].splitlines():
    line = line.strip()
    if not line.startswith(("{", "[")):
        continue
    try:
        doc = json.loads(line)
    except json.JSONDecodeError:
        continue
    parsed += 1
    if has_pedestrian(doc):
        print("[qemu-smoke] found a pedestrian detection", file=sys.stderr)
        sys.exit(0)
print(f"[qemu-smoke] {parsed} JSON line(s) parsed, none with a pedestrian detection", file=sys.stderr)
sys.exit(1)
EOF

# --- 3. the cuda backend without NVIDIA libraries: a clear error, not a crash ----------------------
# Only when the binary has the backend (CI builds with --features cuda); qemu has no GPU or driver.
if run_aarch64 detect --help 2>/dev/null | grep -q "cuda:"; then
    log "adasd detect --backend cuda (no driver under qemu: expect exit 1 and a clear error)"
    set +e
    err=$(run_aarch64 detect --backend cuda --model "$MODEL" --json "$IMAGE" 2>&1 >/dev/null)
    code=$?
    set -e
    printf '%s\n' "$err" | tail -n 3 >&2
    [[ $code == 1 ]] || die "adasd detect --backend cuda: exit $code, expected 1"
    [[ $err == *"cannot load"* && $err != *panicked* ]] || die "adasd detect --backend cuda: unclear error: $err"
fi
log "OK"
