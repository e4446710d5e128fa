"""Atomic subshells by aufbau: the occupation order and the outermost shell's angular momentum.

The outermost shell sets the centrifugal term of the one-orbital potential far from an atom:
sqrt(n) there is dominated by the orbital with the smallest ionisation energy, whose radial
equation carries l(l+1)/(2 r^2) (Hartree atomic units, r in bohr), so v_eff -> -z/r + l(l+1)/(2 r^2)
(qpnn_hpc.atoms.tail). No imports beyond the standard library.
"""
from __future__ import annotations

#: (n, l) in aufbau (Madelung) order, H to Kr
SUBSHELLS = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (4, 0), (3, 2), (4, 1)]
CAPACITY = {l: 2 * (2 * l + 1) for l in range(4)}


def occupied(n_electrons: int) -> list[tuple[int, int, int]]:
    """(n, l, electrons) of the occupied subshells of the aufbau ground state, in filling order."""
    left, out = int(n_electrons), []
    for n, l in SUBSHELLS:
        if left <= 0:
            break
        k = min(CAPACITY[l], left)
        out.append((n, l, k))
        left -= k
    if left > 0:
        raise ValueError(f"{n_electrons} electrons: beyond Kr (36)")
    return out


def outer_l(n_electrons: int) -> int:
    """l of the outermost shell: among the occupied subshells of the highest n, the last filled
    (H-Be 0, B-Ne 1, Na-Mg 0, Al-Ar 1, K-Zn 0 (4s, also for Cr and Cu), Ga-Kr 1)."""
    occ = occupied(n_electrons)
    top = max(n for n, _, _ in occ)
    return [l for n, l, _ in occ if n == top][-1]
