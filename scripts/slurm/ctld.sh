#!/usr/bin/env bash
# Stop or start only slurmctld, exactly as up.sh starts it: tests use this to make the
# controller unreachable for a moment and bring it back.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case "${1:-}" in
stop) stop_slurmctld ;;
start)
    start_slurmctld
    wait_nodes_registered
    ;;
*)
    echo "usage: $0 stop|start" >&2
    exit 2
    ;;
esac
