#!/usr/bin/env bash
# Stop the single-node Slurm started by .ci/slurm-up.sh: cancel its jobs, stop slurmd and
# slurmctld by their pid files (and munged, only if slurm-up.sh started it), and wait for
# them to exit. Safe to call when nothing runs. Logs and state stay in $QPNN_SLURM_DIR.
set -uo pipefail

D=${QPNN_SLURM_DIR:-/tmp/qpnn-slurm}
CONF=$D/slurm.conf
TIMEOUT=${QPNN_SLURM_TIMEOUT:-60}
export SLURM_CONF=$CONF

log() { printf '[slurm-down] %s\n' "$*" >&2; }
. "$(dirname "${BASH_SOURCE[0]}")/slurm-lib.sh"
# stop PID NAME: SIGTERM, wait up to $TIMEOUT s, then SIGKILL.
stop() {
  local pid=$1 name=$2 i
  alive "$pid" "$name" || return 0
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 $((TIMEOUT * 10))); do alive "$pid" "$name" || { log "$name (pid $pid) stopped"; return 0; }; sleep 0.1; done
  log "$name (pid $pid) ignored SIGTERM for ${TIMEOUT}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null
  for i in $(seq 1 50); do alive "$pid" "$name" || return 0; sleep 0.1; done
  log "WARNING: $name (pid $pid) still alive"; return 1
}

[ -d "$D" ] || { log "nothing to stop ($D does not exist)"; exit 0; }
ctld=$(pidof_file "$D/run/slurmctld.pid")
slurmd=$(pidof_file "$D/run/slurmd.pid")
rc=0

# 1. cancel this instance's jobs and let them end (so no slurmstepd is left behind).
if alive "$ctld" slurmctld && [ -f "$CONF" ]; then
  jobs=$(timeout 10 squeue -h -o '%i' 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    log "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    timeout 10 scancel $jobs 2>/dev/null || true
    for _ in $(seq 1 150); do  # up to 30 s; jobs cannot finish without slurmd
      [ -z "$(timeout 10 squeue -h -o '%i' 2>/dev/null)" ] && break
      alive "$slurmd" slurmd || break
      sleep 0.2
    done
  fi
fi

# 2. the daemons, slurmd first.
stop "$slurmd" slurmd || rc=1
stop "$ctld" slurmctld || rc=1
rm -f "$D/run/slurmd.pid" "$D/run/slurmctld.pid"

# 3. slurmstepd of this instance that outlived slurmd (they carry SLURM_CONF=$CONF, which
#    slurm-up.sh exports to the daemons), and the job processes under them.
descendants() {  # all descendants of $1, deepest last
  ps -eo pid=,ppid= | awk -v root="$1" '{kids[$2]=kids[$2] " " $1}
    END {q=root; while (q != "") {split(q, a, " "); q=""; for (i in a) {n=split(kids[a[i]], k, " ");
         for (j=1; j<=n; j++) {print k[j]; q=q " " k[j]}}}}'
}
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  alive "$pid" slurmstepd || continue
  tr '\0' '\n' 2>/dev/null < "$p/environ" | grep -qx "SLURM_CONF=$CONF" || continue
  kids=$(descendants "$pid" | tr "\n" " ")
  log "leftover slurmstepd pid $pid (job processes: ${kids:-none})"
  TIMEOUT=5 stop "$pid" slurmstepd || rc=1
  for k in $kids; do
    name=$(cat "/proc/$k/comm" 2>/dev/null) || continue
    TIMEOUT=5 stop "$k" "$name" || rc=1
  done
done

# 4. munged, only if slurm-up.sh started it.
if [ -f "$D/run/munged.started-by-qpnn" ]; then
  mpid=$(pidof_file "$D/run/munged.started-by-qpnn")
  stop "$mpid" munged || rc=1
  rm -f "$D/run/munged.started-by-qpnn"
fi
[ $rc = 0 ] && log "down ($D; logs in $D/log)"
exit $rc
