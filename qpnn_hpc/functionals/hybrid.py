r"""Gauge-invariant hybrids: learn only the gauge-invariant parts, add the external energy exactly.

Seed 002 (section 3.3) finds E[n] and A[n] hard to learn because they are gauge-dependent
(V -> V + c shifts E1 by c and A by -c while n is unchanged) and suggests: "Direct
modelling of E[n] can be avoided since its only gauge-dependent component (the external
potential energy) can be calculated exactly, leaving only gauge-invariant components to be
machine learned". For one electron, in Hartree atomic units:

* Energy: E1 = T + E_V with E_V = integral n V dx, so

  .. math:: E[n; V] = T_{ML}[n] + \int n(x) V(x)\,dx,

  the integral by the dataset's rule, the rectangle rule dx * sum_k n(x_k) V(x_k)
  (:func:`qpnn_hpc.exact1d.solver.solve_one_electron`: ``E_V = sum(n * V) * dx``), so that
  with the exact T the hybrid returns the dataset's E1 (T = E1 - E_V is stored that way).
* Affinity: A = E1 - E2 and Eg = E2 - 2 E1 give E2 = Eg + 2 E1, hence

  .. math:: A = E_1 - (E_g + 2 E_1) = -E_1 - E_g, \qquad A[n; V] = -E[n; V] - E_{g,ML}[n].

  Gauge check: V -> V + c gives E1 -> E1 + c, Eg -> Eg, so A -> A - c, as the seed's
  A' = A - c (section 2.2.3).

Inputs: densities n (1/bohr) and potentials V (Ha) on the grid x (bohr), one profile per row.
"""
from __future__ import annotations

import numpy as np

from qpnn_hpc.config import check
from qpnn_hpc.functionals.sensitivity import grid_spacing

__all__ = ["external_energy", "energy", "affinity", "predict"]


def external_energy(n, V, x) -> np.ndarray:
    """E_V = integral n V dx (Ha) by the rectangle rule, dx * sum over the last axis, as the dataset."""
    n, V = np.asarray(n, dtype=float), np.asarray(V, dtype=float)
    check(n.shape == V.shape, "V", f"shape {V.shape} differs from the density's {n.shape}")
    check(n.shape[-1] == np.asarray(x).size, "n", f"{n.shape[-1]} points; the grid x has {np.asarray(x).size}")
    return np.sum(n * V, axis=-1) * grid_spacing(x)


def energy(T, n, V, x) -> np.ndarray:
    """E[n; V] = T[n] + integral n V dx (Ha); ``T`` (Ha) from a learned T[n] (or the exact T)."""
    return np.asarray(T, dtype=float) + external_energy(n, V, x)


def affinity(E, Eg) -> np.ndarray:
    """A = -E1 - Eg (Ha), from A = E1 - E2 and Eg = E2 - 2 E1; ``E`` from :func:`energy`."""
    return -np.asarray(E, dtype=float) - np.asarray(Eg, dtype=float)


def predict(T_functional, Eg_functional, n, V, x) -> dict:
    """Hybrid E and A (Ha) of densities ``n`` in potentials ``V`` (N, L) on grid ``x``, from
    learned T[n] and Eg[n] (:class:`.predict.Functional` with input 'n')."""
    for name, f, target in (("T_functional", T_functional, "T"), ("Eg_functional", Eg_functional, "Eg")):
        check(f.spec.input == "n" and f.spec.target == target, name,
              f"expected a {target}[n] functional, got {f.spec.target}[{f.spec.input}]")
    E = energy(T_functional.predict(n, x), n, V, x)
    return {"E": E, "A": affinity(E, Eg_functional.predict(n, x))}
