#!/usr/bin/env bash
# Stop everything up.sh started, by pid, in reverse order (jobs' state is saved by slurmctld).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

log "=== down.sh"
stop_slurmds
stop_slurmctld
stop_by_pidfile "$RUN_DIR/slurmdbd.pid"
stop_by_pidfile "$MARIADB_PID" 60
stop_by_pidfile "$MUNGED_PID"
say "stopped"
