#!/usr/bin/env bash
# Checks systemd/adasd.service: `systemd-analyze verify` clean and `systemd-analyze security`
# exposure ≤ 2.0. ExecStart= points at /usr/bin/adasd, which a build machine does not have, so the
# check runs on a copy whose ExecStart= names the freshly built binary ($1, default target/debug/adasd).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/debug/adasd}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#^ExecStart=/usr/bin/adasd#ExecStart=$bin#" systemd/adasd.service >"$tmp/adasd.service"
out=$(systemd-analyze verify --man=no "$tmp/adasd.service" 2>&1 || true)
if [[ -n $out ]]; then
    echo "systemd-analyze verify: $out"
    exit 1
fi
echo "systemd-analyze verify: clean"
exposure=$(systemd-analyze security --offline=yes "$tmp/adasd.service" 2>&1 \
    | sed -n 's/.*Overall exposure level for adasd.service: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security: exposure $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' || {
    echo "exposure above 2.0"
    exit 1
}
