#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/ui), idempotently: when it is there
# this only checks. Playwright drives this browser; its own browser downloads are never used.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    echo "chromium: ok ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "chromium.sh: run as root to apt-get install chromium" >&2; exit 1; }
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update && apt-get install -y --no-install-recommends chromium; } >"$log" 2>&1; then
    tail -20 "$log" >&2
    echo "chromium.sh: apt-get install chromium failed" >&2
    exit 1
fi
rm -f "$log"
echo "chromium: installed ($((SECONDS - start)) s)"
