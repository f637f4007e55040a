#!/usr/bin/env bash
# Show which of the local cluster's daemons run, and the nodes as Slurm sees them.
# Exit status 0 only when every daemon runs.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

all_up=0
show() {
    local name=$1 file=$2
    if pid_alive "$file"; then
        printf '%-16s running (pid %s)\n' "$name" "$(<"$file")"
    else
        printf '%-16s stopped\n' "$name"
        all_up=1
    fi
}
show munged "$MUNGED_PID"
show mariadb "$MARIADB_PID"
show slurmdbd "$RUN_DIR/slurmdbd.pid"
show slurmctld "$RUN_DIR/slurmctld.pid"
for node in "${NODES[@]}"; do show "slurmd $node" "$RUN_DIR/slurmd-$node.pid"; done
if ((all_up == 0)); then
    sinfo --Node --format='%N %P %t %c %G' || all_up=1
fi
exit "$all_up"
