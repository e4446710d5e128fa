"""The inverse problem (seed 001): systems, Metropolis samplers, potential networks, the
QPNN/QPNN+MS/MPNN losses, training, one trial, its metrics and its report.
May import the base (config, stats, parallel) and qpnn_hpc.atoms (tabulated densities)."""
