#!/usr/bin/env bash
# Start (idempotently) a two-node Slurm cluster with accounting on this machine.
#
# For a fresh Debian 12 machine, as root, without systemd. Prints one line per phase; command
# output goes to /var/log/vec-inf-slurm/up.log. When everything already runs it only checks,
# which takes well under a second.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $EUID -eq 0 ]] || die "run as root"
started_any=0

phase_packages() {
    # netcat-openbsd: the job script of vec-inf itself (run by the compatibility tests) needs nc.
    local wanted=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server netcat-openbsd)
    local missing=() pkg
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        say "packages: ok"
        return
    fi
    local start=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    quiet apt-get update || die "apt-get update"
    quiet apt-get install -y --no-install-recommends "${missing[@]}" || die "apt-get install"
    say "packages: installed ${missing[*]} ($((SECONDS - start)) s)"
}

# render TEMPLATE DEST MODE: fill placeholders; replace DEST only when the text changed.
# Prints "changed" when it replaced the file.
render() {
    local template=$1 dest=$2 mode=$3 tmp
    tmp=$(mktemp "$dest.XXXXXX")
    sed -e "s|@CLUSTER@|$CLUSTER|g" -e "s|@CTLD_HOST@|$(hostname -s)|g" \
        -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@DBD_PORT@|$DBD_PORT|g" \
        -e "s|@NODE1_PORT@|$NODE1_PORT|g" -e "s|@NODE2_PORT@|$NODE2_PORT|g" \
        -e "s|@STATE_DIR@|$STATE_DIR|g" -e "s|@RUN_DIR@|$RUN_DIR|g" -e "s|@LOG_DIR@|$LOG_DIR|g" \
        -e "s|@DB_USER@|$DB_USER|g" -e "s|@DB_NAME@|$DB_NAME|g" -e "s|@DB_PASS@|$(db_password)|g" \
        "$SLURM_SCRIPTS_DIR/$template" >"$tmp"
    chmod "$mode" "$tmp"
    if cmp -s "$tmp" "$dest"; then
        rm -f "$tmp"
    else
        mv "$tmp" "$dest"
        echo changed
    fi
}

db_password() {
    local file="$STATE_DIR/db.pass"
    if [[ ! -s $file ]]; then
        (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$file")
    fi
    cat "$file"
}

any_slurm_daemon_running() {
    local node
    pid_alive "$RUN_DIR/slurmdbd.pid" || pid_alive "$RUN_DIR/slurmctld.pid" && return 0
    for node in "${NODES[@]}"; do pid_alive "$RUN_DIR/slurmd-$node.pid" && return 0; done
    return 1
}

stop_slurm_daemons() {
    stop_slurmds
    stop_slurmctld
    stop_by_pidfile "$RUN_DIR/slurmdbd.pid"
}

phase_configs() {
    local changed="" i node
    mkdir -p "$ETC_DIR" "$STATE_DIR/ctld" "$STATE_DIR/dev"
    for node in "${NODES[@]}"; do mkdir -p "$STATE_DIR/slurmd-$node"; done
    for i in 0 1 2 3 4 5 6 7; do
        [[ -c $STATE_DIR/dev/nvidia$i ]] || mknod "$STATE_DIR/dev/nvidia$i" c 195 "$i"
    done
    changed+=$(render slurm.conf.in "$ETC_DIR/slurm.conf" 644)
    changed+=$(render gres.conf.in "$ETC_DIR/gres.conf" 644)
    changed+=$(render slurmdbd.conf.in "$ETC_DIR/slurmdbd.conf" 600)
    if ! grep -qE '^127\.0\.0\.1[[:space:]].*\bnode1\b' /etc/hosts; then
        echo "127.0.0.1 ${NODES[*]}" >>/etc/hosts
        changed+=hosts
    fi
    if [[ -n $changed ]] && any_slurm_daemon_running; then
        stop_slurm_daemons
        say "configs: updated; restarting the Slurm daemons"
    elif [[ -n $changed ]]; then
        say "configs: written to $ETC_DIR"
    else
        say "configs: ok"
    fi
}

munge_works() { munge -n | unmunge >/dev/null; }

phase_munge() {
    if pid_alive "$MUNGED_PID" && munge_works 2>/dev/null; then
        say "munge: running"
        return
    fi
    mkdir -p /run/munge && chown munge:munge /run/munge
    quiet runuser -u munge -- /usr/sbin/munged || die "munged did not start"
    wait_for 10 "munged" munge_works
    started_any=1
    say "munge: started"
}

mariadb_answers() { mariadb-admin --socket="$MYSQL_SOCKET" ping; }

phase_database() {
    if pid_alive "$MARIADB_PID" && mariadb_answers >/dev/null 2>&1; then
        say "database: running"
        return
    fi
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        quiet mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
            --auth-root-authentication-method=socket || die "mariadb-install-db"
    fi
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    log "+ mariadbd (background)"
    setsid /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --socket="$MYSQL_SOCKET" \
        --pid-file="$MARIADB_PID" --bind-address=127.0.0.1 </dev/null >>"$LOG_FILE" 2>&1 &
    local server=$! tries=600
    until mariadb_answers >/dev/null 2>&1; do
        kill -0 "$server" 2>/dev/null || die "MariaDB exited at start"
        ((tries-- > 0)) || die "timed out waiting for MariaDB"
        sleep 0.1
    done
    started_any=1
    say "database: started"
}

# The database user slurmdbd logs in as, with the password in slurmdbd.conf (set on every
# slurmdbd start, so a regenerated password can never lock slurmdbd out).
ensure_db_user() {
    local password
    password=$(db_password)
    quiet mariadb --socket="$MYSQL_SOCKET" -e "
        CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$password';
        ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$password';
        GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'localhost';" ||
        die "creating the database user"
}

dbd_answers() { sacctmgr --immediate --noheader list cluster format=cluster; }

phase_slurmdbd() {
    local note="running"
    if ! pid_alive "$RUN_DIR/slurmdbd.pid"; then
        ensure_db_user
        quiet /usr/sbin/slurmdbd || die "slurmdbd did not start"
        wait_for 30 "slurmdbd" dbd_answers
        started_any=1
        note="started"
    fi
    if ! dbd_answers 2>/dev/null | grep -qx " *$CLUSTER *"; then
        quiet sacctmgr --immediate add cluster "$CLUSTER" || die "sacctmgr add cluster"
        note+=", cluster $CLUSTER registered"
    fi
    say "slurmdbd: $note"
}

phase_slurmctld() {
    if pid_alive "$RUN_DIR/slurmctld.pid"; then
        say "slurmctld: running"
        return
    fi
    start_slurmctld
    started_any=1
    say "slurmctld: started"
}

phase_slurmd() {
    local node started=()
    for node in "${NODES[@]}"; do
        pid_alive "$RUN_DIR/slurmd-$node.pid" && continue
        quiet /usr/sbin/slurmd -N "$node" || die "slurmd $node did not start"
        started+=("$node")
    done
    if ((${#started[@]} == 0)); then
        say "slurmd: running (${NODES[*]})"
    else
        started_any=1
        say "slurmd: started ${started[*]}"
    fi
}

phase_ready() {
    if ((started_any == 0)); then
        nodes_ready "$USABLE_STATES" || die "nodes are not usable: $(sinfo -N -h -o '%N %t' | tr '\n' ' ')"
        say "ready: ${NODES[*]} up"
        return
    fi
    # Right after a cold start both nodes are idle; after a partial restart they may run jobs.
    wait_for 60 "both nodes to take jobs" nodes_ready "$USABLE_STATES"
    quiet timeout 60 sbatch --parsable --wait --output=/dev/null --wrap true ||
        die "a test job (sbatch --wrap true) did not run"
    say "ready: ${NODES[*]} take jobs, a test job ran"
}

log "=== up.sh"
phase_packages
phase_configs
phase_munge
phase_database
phase_slurmdbd
phase_slurmctld
phase_slurmd
phase_ready
