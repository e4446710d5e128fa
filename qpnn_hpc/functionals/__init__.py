"""Seed 002's learned 1D functionals: the CNN (Fig. 7), batched ensembles, training, sensitivity, hybrids, prediction.
May import only the base (qpnn_hpc.config, qpnn_hpc.stats) and numpy, torch, h5py; no other qpnn_hpc package."""
