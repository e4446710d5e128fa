#!/usr/bin/env bash
# Bring up a real single-node Slurm on localhost (slurmctld + slurmd, munge) with all its
# state under one folder. Safe to call twice: a running instance is reused.
#
#   eval "$(bash .ci/slurm-up.sh)"      # prints `export SLURM_CONF=...` on stdout
#   bash .ci/slurm-down.sh
#
# Knobs: QPNN_SLURM_DIR (default /tmp/qpnn-slurm), QPNN_SLURM_PARTITION (debug),
#        QPNN_SLURMCTLD_PORT (6817), QPNN_SLURMD_PORT (6818), QPNN_SLURM_TIMEOUT (60 s).
# Needs root and the apt packages slurm-wlm slurm-client munge (.ci/cluster-env.sh).
# Logs go to stderr; only the export lines go to stdout.
set -euo pipefail

D=${QPNN_SLURM_DIR:-/tmp/qpnn-slurm}
PART=${QPNN_SLURM_PARTITION:-debug}
CTLD_PORT=${QPNN_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${QPNN_SLURMD_PORT:-6818}
TIMEOUT=${QPNN_SLURM_TIMEOUT:-60}
CONF=$D/slurm.conf
NODE=$(hostname -s)
export SLURM_CONF=$CONF

log() { printf '[slurm-up] %s\n' "$*" >&2; }
die() { printf '[slurm-up] ERROR: %s\n' "$*" >&2; [ -d "$D/log" ] && tail -n 20 "$D"/log/*.log >&2 2>/dev/null; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/slurm-lib.sh"
exports() {
  echo "export SLURM_CONF=$CONF"
  log "hint: export SLURM_CONF=$CONF  (also in $D/env.sh); partition '$PART'; stop: bash .ci/slurm-down.sh"
}
T0=$(date +%s.%N)
for c in slurmctld slurmd sinfo munged munge unmunge; do
  command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || die "$c not found: run .ci/cluster-env.sh (apt: slurm-wlm slurm-client munge)"
done
[ "$(id -u)" -eq 0 ] || die "must run as root (SlurmUser=root)"

mkdir -p "$D"/{state,spool,log,run}
# One `up` at a time on this folder.
exec 9>"$D/.lock"
flock -w "$TIMEOUT" 9 || die "another slurm-up holds $D/.lock"

node_state() { timeout 10 sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null | head -n1; }

running=0
if alive "$(pidof_file "$D/run/slurmctld.pid")" slurmctld && alive "$(pidof_file "$D/run/slurmd.pid")" slurmd; then
  running=1
fi

# ---------------------------------------------------------------- munge
if timeout 10 munge -n 2>/dev/null | timeout 10 unmunge >/dev/null 2>&1; then
  log "munge: already running"
else
  [ -s /etc/munge/munge.key ] || {
    log "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  }
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged 9>&-      # daemons must not inherit the lock fd
  for _ in $(seq 1 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  mpid=$(pidof_file /run/munge/munged.pid)
  alive "$mpid" munged || die "munged did not start"
  echo "$mpid" > "$D/run/munged.started-by-qpnn"   # slurm-down.sh stops only a munged we started
  timeout 10 munge -n | timeout 10 unmunge >/dev/null || die "munge -n | unmunge fails"
  log "munge: started (pid $mpid)"
fi

# ---------------------------------------------------------------- slurm.conf + daemons
CPUS=$(nproc --all)  # --all: nproc alone obeys OMP_NUM_THREADS
MEM_MB=$(awk '/^MemTotal:/{printf "%d", $2/1024}' /proc/meminfo)
REAL_MB=$(( MEM_MB * 95 / 100 ))       # a bit below the total, or slurmd marks the node invalid
if [ "$running" = 1 ]; then
  log "slurmctld and slurmd already running ($D)"
else
  for f in slurmctld slurmd; do
    pid=$(pidof_file "$D/run/$f.pid")
    if alive "$pid" "$f"; then log "stopping stale $f (pid $pid)"; kill "$pid" 2>/dev/null || true; fi
  done
  for f in slurmctld slurmd; do
    pid=$(pidof_file "$D/run/$f.pid")
    for _ in $(seq 1 100); do alive "$pid" "$f" || break; sleep 0.1; done
    alive "$pid" "$f" && die "stale $f (pid $pid) does not exit"
    rm -f "$D/run/$f.pid"
  done
  for port in "$CTLD_PORT" "$SLURMD_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port is in use (another Slurm?): set QPNN_SLURMCTLD_PORT / QPNN_SLURMD_PORT"
    fi
  done

  cat > "$CONF.new" <<EOF
# Written by .ci/slurm-up.sh: a single-node Slurm on localhost for qpnn_hpc's cluster tests.
ClusterName=qpnn
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=300
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MB State=UNKNOWN
PartitionName=$PART Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  mv "$CONF.new" "$CONF"
  cat > "$D/env.sh" <<EOF
export SLURM_CONF=$CONF
EOF

  # -c: start from a clean state (no jobs left over from an earlier run). SLURM_CONF is in
  # the daemons' environment, so slurm-down.sh can find leftover slurmstepd of this instance.
  slurmctld -c -f "$CONF" 9>&- || die "slurmctld failed to start"
  slurmd -f "$CONF" 9>&- || die "slurmd failed to start"
fi

deadline=$(( $(date +%s) + TIMEOUT ))
state=
while :; do
  state=$(node_state || true)
  case "$state" in idle|mix|alloc) break ;; esac
  case "$state" in down*|drain*|inval*)
    scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || die "node $NODE not idle after ${TIMEOUT}s (state '${state:-no answer}')"
  alive "$(pidof_file "$D/run/slurmctld.pid")" slurmctld || [ ! -s "$D/run/slurmctld.pid" ] || die "slurmctld exited"
  sleep 0.2
done
log "up in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s: node $NODE $state, $CPUS CPUs, ${REAL_MB} MB ($D)"
exports
