"""Analytic systems: local energy, Laplacians, tabulated densities."""
import math

import numpy as np
import pytest
import torch

from qpnn_hpc.inverse import autodiff
from qpnn_hpc.config import ConfigError
from qpnn_hpc.inverse.systems import TabulatedDensity, make_system

ANALYTIC = [
    ("harmonic_oscillator", {"levels": [0]}),
    ("harmonic_oscillator", {"levels": [2]}),
    ("harmonic_oscillator", {"levels": [3], "omega": 1.7}),
    ("harmonic_oscillator", {"dim": 2, "levels": [1, 2], "omega": 0.8}),
    ("harmonic_oscillator", {"dim": 3, "levels": [0, 0, 0]}),
    ("hydrogen", {}),
    ("hydrogen", {"Z": 2.0}),
]


def _points(system, n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor([b[0] for b in system.box], dtype=torch.float64)
    hi = torch.tensor([b[1] for b in system.box], dtype=torch.float64)
    # stay within the region where |psi| is far from underflow
    return 0.6 * (lo + (hi - lo) * torch.rand((n, system.dim), generator=g, dtype=torch.float64))


@pytest.mark.parametrize("name,params", ANALYTIC)
def test_local_energy_with_true_potential_is_constant(name, params):
    s = make_system(name, params)
    x = _points(s)
    e = -0.5 * s.kinetic_local(x) + s.potential(x)
    assert torch.max(torch.abs(e - s.exact_energy)) < 1e-8


@pytest.mark.parametrize("name,params", ANALYTIC)
def test_analytic_kinetic_matches_autograd_laplacian(name, params):
    s = make_system(name, params)
    x = _points(s)
    psi = s.psi(x)
    keep = psi > 1e-3 * psi.max()  # away from nodes, where Lap|psi|/|psi| is 0/0
    lap = autodiff.laplacian(s.psi, x, create_graph=False)
    ratio = (lap / psi)[keep]
    np.testing.assert_allclose(ratio.detach(), s.kinetic_local(x)[keep], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name,params", ANALYTIC)
def test_autograd_laplacian_matches_finite_differences(name, params):
    s = make_system(name, params)
    x = _points(s, n=50)
    h = 1e-4
    fd = torch.zeros(x.shape[0], dtype=torch.float64)
    for i in range(s.dim):
        e = torch.zeros(s.dim, dtype=torch.float64)
        e[i] = h
        fd += (s.psi(x + e) - 2 * s.psi(x) + s.psi(x - e)) / h ** 2
    lap = autodiff.laplacian(s.psi, x, create_graph=False).detach()
    np.testing.assert_allclose(lap, fd, rtol=1e-5, atol=1e-5)


def test_radial_laplacian_of_hydrogen():
    r = torch.linspace(0.2, 8.0, 50, dtype=torch.float64)[:, None]
    lap = autodiff.radial_laplacian(lambda r: torch.exp(-r[..., 0]), r, create_graph=False)
    np.testing.assert_allclose(lap / torch.exp(-r[:, 0]), 1 - 2 / r[:, 0], rtol=1e-12)


def test_normalisation_of_analytic_states():
    s = make_system("harmonic_oscillator", {"levels": [2], "omega": 1.3})
    x = torch.linspace(-5, 5, 20001, dtype=torch.float64)[:, None]
    assert abs(torch.trapezoid(s.psi(x) ** 2, x[:, 0]).item() - 1) < 1e-8
    h = make_system("hydrogen", {})
    r = torch.linspace(1e-6, 30, 200001, dtype=torch.float64)
    pts = torch.stack([r, 0 * r, 0 * r], -1)
    assert abs(torch.trapezoid(4 * math.pi * r ** 2 * h.psi(pts) ** 2, r).item() - 1) < 1e-8


def test_tabulated_radial_hydrogen_density_inverts_to_coulomb():
    r = np.linspace(0.05, 12, 2400)
    t = TabulatedDensity(r, np.exp(-2 * r) / np.pi, geometry="radial", anchor=1.0, anchor_value=-1.0)
    x = torch.linspace(0.3, 10, 200, dtype=torch.float64)[:, None]
    # v_eff(r) = E + (1/2) Lap sqrt(rho) / sqrt(rho) = -1/r for E = -0.5
    v = -0.5 + 0.5 * t.kinetic_local(x).detach()
    np.testing.assert_allclose(v, -1 / x[:, 0], atol=1e-6)


def test_tabulated_line_density_with_gradient():
    x = np.linspace(-6, 6, 1201)
    t = TabulatedDensity(x, np.exp(-x ** 2) / np.sqrt(np.pi), geometry="line", anchor=0.0, anchor_value=0.0)
    pts = torch.linspace(-4, 4, 81, dtype=torch.float64)[:, None].requires_grad_(True)
    g = t.kinetic_local(pts)
    np.testing.assert_allclose(g.detach(), pts[:, 0].detach() ** 2 - 1, atol=1e-6)
    dg = autodiff.gradient(g, pts)[:, 0]
    np.testing.assert_allclose(dg.detach(), 2 * pts[:, 0].detach(), atol=1e-4)


@pytest.mark.parametrize("bad,match", [(-1.0, "positive"), (np.nan, "NaN")])
def test_tabulated_density_rejects_bad_values(bad, match):
    x = np.linspace(-3, 3, 50)
    n = np.exp(-x ** 2)
    n[10] = bad
    with pytest.raises(ConfigError, match=f"system.density.*{match}"):
        TabulatedDensity(x, n)


def test_tabulated_from_file(tmp_path):
    x = np.linspace(-6, 6, 601)
    f = tmp_path / "ho.npz"
    np.savez(f, x=x, density=np.exp(-x ** 2) / np.sqrt(np.pi), potential=0.5 * x ** 2, energy=0.5)
    s = make_system("tabulated", {"file": str(f), "lo": -5.0, "hi": 5.0})
    assert s.box == ((-5.0, 5.0),) and s.exact_energy == 0.5 and s.has_potential
    with pytest.raises(ConfigError, match="system.file"):
        make_system("tabulated", {"file": str(tmp_path / "missing.npz")})


def test_anchor_outside_box_and_unknown_system():
    s = make_system("hydrogen", {})
    with pytest.raises(ConfigError, match="loss.anchor.*outside"):
        s.anchor((7.0, 0.0, 0.0))
    with pytest.raises(ConfigError, match="system.name.*valid names are: harmonic_oscillator, hydrogen"):
        make_system("helium", {})
    with pytest.raises(ConfigError, match="unknown key.*system.Zeta.*valid keys"):
        make_system("hydrogen", {"Zeta": 1.0})


def test_anchor_value_belongs_to_its_point():
    """A table without a potential knows V at its own anchor only; a singular or non-finite
    anchor value is refused, naming the field."""
    r = np.linspace(0.05, 12, 600)
    t = TabulatedDensity(r, np.exp(-2 * r) / np.pi, geometry="radial", anchor=2.0, anchor_value=-0.5)
    assert t.anchor() == ((2.0,), -0.5) and t.anchor((2.0,)) == ((2.0,), -0.5)
    assert t.anchor((3.0,), -1 / 3) == ((3.0,), -1 / 3)
    with pytest.raises(ConfigError, match=r"^loss.anchor_value: the table's anchor_value is V at its anchor \[2.0\]"):
        t.anchor((3.0,))
    with pytest.raises(ConfigError, match=r"^loss.anchor_value: got nan"):
        t.anchor((3.0,), float("nan"))
    with pytest.raises(ConfigError, match=r"^loss.anchor: V at \[0.0, 0.0, 0.0\] is -inf"):
        make_system("hydrogen", {}).anchor((0.0, 0.0, 0.0))
    with pytest.raises(ConfigError, match=r"^loss.anchor \(unset: system 'hydrogen'.s default\): point"):
        make_system("hydrogen", {"half_width": 0.5}).anchor()


@pytest.mark.parametrize("n", [200, 201])
def test_hydrogen_cut_misses_the_nucleus(n):
    """Odd n in the symmetric box would put a midpoint on r = 0 (V = -inf in the results)."""
    h = make_system("hydrogen", {})
    s, pts = h.line(n)
    v = h.potential(torch.tensor(pts))
    assert len(s) == n and np.all(np.diff(s) > 0) and torch.isfinite(v).all()
    assert abs(s).min() >= 0.2 * 10.0 / n  # at least a fifth of a cell off the nucleus


def test_radial_atom_table_needs_radial_geometry():
    """The atom tables record geometry = "radial": loading one as a 1D line is refused."""
    with pytest.raises(ConfigError, match=r'^system.geometry: .*li_ionisation.npz.* is a .radial. table; '
                                          r'set geometry = "radial"'):
        make_system("tabulated", {"file": "qpnn_hpc/data/li_ionisation.npz"})


def test_shipped_tables_resolve_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = make_system("tabulated", {"file": "qpnn_hpc/data/li_ionisation.npz", "geometry": "radial",
                                  "lo": 0.1, "hi": 10.0})
    assert s.geometry == "radial" and s.box == ((0.1, 10.0),)


def test_high_ho_level_is_normalised_and_a_too_small_box_refused():
    """Issue 14: levels = [200] raised OverflowError (2^n n! in floats). The Hermite
    functions come from a stable recurrence: |psi_200|^2 integrates to 1 within 1e-10 on
    a grid of 0.0025 bohr, and the default box (half-width 5 < turning point 20) is refused."""
    import torch
    s = make_system("harmonic_oscillator", {"levels": [200], "half_width": 25.0})
    x = torch.linspace(-25, 25, 20001, dtype=torch.float64)[:, None]
    assert abs(float((s.psi(x) ** 2).sum()) * 0.0025 - 1) < 1e-10
    with pytest.raises(ConfigError, match=r"system.levels: level 200 .* turning point"):
        make_system("harmonic_oscillator", {"levels": [200]})


def _ho1_table(x):
    """The 1D HO first excited state (omega = 1): n = 2 x^2 e^(-x^2) / sqrt(pi), a node at 0."""
    return 2 * x ** 2 * np.exp(-x ** 2) / np.sqrt(np.pi)


@pytest.mark.parametrize("x0,h", [(0.0, 0.025), (1.3, 0.2)])
def test_tabulated_density_with_a_node_is_refused_naming_it(tmp_path, x0, h):
    """Issue 12: through the minimal table format (x, density) the spline of ln n spikes next
    to a node (the kinetic term ~1/(x - x0)^2, 1e4 /bohr^2): refused, naming the node within a
    grid step, on a fine and on a coarse grid, with the grid off the node."""
    x = np.arange(-5.0, 5.0, h) + 0.37 * h
    n = (x - x0) ** 2 * np.exp(-x ** 2)
    with pytest.raises(ConfigError, match=r"^system.density: has a node near x = (\S+) bohr") as e:
        TabulatedDensity(x, n)
    assert abs(float(e.value.args[0].split("near x = ")[1].split()[0]) - x0) < h
    # the same through a campaign's spec: refused before any work
    f = tmp_path / "node.npz"
    np.savez(f, x=x, density=n, anchor=2.0, anchor_value=2.0)
    from qpnn_hpc.inverse.trial import TrialSpec
    with pytest.raises(ConfigError, match=r"^system.density: has a node near"):
        TrialSpec.from_dict({"system": {"name": "tabulated", "file": str(f)}, "method": "mpnn"})


def test_tabulated_zero_inside_the_grid_is_a_node():
    x = np.linspace(-5, 5, 401)  # x = 0 on the grid: n = 0 there
    with pytest.raises(ConfigError, match=r"^system.density: vanishes at x = 0 bohr inside the grid \(a node\)"):
        TabulatedDensity(x, _ho1_table(x))


def test_tabulated_node_with_a_kinetic_column_is_exact():
    """With the table's own kinetic column (the atoms route) the node is harmless: the local
    energy with the true V is E = 1.5 Ha to 1e-6 right next to the node (today's spline of
    ln n alone is ~1e2-1e4 Ha off there, hence the refusal above)."""
    x = np.linspace(-5, 5, 400) + 0.013
    t = TabulatedDensity(x, _ho1_table(x), kinetic_local=x ** 2 - 3, potential=0.5 * x ** 2, energy=1.5)
    pts = torch.tensor([[-0.05], [-0.01], [0.002], [0.03], [1.0]], dtype=torch.float64)
    e = -0.5 * t.kinetic_local(pts) + t.potential(pts)
    np.testing.assert_allclose(e, 1.5, atol=1e-6)


@pytest.mark.parametrize("sep", [2.0, 4.0])
def test_tabulated_smooth_minimum_is_not_a_node(sep):
    """A barrier between two wells (a smooth minimum of n, e^-8 deep for sep = 4) is kept."""
    x = np.linspace(-8, 8, 801)
    n = np.exp(-(x - sep) ** 2) + np.exp(-(x + sep) ** 2)
    assert TabulatedDensity.find_node(x, n) is None
    TabulatedDensity(x, n)


def test_tabulated_default_anchor_is_where_the_density_lives():
    """A table with a potential and no anchor: the anchor is the densest grid point in the box
    (line: n; radial: r^2 n), not the midpoint, which for the HO n=1 table below is a node."""
    x = np.linspace(-5, 5, 400) + 0.013
    t = TabulatedDensity(x, _ho1_table(x), kinetic_local=x ** 2 - 3, potential=0.5 * x ** 2, lo=-4.0, hi=4.0)
    r0 = t.anchor()[0][0]
    assert abs(abs(r0) - 1.0) < 0.03 and t.anchor()[1] == pytest.approx(0.5 * r0 ** 2, rel=1e-6)
    r = np.linspace(0.05, 12, 600)
    h = TabulatedDensity(r, np.exp(-2 * r) / np.pi, geometry="radial", potential=-1 / r)
    assert abs(h.anchor()[0][0] - 1.0) < 0.02  # the maximum of r^2 e^(-2r)
    # without a potential the table's anchor_value belongs to the midpoint, as before
    assert TabulatedDensity(x, np.exp(-x ** 2), anchor_value=0.0).anchor() == ((0.5 * (x[0] + x[-1]),), 0.0)
