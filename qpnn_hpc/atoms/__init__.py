"""Many-electron atoms (seed 000): correlated densities and their inversion, the radial
forward solver, the shipped tables (qpnn_hpc/data) and the atoms section of a report.
May import the base (config, stats) and the results store it reports from."""
