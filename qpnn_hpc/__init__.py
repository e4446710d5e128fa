"""qpnn_hpc: quantum potential neural networks (QPNN, QPNN+MS, MPNN) and learned 1D
functionals, run as MPI / Slurm campaigns with one HDF5 results file.

Hartree atomic units throughout (lengths in bohr, energies in Hartree)."""
__version__ = "0.1.0"
