#!/bin/bash
# Seed 001 Table I on a cluster: jobs/mpnn_table1.toml (hydrogen 1s and the 1D HO n=2,
# QPNN / QPNN+MS / MPNN, 10 trials each: 60 tasks) into results/mpnn_table1.h5, on GPU
# nodes, one MPI rank per GPU. Run from the repository root:
#
#   PARTITION=gpu ACCOUNT=myproject GPUS=4 bash slurm/mpnn_table1.sh submit   # qpnn-hpc submit (submitit)
#   PARTITION=gpu ACCOUNT=myproject GPUS=4 bash slurm/mpnn_table1.sh sbatch   # slurm/campaign-gpu.sbatch
#   NODES=1 GPUS=0 PARTITION=cpu bash slurm/mpnn_table1.sh submit              # CPU only (32 ranks)
#
# Either way the job resumes results/mpnn_table1.h5 if it exists, and a preempted or
# timed-out job requeues itself and resumes; rerunning this script does the same.
# Afterwards: qpnn-hpc status results/mpnn_table1.h5; python benchmarks/mpnn_table1.py
# prints the table from the file (it finds nothing left to run).
set -euo pipefail
PARTITION=${PARTITION:-gpu}
ACCOUNT=${ACCOUNT:-myproject}
NODES=${NODES:-1}
GPUS=${GPUS:-4}                 # GPUs per node; 0: CPU only
CPU_RANKS=${CPU_RANKS:-32}      # ranks per node when GPUS=0
MINUTES=${MINUTES:-240}         # time limit per job; a longer campaign just requeues and resumes
SETUP=${SETUP:-}                # e.g. "module load openmpi/4.1 cuda/12.1; source ~/venvs/qpnn/bin/activate"
CAMPAIGN=jobs/mpnn_table1.toml
OUT=results/mpnn_table1.h5
mkdir -p results

if [ "$GPUS" -gt 0 ]; then ranks=$GPUS; script=slurm/campaign-gpu.sbatch; gpu=(--gpus-per-node "$GPUS")
else ranks=$CPU_RANKS; script=slurm/campaign-cpu.sbatch; gpu=(); fi

case "${1:-submit}" in
  submit)
    setup=(); [ -n "$SETUP" ] && setup=(--setup "$SETUP")
    qpnn-hpc submit "$CAMPAIGN" --out "$OUT" --nodes "$NODES" --ntasks-per-node "$ranks" ${gpu[@]+"${gpu[@]}"} \
      --time "$MINUTES" --partition "$PARTITION" --account "$ACCOUNT" ${setup[@]+"${setup[@]}"} --name mpnn_table1
    ;;
  sbatch)
    [ -z "$SETUP" ] || { echo "SETUP applies to submit; for sbatch edit the module lines in $script" >&2; exit 2; }
    # edit the module lines in $script for your site (or export SETUP-like settings yourself)
    sbatch --partition="$PARTITION" --account="$ACCOUNT" --nodes="$NODES" --ntasks-per-node="$ranks" \
      --time="$MINUTES" --job-name=mpnn_table1 "$script" run "$CAMPAIGN" --out "$OUT"
    ;;
  *) echo "usage: bash $0 [submit|sbatch]" >&2; exit 2 ;;
esac
