"""Tests of qpnn_hpc.exact1d.solver and qpnn_hpc.exact1d.dataset (Hartree atomic units).

iDEA comparisons use small grids (41-61 points): iDEA diagonalises the full N^2 space.
"""
import contextlib
import dataclasses
import io
import math

import numpy as np
import pytest

from qpnn_hpc.exact1d import dataset as dataset1d
from qpnn_hpc.exact1d import solver as solver1d
from qpnn_hpc.config import ConfigError, from_dict

# Seed 002's grid: x in [-7, 7], 12 points per bohr.
X169 = np.linspace(-7.0, 7.0, 169)


def atom(x, Z=1.0, alpha=1.0):
    return solver1d.softened_atom_potential(x, Z, alpha)


# --------------------------------------------------------------------------- reference values

def test_hydrogen_model_reference_values():
    """physics-reference.md: Z = 1, alpha = 1, [-7, 7], 169 points, 13-point stencil."""
    p = solver1d.properties(X169, atom(X169), stencil=13)
    assert p["E1"] == pytest.approx(-0.5004311650409, abs=1e-9)
    assert p["E2"] == pytest.approx(-0.5403194532842, abs=1e-9)
    assert p["E_V"] == pytest.approx(-0.600851, abs=1e-6)
    assert p["T"] == pytest.approx(0.100420, abs=1e-6)
    assert p["A"] == pytest.approx(0.039888, abs=1e-6)
    assert p["Eg"] == pytest.approx(0.460543, abs=1e-6)
    assert p["E1"] == pytest.approx(p["T"] + p["E_V"], abs=1e-14)
    assert p["E2"] == pytest.approx(p["T2"] + p["E_V2"] + p["U2"], abs=1e-12)


def test_hydrogen_model_three_point_stencil():
    p = solver1d.properties(X169, atom(X169), stencil=3)
    assert p["E1"] == pytest.approx(-0.500490, abs=1e-6)
    assert p["E2"] == pytest.approx(-0.540412, abs=1e-6)


def test_analytic_1d_atom_within_discretisation_error():
    """psi = (1 + |x|) exp(-|x|): E = -0.5, <V> = -0.6, T = 0.1 (error ~ dx^2 from the kink)."""
    x = np.linspace(-12.0, 12.0, 24 * 24 + 1)  # 24 points per bohr
    one = solver1d.solve_one_electron(x, atom(x))
    assert one.E == pytest.approx(-0.5, abs=2e-4)
    assert one.E_V == pytest.approx(-0.6, abs=1e-3)
    assert one.T == pytest.approx(0.1, abs=1e-3)
    dx = x[1] - x[0]
    exact = (1 + np.abs(x)) ** 2 * np.exp(-2 * np.abs(x)) / 2.5
    assert np.max(np.abs(one.n - exact)) < 2e-3
    assert np.sum(one.n) * dx == pytest.approx(1.0, abs=1e-12)


def test_two_electron_result_does_not_depend_on_eigensolver():
    x = np.linspace(-5.0, 5.0, 81)
    V = solver1d.softened_molecule_potential(x, 1.0, 0.75, 3.0)
    ref = solver1d.solve_two_electrons(x, V, method="lobpcg")
    assert ref.method == "lobpcg" and ref.residual < 1e-9
    for method in ("eigsh", "shift-invert"):
        other = solver1d.solve_two_electrons(x, V, method=method)
        assert other.E == pytest.approx(ref.E, abs=1e-11)
        np.testing.assert_allclose(other.n, ref.n, atol=1e-9)


def test_eigsh_fallback_when_lobpcg_residual_too_large(monkeypatch):
    x = np.linspace(-4.0, 4.0, 49)
    V = atom(x, 1.1, 0.9)
    ref = solver1d.solve_two_electrons(x, V)
    monkeypatch.setattr(solver1d, "RESIDUAL_TOL", 0.0)
    fallback = solver1d.solve_two_electrons(x, V)
    assert fallback.method == "eigsh"
    assert fallback.E == pytest.approx(ref.E, abs=1e-11)


def test_symmetric_subspace_equals_full_product_space():
    """The pair-basis Hamiltonian is S^T H S with S the symmetrising isometry."""
    import scipy.sparse as sps

    x = np.linspace(-3.0, 3.0, 25)
    V = atom(x, 1.3, 0.8)
    n = x.size
    h = solver1d.kinetic_operator(x, 9) + sps.diags(V)
    eye = sps.identity(n)
    full = sps.kron(h, eye) + sps.kron(eye, h) + sps.diags(solver1d.softened_interaction(x).ravel())
    a, b = solver1d.symmetric_pairs(n)
    m = a.size
    w = np.where(a == b, 0.5, math.sqrt(0.5))
    S = sps.csr_matrix((np.concatenate([w, w]), (np.concatenate([a * n + b, b * n + a]),
                                                 np.concatenate([np.arange(m)] * 2))), shape=(n * n, m))
    expected = (S.T @ full @ S).toarray()
    got = solver1d.two_electron_hamiltonian(x, V, stencil=9).toarray()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    np.testing.assert_allclose(got, got.T, rtol=0, atol=1e-12 * np.abs(expected).max())


# --------------------------------------------------------------------------- iDEA agreement

IDEA_CASES = [  # (points, half-width, stencil, Z, alpha)
    (41, 4.0, 13, 1.0, 1.0),
    (51, 5.0, 3, 2.0, 0.65),
    (61, 6.0, 7, 0.5, 1.0),
    (45, 4.5, 11, 1.5, 0.8),
]


@pytest.fixture(scope="module")
def idea():
    return pytest.importorskip("iDEA")


def _idea_solve(idea, x, V, electrons, stencil):
    system = idea.system.System(x, V, idea.interactions.softened_interaction(x), electrons,
                                stencil=stencil)
    with contextlib.redirect_stdout(io.StringIO()):
        state = idea.methods.interacting.solve(system, k=0)
        n = idea.observables.density(system, state=state)
    return state.energy, n


@pytest.mark.parametrize("points,half,stencil,Z,alpha", IDEA_CASES)
def test_agrees_with_idea(idea, points, half, stencil, Z, alpha):
    x = np.linspace(-half, half, points)
    V = atom(x, Z, alpha)
    E1, n1 = _idea_solve(idea, x, V, "u", stencil)
    E2, n2 = _idea_solve(idea, x, V, "ud", stencil)
    one = solver1d.solve_one_electron(x, V, stencil)
    two = solver1d.solve_two_electrons(x, V, stencil)
    assert abs(one.E - E1) < 1e-10
    assert abs(two.E - E2) < 1e-10
    np.testing.assert_allclose(one.n, n1, rtol=0, atol=1e-10)
    np.testing.assert_allclose(two.n, n2, rtol=0, atol=1e-10)


def test_agrees_with_idea_molecule(idea):
    x = np.linspace(-5.0, 5.0, 51)
    V = solver1d.softened_molecule_potential(x, 1.0, 0.75, 4.0)
    E2, n2 = _idea_solve(idea, x, V, "ud", 13)
    two = solver1d.solve_two_electrons(x, V, 13)
    assert abs(two.E - E2) < 1e-10
    np.testing.assert_allclose(two.n, n2, rtol=0, atol=1e-10)


@pytest.mark.parametrize("stencil", sorted(solver1d.STENCILS))
def test_kinetic_operator_matches_idea(idea, stencil):
    x = np.linspace(-2.0, 3.0, 31)
    system = idea.system.System(x, np.zeros_like(x), np.zeros((31, 31)), "u", stencil=stencil)
    expected = idea.methods.non_interacting.kinetic_energy_operator(system)
    got = solver1d.kinetic_operator(x, stencil).toarray()
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)


# --------------------------------------------------------------------------- properties

@pytest.mark.parametrize("c", [0.1, -0.37])
def test_constant_shift_changes_energies_not_densities(c):
    x = np.linspace(-6.0, 6.0, 97)
    V = atom(x, 1.4, 0.7)
    p = solver1d.properties(x, V)
    q = solver1d.properties(x, V + c)
    assert q["E1"] - p["E1"] == pytest.approx(c, abs=1e-11)
    assert q["E2"] - p["E2"] == pytest.approx(2 * c, abs=1e-11)
    assert q["E_V"] - p["E_V"] == pytest.approx(c, abs=1e-11)
    assert q["A"] - p["A"] == pytest.approx(-c, abs=1e-11)
    for key in ("T", "Eg", "T2", "U2"):
        assert q[key] == pytest.approx(p[key], abs=1e-10), key
    for key in ("n1", "n2"):
        np.testing.assert_allclose(q[key], p[key], rtol=0, atol=1e-10)


def test_densities_mirror_symmetric_and_normalised():
    x = np.linspace(-6.0, 6.0, 121)
    dx = x[1] - x[0]
    for V in (atom(x, 0.8, 0.9), solver1d.softened_molecule_potential(x, 1.0, 0.75, 5.0)):
        p = solver1d.properties(x, V)
        for key, count in (("n1", 1.0), ("n2", 2.0)):
            n = p[key]
            assert np.all(n >= 0)
            assert np.sum(n) * dx == pytest.approx(count, abs=1e-12)
            np.testing.assert_allclose(n, n[::-1], rtol=0, atol=1e-10)


def test_two_electron_wave_function_symmetric_and_normalised():
    x = np.linspace(-4.0, 4.0, 49)
    dx = x[1] - x[0]
    two = solver1d.solve_two_electrons(x, atom(x, 1.2, 0.9))
    np.testing.assert_array_equal(two.psi, two.psi.T)
    assert np.sum(two.psi**2) * dx**2 == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(two.n, 2 * np.sum(two.psi**2, axis=1) * dx, atol=1e-14)


def test_no_interaction_gives_twice_one_electron_energy():
    x = np.linspace(-5.0, 5.0, 61)
    V = atom(x, 1.0, 0.8)
    two = solver1d.solve_two_electrons(x, V, interaction=np.zeros((61, 61)))
    one = solver1d.solve_one_electron(x, V)
    assert two.E == pytest.approx(2 * one.E, abs=1e-11)
    np.testing.assert_allclose(two.n, 2 * one.n, atol=1e-9)


# --------------------------------------------------------------------------- bad input

def _field_of(excinfo) -> str:
    return str(excinfo.value).split(":", 1)[0]


def test_non_uniform_grid_is_rejected():
    x = np.linspace(-3.0, 3.0, 31) ** 3 / 9
    with pytest.raises(ConfigError, match="not uniform") as e:
        solver1d.solve_one_electron(x, atom(x))
    assert _field_of(e) == "x"
    assert "np.linspace" in str(e.value)
    with pytest.raises(ConfigError) as e:
        solver1d.solve_two_electrons(x[::-1], atom(x))
    assert _field_of(e) == "x"


@pytest.mark.parametrize("stencil", [4, 15, 1, True, 13.0])
def test_unsupported_stencil_is_rejected(stencil):
    x = np.linspace(-3.0, 3.0, 31)
    for call in (solver1d.solve_one_electron, solver1d.solve_two_electrons):
        with pytest.raises(ConfigError, match=r"3, 5, 7, 9, 11, 13") as e:
            call(x, atom(x), stencil)
        assert _field_of(e) == "stencil"


def test_grid_smaller_than_the_stencil_is_rejected():
    """7 points cannot hold a 13-point stencil (the truncated operator gave E2 of 23-37 Ha)."""
    with pytest.raises(ConfigError, match=r"x: 7 grid points cannot hold the 13-point stencil"):
        solver1d.kinetic_operator(np.linspace(-0.25, 0.25, 7), 13)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_potential_is_rejected(bad):
    x = np.linspace(-3.0, 3.0, 31)
    V = atom(x)
    V[7] = bad
    for call in (solver1d.solve_one_electron, solver1d.solve_two_electrons, solver1d.properties):
        with pytest.raises(ConfigError, match="index \\[7\\]") as e:
            call(x, V)
        assert _field_of(e) == "V"


def test_potential_of_wrong_shape_is_rejected():
    x = np.linspace(-3.0, 3.0, 31)
    with pytest.raises(ConfigError) as e:
        solver1d.solve_one_electron(x, atom(x)[:-1])
    assert _field_of(e) == "V"


def test_bad_potential_parameters_are_rejected():
    x = np.linspace(-3.0, 3.0, 31)
    with pytest.raises(ConfigError) as e:
        solver1d.softened_atom_potential(x, 1.0, 0.0)
    assert _field_of(e) == "alpha"
    with pytest.raises(ConfigError) as e:
        solver1d.softened_molecule_potential(x, 1.0, 0.75, float("nan"))
    assert _field_of(e) == "r"


# --------------------------------------------------------------------------- datasets

def test_dataset_parameter_grids():
    train = dataset1d.dataset_specs("atoms", "train")
    test = dataset1d.dataset_specs("atoms", "test")
    assert len(train) == 100 and len(test) == 81
    Z = sorted({s.Z for s in train})
    alpha = sorted({s.alpha for s in train})
    assert Z[0] == 0.5 and Z[-1] == 2.0 and len(Z) == 10
    assert alpha[0] == 0.65 and alpha[-1] == 1.0 and len(alpha) == 10
    Zt = sorted({s.Z for s in test})
    np.testing.assert_allclose(Zt, 0.5 * (np.array(Z[1:]) + np.array(Z[:-1])), atol=1e-15)
    assert {(s.Z, s.alpha) for s in train}.isdisjoint({(s.Z, s.alpha) for s in test})

    mtrain = dataset1d.dataset_specs("molecules", "train")
    mtest = dataset1d.dataset_specs("molecules", "test")
    assert len(mtrain) == 50 and len(mtest) == 49
    assert mtrain[0].r == 2.0 and mtrain[-1].r == 6.0
    assert all(s.Z == 1.0 and s.alpha == 0.75 and s.kind == "molecule" for s in mtrain + mtest)
    assert all(a.r < t.r < b.r for a, t, b in zip(mtrain, mtest, mtrain[1:]))
    for s in train + mtest:
        assert s.points == 169 and s.box == 14.0 and s.stencil == 13


def test_solve_system_matches_properties():
    spec = dataset1d.SystemSpec("molecule", 1.0, 0.75, 4.0, box=8.0, points_per_bohr=6.0)
    x = spec.grid()
    assert x.size == 49 and x[0] == -4.0 and x[-1] == 4.0
    out = dataset1d.solve_system(spec)
    p = solver1d.properties(x, solver1d.softened_molecule_potential(x, 1.0, 0.75, 4.0))
    for key in ("E1", "E2", "E_V", "T", "A", "Eg"):
        assert out[key] == pytest.approx(p[key], abs=1e-11)
    np.testing.assert_array_equal(out["parameters"], [1.0, 0.75, 4.0])
    assert out["V"].shape == out["n1"].shape == out["n2"].shape == (49,)


def test_system_spec_rejects_bad_input_naming_the_field():
    good = {"kind": "atom", "Z": 1.0, "alpha": 1.0}
    assert from_dict(dataset1d.SystemSpec, good).points == 169
    for change, name in [({"kind": "ion"}, "kind"), ({"Z": 0.0}, "Z"), ({"alpha": -1.0}, "alpha"),
                         ({"r": 2.0}, "r"), ({"stencil": 4}, "stencil"),
                         ({"box": 10.0, "points_per_bohr": 12.25}, "points_per_bohr"),
                         ({"kind": "molecule"}, "r"), ({"Z": float("nan")}, "Z")]:
        with pytest.raises(ConfigError) as e:
            from_dict(dataset1d.SystemSpec, {**good, **change})
        assert _field_of(e) == name, (change, str(e.value))
    with pytest.raises(ConfigError, match="kind"):
        dataset1d.dataset_specs("ions", "train")
    with pytest.raises(ConfigError, match="split"):
        dataset1d.dataset_specs("atoms", "validation")


def test_spec_is_frozen_and_hashable():
    spec = dataset1d.dataset_specs("atoms", "test")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.Z = 3.0
    assert len({spec, dataclasses.replace(spec)}) == 1


def test_unconverged_two_electron_state_is_refused(monkeypatch):
    """The residual is checked after every method, the ARPACK fallback included: with a
    tolerance nothing can meet, the solve raises instead of returning a state."""
    x = np.linspace(-5, 5, 41)
    V = -1 / (np.abs(x) + 1)
    assert solver1d.solve_two_electrons(x, V).residual < solver1d.RESIDUAL_TOL
    monkeypatch.setattr(solver1d, "RESIDUAL_TOL", 0.0)
    monkeypatch.setattr(solver1d, "MAX_RESIDUAL", 0.0)
    with pytest.raises(RuntimeError, match=r"not converged: residual .* with method 'eigsh'"):
        solver1d.solve_two_electrons(x, V)
