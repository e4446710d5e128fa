"""Exact 1D systems (seed 002): the one- and two-electron grid solver, the softened atom
and molecule datasets, and the solve1d task kind. May import the base and campaigns.kinds."""
