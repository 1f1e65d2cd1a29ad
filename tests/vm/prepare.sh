#!/usr/bin/env bash
# Fetches what the VM test bed needs onto the host (idempotent):
# - qemu-system-x86 and qemu-utils from bookworm-backports (the base suite's qemu would
#   downgrade a backported qemu-utils),
# - can-utils and iproute2 (copied into the guest with their libraries), busybox-static,
# - Debian's linux-image-amd64 kernel + modules, *downloaded and unpacked* (not installed) into
#   $VM_WORK/kernel,
# - python cantools (decodes the captured frames on the host against our DBC).
set -euo pipefail
VM_WORK=${VM_WORK:-/tmp/adas-vm}
SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive

if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        # deb822: add the suite to the first stanza's Suites: line (the one with `bookworm`).
        $SUDO sed -i '0,/^Suites: bookworm\b/s//Suites: bookworm bookworm-backports/' \
            /etc/apt/sources.list.d/debian.sources
    else
        echo 'deb http://deb.debian.org/debian bookworm-backports main' \
            | $SUDO tee /etc/apt/sources.list.d/backports.list >/dev/null
    fi
    APT_UPDATED=""
fi
need=()
for p in busybox-static can-utils iproute2 cpio; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
# qemu-img (the service VM's overlay) is in qemu-utils, taken from the same suite.
need_qemu=""
command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null || need_qemu=1
if ((${#need[@]})) || [[ -n $need_qemu || ! -d $VM_WORK/kernel/boot ]]; then
    $SUDO apt-get update -qq
fi
if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${need[@]}" >/dev/null
fi
if [[ -n $need_qemu ]]; then
    # -t: take qemu-system-x86 *and its qemu-* dependencies* from backports, matching qemu-utils.
    echo "installing: qemu-system-x86 qemu-utils (bookworm-backports)"
    $SUDO apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 \
        -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
fi

mkdir -p "$VM_WORK"
if [[ ! -d $VM_WORK/kernel/boot ]]; then
    (
        cd "$VM_WORK"
        rm -rf debs && mkdir debs && cd debs
        # linux-image-amd64 is a metapackage: resolve the real image package it depends on.
        real=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
        echo "kernel package: $real"
        apt-get download -qq "$real"
        rm -rf ../kernel && mkdir ../kernel
        dpkg-deb -x ./*.deb ../kernel
    )
fi
python3 -c 'import cantools' 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "cantools==45.*" \
    || python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --break-system-packages "cantools==45.*"
echo "vm prerequisites ready in $VM_WORK"
