#!/usr/bin/env bash
# Cross-compile the `adasd` package for NVIDIA Jetson (JetPack 6: Ubuntu 22.04, aarch64, glibc 2.35)
# with cargo-zigbuild, then prove the binary needs no glibc symbol newer than 2.35.
#
# Usage: cross/build-aarch64.sh [extra cargo args...]
# Environment (all optional):
#   CARGO_TARGET_DIR   where cargo builds (default: <repo>/target)
#   ADAS_GLIBC_MAX     highest glibc the target has (default 2.35 = JetPack 6 / Ubuntu 22.04)
#   ADAS_CROSS_PKG     package to build (default adasd); ADAS_CROSS_BIN binary name (default = pkg)
#   ADAS_CROSS_MANIFEST  Cargo.toml to build from (default: the workspace's)
#   CARGO_ZIGBUILD_PIP pip requirement used when cargo-zigbuild is missing
#   CUDARC_CUDA_VERSION CUDA driver API of the cuda backend's bindings (default 12060 = JetPack 6's
#                      CUDA 12.6; the workspace default, 13000, calls entry points its driver lacks)
# Prints the binary's path on the last line of stdout.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO_ROOT=$(pwd)

TRIPLE=aarch64-unknown-linux-gnu
GLIBC_MAX=${ADAS_GLIBC_MAX:-2.35}
PKG=${ADAS_CROSS_PKG:-adasd}
BIN=${ADAS_CROSS_BIN:-$PKG}
MANIFEST=${ADAS_CROSS_MANIFEST:-$REPO_ROOT/Cargo.toml}
# Pinned so that a new zig release cannot break CI unannounced; bump both together on purpose.
CARGO_ZIGBUILD_PIP=${CARGO_ZIGBUILD_PIP:-"cargo-zigbuild==0.24.0 ziglang==0.17.0"}

log() { printf '[build-aarch64] %s\n' "$*" >&2; }
die() { printf '[build-aarch64] ERROR: %s\n' "$*" >&2; exit 1; }

# --- cargo-zigbuild (+ zig from the `ziglang` wheel) -------------------------------------------
# pip puts console scripts (cargo-zigbuild is shipped as one) into the interpreter's scripts dir,
# which is not always on PATH (pyenv shims, --user installs): add it.
PY_SCRIPTS=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
PY_USER_SCRIPTS=$(python3 -c 'import os, site; print(os.path.join(site.getuserbase(), "bin"))' 2>/dev/null || true)
export PATH="$PATH${PY_SCRIPTS:+:$PY_SCRIPTS}${PY_USER_SCRIPTS:+:$PY_USER_SCRIPTS}"

if ! command -v cargo-zigbuild >/dev/null 2>&1 || ! { command -v zig >/dev/null 2>&1 || python3 -m ziglang version >/dev/null 2>&1; }; then
    log "installing from PyPI: $CARGO_ZIGBUILD_PIP"
    # shellcheck disable=SC2086 # word splitting of the requirement list is intended
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore $CARGO_ZIGBUILD_PIP \
        || python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
            --break-system-packages $CARGO_ZIGBUILD_PIP
    hash -r
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
fi
command -v cargo-zigbuild >/dev/null 2>&1 || die "cargo-zigbuild not on PATH after pip install"
log "$(cargo-zigbuild --version), zig $(zig version 2>/dev/null || python3 -m ziglang version)"

# --- Rust target -------------------------------------------------------------------------------
if ! rustup target list --installed | grep -qx "$TRIPLE"; then
    log "rustup target add $TRIPLE"
    rustup target add "$TRIPLE"
fi

# --- build ---------------------------------------------------------------------------------------
# Only read when the cuda feature is on (`cross/build-aarch64.sh --features cuda`, as CI does).
export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-12060}
# The `.2.35` suffix makes zig link against glibc 2.35 symbol versions; the output still goes to
# <target-dir>/aarch64-unknown-linux-gnu/release/.
log "cargo zigbuild --release -p $PKG --target $TRIPLE.$GLIBC_MAX $*"
cargo zigbuild --manifest-path "$MANIFEST" --release -p "$PKG" --target "$TRIPLE.$GLIBC_MAX" "$@"

if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    TARGET_DIR=$CARGO_TARGET_DIR
else
    TARGET_DIR=$(cargo metadata --manifest-path "$MANIFEST" --format-version 1 --no-deps \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
fi
BIN_PATH=$TARGET_DIR/$TRIPLE/release/$BIN
[[ -f "$BIN_PATH" ]] || die "binary not found at $BIN_PATH"

# --- checks ----------------------------------------------------------------------------------------
# ELF e_machine (2 bytes at offset 18, little endian) must be 183 = EM_AARCH64.
machine=$(od -An -t u2 -j 18 -N 2 "$BIN_PATH" | tr -d ' ')
[[ "$machine" == 183 ]] || die "$BIN_PATH is not an aarch64 ELF (e_machine=$machine)"

# Debian's plain x86_64 objdump reads the aarch64 dynamic symbol table too (as generic
# elf64-little); binutils-aarch64-linux-gnu's objdump is preferred when installed.
if command -v aarch64-linux-gnu-objdump >/dev/null 2>&1; then
    OBJDUMP=aarch64-linux-gnu-objdump
elif command -v objdump >/dev/null 2>&1; then
    OBJDUMP=objdump
else
    die "no objdump: apt-get install binutils (or binutils-aarch64-linux-gnu)"
fi

versions=$("$OBJDUMP" -T "$BIN_PATH" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/^GLIBC_//' | sort -uV)
[[ -n "$versions" ]] || die "no GLIBC_* symbol versions found in $BIN_PATH (is it dynamically linked against glibc?)"
highest=$(tail -n1 <<<"$versions")
log "glibc symbol versions used: $(tr '\n' ' ' <<<"$versions")"
if [[ "$(printf '%s\n%s\n' "$highest" "$GLIBC_MAX" | sort -V | tail -n1)" != "$GLIBC_MAX" ]]; then
    log "symbols needing GLIBC_$highest:"
    "$OBJDUMP" -T "$BIN_PATH" | grep -F "GLIBC_$highest" >&2 || true
    die "$BIN_PATH needs glibc $highest > $GLIBC_MAX (JetPack 6 / Ubuntu 22.04 ships 2.35)"
fi
log "highest glibc symbol version: $highest (<= $GLIBC_MAX): OK"
log "shared libraries needed: $("$OBJDUMP" -p "$BIN_PATH" | awk '/NEEDED/ {printf "%s ", $2}')"

size=$(stat -c %s "$BIN_PATH")
log "binary: $BIN_PATH ($size bytes, $(numfmt --to=iec-i --suffix=B "$size"))"
echo "$BIN_PATH"
