"""Many-electron atoms (seed 000): exact inversion, the gauge, the shipped density tables."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from qpnn_hpc import atoms
from qpnn_hpc.systems import make_system

ROOT = Path(__file__).resolve().parents[1]

# shell barrier of v_eff in the ionisation gauge (physics-reference, "Many-electron atoms"):
# atom -> (r_max bohr, height Ha); tolerances: position +-0.03 bohr, height +-4 %
BARRIERS = {"li": (1.42, 1.65), "be": (0.91, 3.4), "ne": (0.26, 16.2)}
SHIPPED = [a for a in atoms.ATOMS if atoms.table_path(a, "ionisation").exists()]


def hydrogen(r):
    rho = np.exp(-2 * r) / np.pi
    return rho, -2 * rho, 4 * rho - 4 * rho / r  # rho, rho', Lap rho = rho'' + 2 rho'/r


def test_hydrogen_inversion_is_coulomb():
    r = np.linspace(0.05, 12, 500)
    rho, drho, lap = hydrogen(r)
    np.testing.assert_allclose(atoms.kinetic_local(r, rho, drho, lap), 1 - 2 / r, rtol=1e-12)
    v = atoms.invert(r, rho, drho, lap, mu=atoms.gauge_mu("ionisation", e_total=-0.5, ip=0.5))
    np.testing.assert_allclose(v, -1 / r, rtol=1e-12)
    # energy gauge: the same curve shifted by E_total + IP (= 0 for a one-electron atom)
    np.testing.assert_allclose(atoms.invert(r, rho, drho, lap, mu=-0.5), -1 / r, rtol=1e-12)
    _, du, d2u = atoms.log_derivatives(r, rho, drho, lap)
    np.testing.assert_allclose(atoms.kinetic_from_log(r, du, d2u), 1 - 2 / r, rtol=1e-12)


def test_graft_keeps_an_exact_tail():
    """Hydrogen's tail already has the asymptotic form (beta = 0): the graft changes nothing."""
    r = np.linspace(0.05, 12, 1196)
    rho, drho, lap = hydrogen(r)
    rho2, drho2, lap2, info = atoms.graft_tail(r, rho, drho, lap, ip=0.5, r_match=5.0)
    assert info["beta"] == pytest.approx(0.0) and info["a1"] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(rho2, rho, rtol=1e-9)
    np.testing.assert_allclose(atoms.invert(r, rho2, drho2, lap2, -0.5), -1 / r, rtol=1e-8, atol=1e-9)


def test_graft_repairs_a_wrong_tail():
    """A Gaussian-like tail (exp(-r^2) beyond r = 4) inverts to a rising v; the graft
    restores v -> -1/r (IP = 0.5) beyond the window, continuously."""
    r = np.linspace(0.05, 12, 1196)
    rho, drho, lap = hydrogen(r)
    s = np.where(r > 4, (r - 4) ** 2, 0.0)
    ds = np.where(r > 4, 2 * (r - 4), 0.0)
    rho_b = rho * np.exp(-s)
    drho_b = rho_b * (-2 - ds)
    d2 = rho_b * ((-2 - ds) ** 2 - np.where(r > 4, 2.0, 0.0))
    lap_b = d2 + 2 * drho_b / r
    v_bad = atoms.invert(r, rho_b, drho_b, lap_b, -0.5)
    assert v_bad[-1] > 10
    g = atoms.graft_tail(r, rho_b, drho_b, lap_b, ip=0.5, r_match=3.5, width=0.4)
    v = atoms.invert(r, *g[:3], -0.5)
    far = r > 4
    np.testing.assert_allclose(v[far], -1 / r[far], atol=1e-6)
    assert np.abs(np.diff(v[r > 1])).max() < 0.01  # continuous on the grid (dr = 0.01)


@pytest.mark.parametrize("atom", SHIPPED)
def test_table_barrier_and_gauges(atom):
    ti = atoms.load_table(atom, "ionisation")
    te = atoms.load_table(atom, "energy")
    r, v = atoms.effective_potential(ti)
    rb, vb = atoms.barrier(r, v)
    r_ref, v_ref = BARRIERS[atom]
    assert abs(rb - r_ref) <= 0.03 and abs(vb - v_ref) <= 0.04 * v_ref, (rb, vb)
    # gauges: eigenvalue -IP / E_total; the anchors differ by the same constant
    assert ti["energy"] == pytest.approx(-ti["ip"]) and te["energy"] == pytest.approx(te["e_atom"])
    assert ti["ip"] == pytest.approx(ti["e_cation"] - ti["e_atom"])
    assert te["anchor_value"] - ti["anchor_value"] == pytest.approx(te["e_cation"])
    np.testing.assert_array_equal(ti["kinetic_local"], te["kinetic_local"])
    for t in (ti, te):  # the potential column is the exact inversion in the table's gauge
        np.testing.assert_allclose(t["potential"], t["mu"] + 0.5 * t["kinetic_local"], rtol=1e-12)
    # the tail is grafted: beyond the blend window v_eff is the inversion of the asymptotic
    # form exp(a0 + 2 beta ln r - 2 kappa r + a1/r), and v_eff(10) = -1/10 within 10 mHa
    g = ti["meta"]["graft"]
    far = r > g["r_match"] + g["width"]
    du = 2 * g["beta"] / r - 2 * g["kappa"] - g["a1"] / r ** 2
    d2u = -2 * g["beta"] / r ** 2 + 2 * g["a1"] / r ** 3
    np.testing.assert_allclose(v[far], (ti["mu"] + 0.5 * atoms.kinetic_from_log(r, du, d2u))[far],
                               rtol=1e-6, atol=1e-8)
    assert abs(np.interp(10.0, r, v) + 0.1) < 0.01
    # the stored column is the inversion of the stored rho, rho', Lap rho
    np.testing.assert_allclose(ti["kinetic_local"],
                               atoms.kinetic_local(r, ti["density"], ti["drho"], ti["lap_rho"]), rtol=1e-12)


@pytest.mark.parametrize("atom", SHIPPED)
def test_tabulated_system_carries_the_gauge(atom):
    for gauge in atoms.GAUGES:
        t = atoms.load_table(atom, gauge)
        sys_ = make_system("tabulated", {"file": str(atoms.table_path(atom, gauge)), "geometry": "radial",
                                         "lo": 0.1, "hi": 10.0})
        assert sys_.exact_energy == pytest.approx(t["energy"]) and sys_.has_potential
        (r0,), v0 = sys_.anchor()
        assert r0 == pytest.approx(2.0) and v0 == pytest.approx(t["anchor_value"])
        r = torch.tensor([[0.5], [1.0], [2.0], [5.0]], dtype=torch.float64)
        k = sys_.kinetic_local(r).numpy()
        np.testing.assert_allclose(k, np.interp(r[:, 0].numpy(), t["x"], t["kinetic_local"]), rtol=1e-6)
        # v_eff at the anchor from the system's own kinetic column
        assert t["mu"] + 0.5 * float(sys_.kinetic_local(torch.tensor([[2.0]], dtype=torch.float64))) \
            == pytest.approx(v0, abs=1e-9)


@pytest.mark.skipif(not os.environ.get("QPNN_PYSCF_TESTS"),
                    reason="set QPNN_PYSCF_TESTS=1 to regenerate Li/TZ with PySCF (about 1-2 min)")
@pytest.mark.slow
def test_regenerate_li_with_pyscf(tmp_path):
    pytest.importorskip("pyscf")
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_densities", ROOT / "jobs/atoms/make_densities.py")
    md = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(md)
    summary = md.make_atom("li", tmp_path, md.RECIPES["li"])
    assert summary["e_atom"] == pytest.approx(-7.474268, abs=2e-6)
    new = atoms.load_table(tmp_path / "li_ionisation.npz")
    old = atoms.load_table("li", "ionisation")
    assert new["ip"] == pytest.approx(old["ip"], abs=1e-7)
    np.testing.assert_allclose(new["density"], old["density"], rtol=1e-6)
    np.testing.assert_allclose(new["kinetic_local"], old["kinetic_local"], rtol=1e-5, atol=1e-6)


def test_fast_radial_qpnn_on_li():
    """A small radial QPNN (64-64 tanh residual, 400 epochs of 200 uniform points on [0.5, 8],
    Adam lr 1e-2 -> 1e-4, exact anchor at r0 = 2 in the ionisation gauge) learns Li's v_eff:
    eigenvalue within 15 mHa of -IP and max |U - v_eff| < 0.05 Ha on [0.5, 8]
    (measured on 4 seeds: |E error| 1.8-3.7 mHa, max |U - v_eff| 0.008-0.012 Ha; with lr 3e-3
    and 32-32, two seeds of four stuck near 300 mHa)."""
    from qpnn_hpc.trial import TrialSpec, run_trial
    path = atoms.table_path("li", "ionisation")
    spec = TrialSpec.from_dict(dict(
        system=dict(name="tabulated", file=str(path), geometry="radial", lo=0.5, hi=8.0),
        method="qpnn", model=dict(widths=[64, 64], activation="tanh", residual=True),
        train=dict(epochs=400, points=200, lr=1e-2, lr_final=1e-4, clip_norm=1.0),
        loss=dict(anchor_mode="exact"), dtype="float32",
        sampler=dict(chains=50, burn_in=50, thin=1),
        eval=dict(energy_sweeps=4, uniform_energy_points=2000, grid_points=101)))
    res = run_trial(spec)
    t = atoms.load_table("li", "ionisation")
    r, v = atoms.effective_potential(t)
    assert res.energy_exact == pytest.approx(-t["ip"])
    assert abs(res.energy - res.energy_exact) < 0.015, res.energy - res.energy_exact
    assert np.abs(res.potential - np.interp(res.grid, r, v)).max() < 0.05


def test_atoms_campaign_expands(monkeypatch):
    """jobs/atoms.toml: 3 atoms x 2 gauges x 10 trials with the seed-000 settings."""
    from qpnn_hpc import campaign
    monkeypatch.chdir(ROOT)  # the table paths are relative to the repository root
    c = campaign.load(ROOT / "jobs/atoms.toml")
    assert len(c.specs) == 60
    s = c.specs[0]
    assert s.system["geometry"] == "radial" and (s.system["lo"], s.system["hi"]) == (0.1, 10.0)
    assert s.model.widths == (64, 128, 128) and s.model.residual and s.model.activation == "tanh"
    assert (s.train.epochs, s.train.points, s.train.lr, s.train.weight_decay) == (500, 5000, 1e-3, 1e-4)
    assert s.train.clip_norm is not None
    files = {sp.system["file"] for sp in c.specs}
    assert files == {f"qpnn_hpc/data/{a}_{g}.npz" for a in atoms.ATOMS for g in atoms.GAUGES}


def test_tuned_atoms_campaign_expands(monkeypatch):
    from qpnn_hpc import campaign
    monkeypatch.chdir(ROOT)
    c = campaign.load(ROOT / "jobs/atoms/tuned.toml")
    assert len(c.specs) == 15 and c.specs[0].train.lr == 1e-2 and c.specs[0].train.lr_final == 1e-4
