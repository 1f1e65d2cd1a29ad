#!/usr/bin/env bash
# CI's fuzz smoke run, on the stable toolchain alone: builds every fuzz target once, as
# `cargo fuzz build -a --sanitizer none` would (libFuzzer with coverage instrumentation, debug
# assertions and overflow checks on), then runs each for FUZZ_SECONDS (15) from its committed
# corpus, as many at a time as there are cores (FUZZ_JOBS). Fails if any target crashes, hangs
# (> 10 s on one input) or runs out of memory; the input that did it is left in
# fuzz/artifacts/<target>/. New inputs go to a scratch folder, so the committed corpus is not
# changed.
#
# No cargo-fuzz or nightly needed: the flags below are those of cargo-fuzz 0.13 (src/project.rs)
# for `cargo fuzz build -a -s none`, and the binaries land where it puts them, so both tools share
# the corpus, and the build when they use the same toolchain. FUZZ_FEATURES=config
# adds the `config` target (builds adasd and the detector stack), FUZZ_FEATURES=video
# `read_video` (builds OpenH264 from source); both: FUZZ_FEATURES=config,video.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-15}
triple=$(rustc -vV | sed -n 's/^host: //p')
targets=(manifest calibration candump can_input timestamps camera_frame read_recording)
features=()
for f in config video; do
    if [[ ,${FUZZ_FEATURES:-}, == *,$f,* ]]; then
        features+=(--features "$f")
        case $f in config) targets+=(config) ;; video) targets+=(read_video) ;; esac
    fi
done

flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    -Cllvm-args=-sanitizer-coverage-stack-depth
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    "--cfg fuzzing"
    -Cdebug-assertions
    -Ccodegen-units=1
)
# --target keeps these flags away from build scripts and proc macros, as cargo-fuzz does.
RUSTFLAGS="${flags[*]}" cargo build --release --locked --target "$triple" \
    --config 'profile.release.debug="line-tables-only"' "${features[@]}" --bins
bin="${CARGO_TARGET_DIR:-target}/$triple/release"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# One target per core at a time: each libFuzzer run is single-threaded, so running them side by
# side gives every target the same executions as running them one after another.
parallel=${FUZZ_JOBS:-$(nproc)}
run_target() {
    local t=$1 rc=0
    mkdir -p "$scratch/$t" "artifacts/$t"
    "$bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 "$scratch/$t" "corpus/$t" \
        2>"$scratch/$t.log" || rc=$?
    echo "$rc" >"$scratch/$t.rc"
}
for t in "${targets[@]}"; do
    while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
    run_target "$t" &
done
wait
failed=()
for t in "${targets[@]}"; do
    echo "=== $t: ${seconds} s from corpus/$t ($(find "corpus/$t" -type f | wc -l) inputs)"
    if [[ $(cat "$scratch/$t.rc") != 0 ]]; then
        failed+=("$t")
        tail -n 60 "$scratch/$t.log"
    fi
    grep -E '^(#[0-9]+ +DONE|stat::(number_of_executed_units|average_exec_per_sec))' \
        "$scratch/$t.log" | awk '!seen[$0]++' || true
done
if ((${#failed[@]})); then
    echo "fuzz targets that failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "all ${#targets[@]} fuzz targets ran ${seconds} s without a crash ($parallel at a time)"
