"""qpnn_hpc: quantum potential neural networks (QPNN, QPNN+MS, MPNN) and learned 1D
functionals, run as MPI / Slurm campaigns with one HDF5 results file.

Hartree atomic units throughout (lengths in bohr, energies in Hartree)."""
import os as _os

# Reading a results file (qpnn-hpc status, report) while a campaign writes it needs
# HDF5's file locking off; it must be set before the HDF5 library opens a file.
_os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

__version__ = "0.1.0"
