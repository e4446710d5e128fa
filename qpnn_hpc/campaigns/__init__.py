"""The campaign engine, one for every kind of work: campaign files, the task-kind registry,
scheduling over MPI ranks, the HDF5 results store, shards and merge. Imports the base only;
the kinds' own modules are found by name through campaigns.kinds (imported on first use)."""
