#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for tests/test_slurm.py and for trying AI6103_EXECUTOR=slurm.
#
#   eval "$(bash scripts/local_slurm.sh start)"   # prints `export SLURM_CONF=<folder>/slurm.conf`
#   bash scripts/local_slurm.sh stop              # stops what start started, removes its folder ($SLURM_CONF's)
#
# start (as root) installs slurmctld, slurmd, slurm-client and munge with apt-get if they are missing
# (Debian/Ubuntu), makes a new temporary folder and starts there a munge daemon of its own (its own key and
# socket), writes slurm.conf (state, spool, logs and pid files go there too; free TCP ports are chosen, so it
# clashes with no other Slurm or munge here) and starts slurmctld and slurmd in the background. It waits (at most
# 60 s) until `sinfo` shows the node idle. Whatever it cannot do ends it with one line on stderr, status 1.
#
# NOTE: no slurmdbd (it needs a database), so `sacct` has nothing to read: lib/running/executor.py reads job states from
# `squeue` first; finished jobs stay there for MinJobAge seconds (an hour here, 5 minutes by Slurm's default).
set -euo pipefail

fail() { echo "local_slurm.sh: $*" >&2; exit 1; }

free_port() {  # a TCP port nobody listens on now
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

install_packages() {
    local missing=()
    for command in slurmctld:slurmctld slurmd:slurmd sinfo:slurm-client munged:munge; do
        command -v "${command%%:*}" >/dev/null || missing+=("${command##*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || fail "not root: cannot install ${missing[*]} (apt-get install ${missing[*]} as root)"
    command -v apt-get >/dev/null || fail "no apt-get here (not Debian/Ubuntu): install ${missing[*]} by hand"
    export DEBIAN_FRONTEND=noninteractive
    if ! timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        timeout 300 apt-get update -qq >/dev/null 2>&1 || true
        timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
            || fail "apt-get install ${missing[*]} failed"
    fi
}

start_munge() {  # $1 = folder: a munge daemon of our own, its key and socket there
    local folder=$1
    dd if=/dev/urandom of="$folder/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$folder/munge.key"
    munged --force --key-file="$folder/munge.key" --socket="$folder/munge.socket" \
        --pid-file="$folder/munged.pid" --log-file="$folder/munged.log" --seed-file="$folder/munged.seed" \
        </dev/null >/dev/null 2>&1 || fail "munged did not start (see $folder/munged.log)"
    cat "$folder/munged.pid" >>"$folder/started.pids"  # munged puts itself in the background
    for _ in $(seq 50); do
        echo | munge --socket="$folder/munge.socket" 2>/dev/null \
            | unmunge --socket="$folder/munge.socket" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "munged started but does not answer (see $folder/munged.log)"
}

write_conf() {  # $1 = folder
    local folder=$1 host cpus memory_mb
    host=$(hostname -s)
    cpus=$(nproc)
    memory_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    memory_mb=$(( memory_mb - memory_mb / 10 - 512 ))  # a margin: slurmd refuses a node with less than configured
    mkdir -p "$folder/state" "$folder/spool"
    cat >"$folder/slurm.conf" <<EOF
# Written by scripts/local_slurm.sh: a one-node cluster for tests; everything it writes lives in $folder.
ClusterName=ai6103test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$folder/munge.socket
StateSaveLocation=$folder/state
SlurmdSpoolDir=$folder/spool
SlurmctldPidFile=$folder/slurmctld.pid
SlurmdPidFile=$folder/slurmd.pid
SlurmctldLogFile=$folder/slurmctld.log
SlurmdLogFile=$folder/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/builtin
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
# NOTE: no slurmdbd, so no accounting for sacct; finished jobs stay visible to squeue for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
# scancel: SIGTERM, which submitit's tasks bypass, then SIGKILL after KillWait seconds (Slurm's default 30: a
# cancelled task would train on for that long). 0 here shortens that wait but does not make it instant: srun waits
# for its step before the kill (tried: 1-2 s), and a cancelled task has finished its epoch, even its run, and
# written its result 4 s after scancel. So a test cannot know where its cancel lands; the tests accept either end.
KillWait=0
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$(( memory_mb / cpus ))
EOF
}

start() {
    [ "$(uname -s)" = Linux ] || fail "not Linux"
    [ "$(id -u)" -eq 0 ] || fail "not root: the test cluster's daemons run as root (SlurmUser=root)"
    install_packages
    local folder
    folder=$(mktemp -d "${TMPDIR:-/tmp}/ai6103-slurm.XXXXXX")
    : >"$folder/started.pids"
    start_munge "$folder"
    write_conf "$folder"
    export SLURM_CONF=$folder/slurm.conf
    # Daemons in sessions of their own, with no terminal or pipe of ours (a caller reading our output would
    # otherwise wait for them); their pids go to files that `stop` reads.
    setsid slurmctld -D -c -f "$SLURM_CONF" </dev/null >"$folder/slurmctld.out" 2>&1 &
    echo $! >>"$folder/started.pids"
    setsid slurmd -D -f "$SLURM_CONF" </dev/null >"$folder/slurmd.out" 2>&1 &
    echo $! >>"$folder/started.pids"
    local state=""
    for _ in $(seq 120); do
        state=$(timeout 5 sinfo -h -N -o %T 2>/dev/null | head -1 || true)
        [ "$state" = idle ] && break
        sleep 0.5
    done
    if [ "$state" != idle ]; then
        stop_folder "$folder"
        fail "the node did not become idle in 60 s (state '${state:-none}'); logs kept in $folder"
    fi
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop_folder() {  # $1 = the folder start made
    local folder=$1
    [ -f "$folder/started.pids" ] || fail "no started.pids in $folder: nothing of ours to stop"
    if [ -f "$folder/slurm.conf" ]; then  # our cluster's jobs end first (their processes belong to no daemon)
        export SLURM_CONF=$folder/slurm.conf
        timeout 10 scancel --user "$(id -un)" 2>/dev/null || true
        for _ in $(seq 50); do
            [ -z "$(timeout 5 squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
    while read -r pid; do
        kill "$pid" 2>/dev/null || true
    done <"$folder/started.pids"
    for _ in $(seq 50); do
        local alive=0
        while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$folder/started.pids"
        [ $alive -eq 0 ] && break
        sleep 0.1
    done
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$folder/started.pids"
    rm -f "$folder/started.pids"
}

case "${1:-}" in
    start) start ;;
    stop)
        folder=${2:-}
        [ -n "$folder" ] || folder=$(dirname "${SLURM_CONF:?stop: give the folder, or set SLURM_CONF as start printed}")
        stop_folder "$folder"
        rm -rf "$folder"  # its state, logs and munge key
        ;;
    *) fail "usage: $0 start | stop [FOLDER]" ;;
esac
