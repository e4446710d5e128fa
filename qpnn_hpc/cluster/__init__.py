"""The cluster layer: `qpnn-hpc submit` through submitit (Slurm, local, debug executors),
the job callable and the record of submitted jobs. May import the base and campaigns."""
