#!/usr/bin/env bash
# Everything CI needs from Debian after the quick start, in one go: `.ci/run` starts this in the
# background right after the quick start and waits for it before the first step that needs it, so
# the downloads and dpkg runs overlap the checks that need nothing (fmt, clippy, soak, MCAP, fuzz,
# fleet) instead of adding to CI's wall clock. Idempotent: on a machine that has it all, it only
# checks. The scripts that use these packages keep their own idempotent installs, so they also run
# alone on a developer's machine.
# Usage: bash .ci/system.sh   (PROMTOOL_DIR, default /tmp/adas-promtool; VM_WORK as tests/vm)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi
PROMTOOL_DIR=${PROMTOOL_DIR:-/tmp/adas-promtool}
VM_WORK=${VM_WORK:-/tmp/adas-vm}
t0=$SECONDS
step() { printf -- '--- [+%ds] %s\n' "$((SECONDS - t0))" "$*"; }

PACKAGES=(
    qemu-user-static           # qemu-aarch64-static for cross/qemu-smoke.sh
    libc6-arm64-cross          # aarch64 glibc + loader under /usr/aarch64-linux-gnu (qemu -L)
    binutils-aarch64-linux-gnu # aarch64-linux-gnu-objdump for the glibc check (plain objdump works too)
    libopencv-dev clang libclang-dev   # adas-calibration --features opencv (bindings made at build time)
    systemd                    # systemd-analyze for systemd/check.sh
    mmdebstrap                 # the service VM's Debian 12 image (tests/vm/service/image.sh)
)
step "Debian packages: ${PACKAGES[*]}"
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
else
    echo "all present"
fi

# Only promtool, out of Debian's prometheus package (19 MB): installing the package would pull its
# web UI's JavaScript libraries and start a Prometheus server.
step "promtool (from Debian's prometheus package, unpacked into $PROMTOOL_DIR)"
if [[ ! -x $PROMTOOL_DIR/root/usr/bin/promtool ]]; then
    rm -rf "$PROMTOOL_DIR" && mkdir -p "$PROMTOOL_DIR"
    (cd "$PROMTOOL_DIR" && { apt-get download -qq prometheus 2>/dev/null \
        || { $SUDO apt-get update -qq && apt-get download -qq prometheus; }; })
    dpkg-deb -x "$PROMTOOL_DIR"/prometheus_*.deb "$PROMTOOL_DIR/root"
fi
"$PROMTOOL_DIR/root/usr/bin/promtool" --version 2>&1 | head -1

step "VM test bed: qemu and qemu-img (bookworm-backports), can-utils, busybox, the stock kernel (tests/vm/prepare.sh)"
bash tests/vm/prepare.sh

step "service VM image (tests/vm/service/image.sh)"
KDIR=$(ls -d "$VM_WORK"/kernel/lib/modules/*/ | head -1)
bash tests/vm/service/image.sh "${KDIR%/}" "$VM_WORK/service"
step "done"
