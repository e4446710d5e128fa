#!/bin/bash
# The atom campaign (jobs/atoms.toml: seed 000's radial QPNN on Li, Be, Ne densities, two
# gauges, 10 trials each, trained as batches of 10 with --batch 10) on a cluster, into
# results/atoms.h5. Run from the repository root (the campaign's table paths are relative):
#
#   PARTITION=gpu ACCOUNT=myproject GPUS=4 bash slurm/atoms.sh submit            # one MPI job
#   PARTITION=gpu ACCOUNT=myproject GPUS=1 SHARDS=6 bash slurm/atoms.sh submit   # 6 shard jobs (job array)
#   PARTITION=gpu ACCOUNT=myproject GPUS=4 bash slurm/atoms.sh sbatch            # slurm/campaign-gpu.sbatch
#   GPUS=0 PARTITION=cpu bash slurm/atoms.sh submit                              # CPU only
#
# With SHARDS=K every array job writes results/atoms.shard<k>-of-K.h5; when they are
# done: qpnn-hpc merge results/atoms.shard*-of-K.h5 --out results/atoms.h5
# Preempted or timed-out jobs requeue themselves and resume; rerunning this script
# resumes too (each shard its own file). Then seed 000's Tables 1-2, figures and the
# round trip: qpnn-hpc report results/atoms.h5 --out results/atoms_report
set -euo pipefail
PARTITION=${PARTITION:-gpu}
ACCOUNT=${ACCOUNT:-myproject}
NODES=${NODES:-1}
GPUS=${GPUS:-4}                 # GPUs per node; 0: CPU only
CPU_RANKS=${CPU_RANKS:-32}      # ranks per node when GPUS=0
SHARDS=${SHARDS:-}              # K: a job array of K shard jobs instead of one MPI job
MINUTES=${MINUTES:-480}
SETUP=${SETUP:-}                # e.g. "module load openmpi/4.1 cuda/12.1; source ~/venvs/qpnn/bin/activate"
CAMPAIGN=${CAMPAIGN:-jobs/atoms.toml}
BATCH=${BATCH:-10}              # trials differing only in their seed trained as one batched model
OUT=results/atoms.h5
[ -f "$CAMPAIGN" ] || { echo "$CAMPAIGN not found: the atom campaign file (set CAMPAIGN=...)" >&2; exit 2; }
mkdir -p results

if [ "$GPUS" -gt 0 ]; then ranks=$GPUS; script=slurm/campaign-gpu.sbatch; gpu=(--gpus-per-node "$GPUS")
else ranks=$CPU_RANKS; script=slurm/campaign-cpu.sbatch; gpu=(); fi

case "${1:-submit}" in
  submit)
    setup=(); [ -n "$SETUP" ] && setup=(--setup "$SETUP")
    array=(); [ -n "$SHARDS" ] && array=(--array "$SHARDS")
    qpnn-hpc submit "$CAMPAIGN" --out "$OUT" --nodes "$NODES" --ntasks-per-node "$ranks" ${gpu[@]+"${gpu[@]}"} \
      --time "$MINUTES" --partition "$PARTITION" --account "$ACCOUNT" ${setup[@]+"${setup[@]}"} ${array[@]+"${array[@]}"} --name atoms --batch "$BATCH"
    ;;
  sbatch)
    [ -z "$SETUP$SHARDS" ] || { echo "SETUP and SHARDS apply to submit; for sbatch edit the module lines in $script" >&2; exit 2; }
    sbatch --partition="$PARTITION" --account="$ACCOUNT" --nodes="$NODES" --ntasks-per-node="$ranks" \
      --time="$MINUTES" --job-name=atoms "$script" run "$CAMPAIGN" --out "$OUT" --batch "$BATCH"
    ;;
  *) echo "usage: bash $0 [submit|sbatch]" >&2; exit 2 ;;
esac
