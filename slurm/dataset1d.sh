#!/bin/bash
# Seed 002's 1D datasets (jobs/dataset1d.toml: atoms and molecules, exact 1D solver) on
# CPU nodes, one results file data/dataset1d.h5 (qpnn_hpc.exact1d.dataset.read gives a dataset back). Run from the repository root:
#
#   PARTITION=cpu ACCOUNT=myproject bash slurm/dataset1d.sh
#
# The solver is CPU only (one BLAS thread per rank: `qpnn-hpc run` sets it for solve1d campaigns), so the
# job asks for one core per rank. Preempted or timed-out: the job requeues itself and
# `qpnn-hpc run` resumes (systems already done are kept); rerunning this script too.
set -euo pipefail
PARTITION=${PARTITION:-cpu}
ACCOUNT=${ACCOUNT:-myproject}
NODES=${NODES:-1}
RANKS=${RANKS:-32}              # MPI ranks per node (= cores per node)
MINUTES=${MINUTES:-120}
OUT=${OUT:-data/dataset1d.h5}
mkdir -p "$(dirname "$OUT")"
sbatch --partition="$PARTITION" --account="$ACCOUNT" --nodes="$NODES" --ntasks-per-node="$RANKS" \
  --cpus-per-task=1 --time="$MINUTES" --job-name=dataset1d \
  slurm/campaign-cpu.sbatch run jobs/dataset1d.toml --out "$OUT"
