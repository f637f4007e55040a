# Shared settings and helpers for up.sh, down.sh, status.sh and ctld.sh (sourced, not run).
# shellcheck shell=bash

SLURM_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLUSTER=vecinf
CTLD_PORT=6817
DBD_PORT=6819
NODE1_PORT=17001
NODE2_PORT=17002
NODES=(node1 node2)
DB_USER=slurm
DB_NAME=slurm_acct_db

STATE_DIR=/var/lib/vec-inf-slurm
RUN_DIR=/run/vec-inf-slurm
LOG_DIR=/var/log/vec-inf-slurm
LOG_FILE="$LOG_DIR/up.log"
ETC_DIR=/etc/slurm
MYSQL_SOCKET=/run/mysqld/mysqld.sock
MARIADB_PID=/run/mysqld/mysqld.pid
MUNGED_PID=/run/munge/munged.pid

export SLURM_CONF="$ETC_DIR/slurm.conf"

mkdir -p "$RUN_DIR" "$LOG_DIR"

log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >>"$LOG_FILE"; }

# Run a command with its output in the log file only.
quiet() { log "+ $*"; "$@" >>"$LOG_FILE" 2>&1; }

# One line per phase on the terminal.
say() { printf 'slurm: %s\n' "$*"; }

die() {
    printf 'slurm: FAILED: %s (log: %s)\n' "$*" "$LOG_FILE" >&2
    exit 1
}

# The program (and for slurmd, the node) a pid file stands for: a pid file left behind by a
# daemon that died can name a pid the kernel has since given to an unrelated process.
daemon_of() {
    local name
    name=$(basename "$1" .pid)
    case $name in
    slurmd-*) printf 'slurmd %s' "${name#slurmd-}" ;;
    mysqld) printf 'mariadbd' ;;
    *) printf '%s' "$name" ;;
    esac
}

# pid_alive FILE: the pid in FILE runs, and it is the daemon FILE names.
pid_alive() {
    local file=$1 pid program node args
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 1
    read -r program node <<<"$(daemon_of "$file")"
    mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || return 1
    ((${#args[@]} > 0)) && [[ $(basename "${args[0]}") == "$program" ]] || return 1
    [[ -z $node ]] || [[ " ${args[*]} " == *" -N $node "* ]]
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.1 s until COMMAND succeeds.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    local tries=$((seconds * 10))
    while ((tries-- > 0)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "timed out after ${seconds}s waiting for $what"
}

# stop_by_pidfiles SECONDS FILE...: SIGTERM every daemon named by a pid file, then wait up
# to SECONDS for all of them to exit (SIGKILL for any that ignore it).
stop_by_pidfiles() {
    local seconds=$1 file pid tries
    shift
    local pids=()
    for file in "$@"; do
        pid_alive "$file" || continue
        pid=$(<"$file")
        log "stopping pid $pid ($file)"
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
    tries=$((seconds * 10))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((tries-- > 0)); do sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid ignored SIGTERM for ${seconds}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$@"
}

stop_by_pidfile() { stop_by_pidfiles "${2:-20}" "$1"; }

stop_slurmds() {
    local node files=()
    for node in "${NODES[@]}"; do files+=("$RUN_DIR/slurmd-$node.pid"); done
    stop_by_pidfiles 20 "${files[@]}"
}

# Node states in which a node takes jobs (sinfo %t); "unk" and "down" are not among them.
USABLE_STATES='idle|mix|alloc|comp'

# nodes_ready PATTERN: every node's sinfo state matches PATTERN.
nodes_ready() {
    local pattern=$1 states
    states=$(sinfo --noheader --Node --format='%N %t' 2>/dev/null) || return 1
    [[ $(grep -cE "^node[12] ($pattern)\$" <<<"$states") -eq ${#NODES[@]} ]]
}

ctld_answers() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

# The one way slurmctld is started (up.sh and ctld.sh both use it).
start_slurmctld() {
    pid_alive "$RUN_DIR/slurmctld.pid" && return 0
    quiet /usr/sbin/slurmctld -i || die "slurmctld did not start"
    wait_for 30 "slurmctld to answer" ctld_answers
}

# After a restart the controller knows the nodes as "unknown" until their slurmd registers
# again (a few seconds); until then it refuses jobs that would fit, so wait for that.
wait_nodes_registered() {
    local node
    for node in "${NODES[@]}"; do pid_alive "$RUN_DIR/slurmd-$node.pid" || return 0; done
    wait_for 60 "the nodes to register with slurmctld" nodes_ready "$USABLE_STATES"
}

stop_slurmctld() { stop_by_pidfile "$RUN_DIR/slurmctld.pid" 30; }
