"""Many-electron atoms (seed 000): exact inversion, the gauge, the shipped density tables."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from qpnn_hpc.atoms import densities as atoms
from qpnn_hpc.atoms import radial
from qpnn_hpc.atoms import tail
from qpnn_hpc.inverse.systems import make_system

ROOT = Path(__file__).resolve().parents[2]

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
    """A Gaussian-like tail (exp(-r^2) beyond r = 4) inverts to a rising v; the graft at
    3.5 bohr restores v = -1/r (IP = 0.5; a1 = a2 = 0 to rounding) beyond it, continuously."""
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
    g = atoms.graft_tail(r, rho_b, drho_b, lap_b, ip=0.5, r_match=3.5)
    v = atoms.invert(r, *g[:3], -0.5)
    far = r >= 3.5
    np.testing.assert_allclose(v[far], -1 / r[far], atol=1e-6)
    assert abs(g[3]["a1"]) < 1e-6 and abs(g[3]["a2"]) < 1e-6
    assert np.abs(np.diff(v[r > 1])).max() < 0.01  # continuous on the grid (dr = 0.01)


def _one_sided(r, v, j, side):
    """v'(r_j) and v''(r_j) from a quartic through the 7 grid points on one side of j."""
    idx = np.arange(j - 6, j + 1) if side < 0 else np.arange(j, j + 7)
    c = np.polyfit(r[idx] - r[j], v[idx], 4)
    return np.array([c[-2], 2 * c[-3]])


@pytest.mark.parametrize("r_match", [2.0, 3.0, 4.0])
def test_graft_keeps_v_eff_smooth(r_match):
    """The switch to the asymptotic series matches ln n and its first four derivatives, so
    v_eff's slope and curvature are continuous there (the network fits v_eff's slope: a jump is
    a corner it cannot follow). A two-shell density n = exp(-2r) + 0.05 r^2 exp(-r), whose ln n
    is not yet the series at 2-4 bohr: jumps measured 2e-11 Ha/bohr and 2e-8 Ha/bohr^2 (asserted
    1e-6 and 1e-5)."""
    r = np.linspace(0.05, 12.0, 11951)
    inner, outer = np.exp(-2 * r), 0.05 * r ** 2 * np.exp(-r)
    n = inner + outer
    dn = -2 * inner + outer * (2 / r - 1)
    lap = 4 * inner + 0.05 * np.exp(-r) * (2 - 4 * r + r ** 2) + 2 * dn / r
    u, du, d2u = tail.to_log(r, n, dn, lap, "radial")
    kappa = 0.5                                                     # n ~ r^2 exp(-r): IP = 1/8, z = 1
    beta, a1 = tail.beta_of(kappa, 1.0, "radial"), tail.a1_of(kappa, 1.0, "radial", 0)
    _, gdu, gd2u, info = tail.graft_log(r, u, du, d2u, kappa, beta, a1, r_match)
    v = 0.5 * tail.kinetic(r, gdu, gd2u, "radial")
    j = int(np.nonzero(r >= r_match)[0][0])
    jump = _one_sided(r, v, j, +1) - _one_sided(r, v, j, -1)
    assert abs(jump[0]) < 1e-6 and abs(jump[1]) < 1e-5, jump
    assert info["a1"] == a1 and info["r_match"] == r[j]


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
    # the tail is grafted: beyond r_match v_eff is the inversion of the asymptotic series
    # exp(a0 + 2 beta ln r - 2 kappa r + a1/r + ... + a5/r^5), and v_eff(10) is the exact asymptote
    # -1/10 + l(l+1)/200 (l = 0 for Li and Be's 2s, 1 for Ne's 2p) within 3 mHa (measured: Li 0.2,
    # Be 2.4, Ne 0.6; the C2 graft of before, without the centrifugal term: Ne +12, Li -9)
    g = ti["meta"]["graft"]
    far = r >= g["r_match"]
    a = {p: g[f"a{p}"] for p in (1, 2, 3, 4, 5)}
    du = 2 * g["beta"] / r - 2 * g["kappa"] - sum(p * c / r ** (p + 1) for p, c in a.items())
    d2u = -2 * g["beta"] / r ** 2 + sum(p * (p + 1) * c / r ** (p + 2) for p, c in a.items())
    np.testing.assert_allclose(v[far], (ti["mu"] + 0.5 * atoms.kinetic_from_log(r, du, d2u))[far],
                               rtol=1e-6, atol=1e-8)
    ell = ti["meta"]["tail"]["l"]
    assert ell == (1 if atom == "ne" else 0)
    assert abs(np.interp(10.0, r, v) - (-0.1 + ell * (ell + 1) / 200)) < 0.003
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
    from qpnn_hpc.inverse.trial import TrialSpec, run_trial
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
    """jobs/atoms.toml: 3 atoms x 2 gauges x 10 trials, the seed-000 network and budget, with
    ln r input, the volume-weighted loss, the cosine learning rate, Be and Ne 1500 epochs and
    Ne's three starts per trial;
    jobs/atoms/seed_settings.toml: the same with the seed's own settings."""
    from qpnn_hpc.campaigns import files as campaign
    monkeypatch.chdir(ROOT)  # the table paths are relative to the repository root
    c = campaign.load(ROOT / "jobs/atoms.toml")
    assert len(c.specs) == 60
    s = c.specs[0]
    assert s.system["geometry"] == "radial" and (s.system["lo"], s.system["hi"]) == (0.1, 10.0)
    assert s.model.widths == (64, 128, 128) and s.model.residual and s.model.activation == "tanh"
    assert (s.train.epochs, s.train.points, s.train.weight_decay) == (500, 5000, 1e-4)
    assert (s.train.lr, s.train.lr_final) == (1e-2, 1e-4) and s.train.clip_norm is not None
    assert s.model.log_radius and s.loss.volume_weight and s.loss.anchor_mode == "exact"
    files = {sp.system["file"] for sp in c.specs}
    assert files == {f"qpnn_hpc/data/{a}_{g}.npz" for a in atoms.ATOMS for g in atoms.GAUGES}
    # Li: the seed's 500 epochs; Be and Ne 1500; Ne three starts, the lowest final loss kept
    budget = {(sp.system["file"].split("/")[-1][:2], sp.train.epochs, sp.train.restarts) for sp in c.specs}
    assert budget == {("li", 500, 1), ("be", 1500, 1), ("ne", 1500, 1)}
    seed = campaign.load(ROOT / "jobs/atoms/seed_settings.toml")
    s = seed.specs[0]
    assert len(seed.specs) == 60 and s.train.lr == 1e-3 and s.train.lr_final is None
    assert not s.model.log_radius and not s.loss.volume_weight


@pytest.mark.parametrize("atom", SHIPPED)
def test_grafted_tail_has_no_bump(atom):
    """Beyond its graft's r_match, every shipped table's v_eff rises monotonically onto the
    asymptote: no local minimum on [r_match, 10] bohr. Ne's table before the C2 graft (ln rho
    blended into a form fitted on [1, 4] over [1.0, 2.5] bohr) had a 0.1 Ha well at 2.4 bohr
    (v_eff(2.0) = -0.158, v_eff(2.4) = -0.258 Ha): the network smoothed it and carried -2 to
    -3 mHa into every Ne energy (and +70 mHa with an anchor on it). Now (the C4 series from
    0.98 bohr): v_eff(2.0) = -0.258, v_eff(2.4) = -0.238 Ha. Li and Be are grafted at 3 bohr
    (their blends of before: a 1.3 mHa dip past 6 bohr, and none)."""
    t = atoms.load_table(atom, "ionisation")
    g = t["meta"]["graft"]
    r, v = atoms.effective_potential(t)
    m = (r >= g["r_match"]) & (r <= 10.0)
    assert np.all(np.diff(v[m]) > 0), r[m][1:][np.diff(v[m]) <= 0][:5]


def test_campaign_anchors_keep_off_the_graft(monkeypatch):
    """Every anchor of jobs/atoms.toml is its table's and lies at least KINK_MARGIN from the
    table's graft radius r_match, where the input gives way to the series (Ne: r_match 0.98, r0 = 2)."""
    from qpnn_hpc.atoms.importer import KINK_MARGIN
    from qpnn_hpc.campaigns import files as campaign
    monkeypatch.chdir(ROOT)
    c = campaign.load(ROOT / "jobs/atoms.toml")
    seen = set()
    for s in c.specs:
        t = atoms.load_table(ROOT / s.system["file"])
        g = t["meta"]["graft"]
        assert s.loss.anchor is None, s.system["file"]
        r0 = float(t["anchor"])
        assert g is None or abs(r0 - g["r_match"]) >= KINK_MARGIN, (s.system["file"], r0)
        seen.add((t["meta"]["atom"].lower(), r0))
    assert seen == {("li", 2.0), ("be", 2.0), ("ne", 2.0)}, seen


def test_tuned_atoms_campaign_expands(monkeypatch):
    from qpnn_hpc.campaigns import files as campaign
    monkeypatch.chdir(ROOT)
    c = campaign.load(ROOT / "jobs/atoms/tuned.toml")
    assert len(c.specs) == 15 and c.specs[0].train.lr == 1e-2 and c.specs[0].train.lr_final == 1e-4


# ----------------------------------------------------------------------------- round trip

def test_forward_solver_gives_hydrogen():
    """-1/2 Lap - 1/r: eps = -1/2 and rho = exp(-2r)/pi (O(h^2) finite differences, h = 1e-3)."""
    eps, r, rho = radial.ground_state(lambda r: -1.0 / r, 30.0, 1.0, 1e-3)
    assert eps == pytest.approx(-0.5, abs=1e-6)
    assert radial.density_l2(r, rho, np.exp(-2 * r) / np.pi) < 1e-5


@pytest.mark.parametrize("atom", SHIPPED)
def test_round_trip_of_the_exact_inversion(atom):
    """The exact inversion returns the input density: the floor of the round trip.
    Measured (h = 1e-3): eigenvalue -0.05 / -0.17 / -1.78 mHa, L2 5.5e-4 / 1.6e-3 / 4.3e-3
    (Li / Be / Ne, the C4-grafted tables)."""
    t = atoms.load_table(atom, "ionisation")
    r, v = atoms.effective_potential(t)
    m = (r >= 0.1) & (r <= 10.0)
    res = radial.round_trip(t, r[m], v[m])
    assert abs(res["eigenvalue_error"]) < 3e-3 and res["density_l2"] < 1e-2, res
    # a potential 50 mHa too high on [0.1, 2] (and right elsewhere) is seen: the eigenvalue
    # rises by about 50 mHa times the share of the density there (measured 27 / 30 / 43 mHa;
    # L2 0.48 / 0.20 / 0.005: the density of Ne, held by its core, barely moves)
    bad = radial.round_trip(t, r[m], v[m] + 0.05 * (r[m] < 2.0))
    assert bad["eigenvalue_error"] > 0.02 and bad["density_l2"] > res["density_l2"], bad


# ----------------------------------------------------------------------------- radial options

def shipped(atom: str) -> str:
    """A shipped table as campaign files name it: the spec, hence the trial's seed and
    numbers, is then the same in any checkout (an absolute path would change them)."""
    return f"qpnn_hpc/data/{atom}_ionisation.npz"


def radial_spec(file, lo=0.1, hi=10.0, **over):
    """A fast radial QPNN spec: 64-64 tanh residual, input ln r, volume-weighted loss,
    Adam lr 1e-2 -> 1e-4, exact anchor (the jobs/atoms.toml recipe, smaller)."""
    from qpnn_hpc.inverse.trial import TrialSpec
    d = dict(system=dict(name="tabulated", file=str(file), geometry="radial", lo=lo, hi=hi),
             method="qpnn", model=dict(widths=[64, 64], activation="tanh", residual=True, log_radius=True),
             train=dict(epochs=400, points=500, lr=1e-2, lr_final=1e-4, clip_norm=1.0),
             loss=dict(anchor_mode="exact", volume_weight=True), dtype="float32",
             sampler=dict(chains=50, burn_in=50, thin=1),
             eval=dict(energy_sweeps=4, uniform_energy_points=4000, grid_points=1000))
    d.update(over)
    return TrialSpec.from_dict(d)


def test_volume_weights_give_the_3d_mean():
    """w = r^2: the mean of w f over uniform r is <r^2> times the mean of f over the 3D shell."""
    from qpnn_hpc.inverse.losses import volume_weights
    r = torch.linspace(0.1, 10.0, 200001, dtype=torch.float64)
    f = 1.0 / r + torch.cos(r)
    mean_r = float(torch.trapezoid(volume_weights(r) * f, r)) / 9.9
    shell = 4 / 3 * np.pi * (10.0 ** 3 - 0.1 ** 3)
    mean_3d = float(torch.trapezoid(4 * np.pi * r * r * f, r)) / shell
    r2 = (10.0 ** 3 - 0.1 ** 3) / (3 * 9.9)
    assert mean_r == pytest.approx(r2 * mean_3d, rel=1e-9)


def test_radial_options_need_a_radial_system():
    from qpnn_hpc.config import ConfigError
    from qpnn_hpc.inverse.trial import TrialSpec
    with pytest.raises(ConfigError, match=r"^model.log_radius: needs a radial system.*set log_radius = false"):
        TrialSpec.from_dict(dict(system=dict(name="hydrogen"), method="qpnn", model=dict(log_radius=True)))
    with pytest.raises(ConfigError, match=r"^loss.volume_weight: needs a radial system"):
        TrialSpec.from_dict(dict(system=dict(name="harmonic_oscillator"), method="qpnn",
                                 loss=dict(volume_weight=True)))
    with pytest.raises(ConfigError, match=r"^loss.volume_weight: applies to uniform points \(method qpnn\)"):
        radial_spec(atoms.table_path("li"), method="mpnn")


def test_new_options_keep_earlier_ids():
    """log_radius and volume_weight are left out of the canonical spec at their defaults, so
    every spec written before they existed keeps its id and random streams."""
    from qpnn_hpc.config import to_dict
    from qpnn_hpc.inverse.trial import TrialSpec
    s = TrialSpec.from_dict(dict(system=dict(name="hydrogen"), method="mpnn", seed=3))
    d = to_dict(s)
    assert "log_radius" not in d["model"] and "volume_weight" not in d["loss"]
    assert s.id == "f04ca4dfbcfcf492"   # the id this spec had before the two fields were added
    on = radial_spec(atoms.table_path("li"))
    assert to_dict(on)["model"]["log_radius"] is True and to_dict(on)["loss"]["volume_weight"] is True


def write_hydrogen_table(folder: Path) -> dict:
    """Hydrogen 1s as a radial table, ``folder``/h_ionisation.npz; returns the table."""
    r = np.linspace(0.05, 12.0, 1196)
    rho, drho, lap = hydrogen(r)
    t = dict(x=r, density=rho, drho=drho, lap_rho=lap, kinetic_local=1 - 2 / r, mu=-0.5)
    np.savez(folder / "h_ionisation.npz", potential=-1 / r, energy=-0.5, anchor=2.0, anchor_value=-0.5, **t)
    return t


def test_fast_radial_qpnn_learns_coulomb(tmp_path, monkeypatch):
    """Hydrogen 1s as a radial table (v = -1/r exactly, eigenvalue -1/2), learned on [0.1, 10]
    with the atoms recipe: the eigenvalue within 2 mHa, max |U + 1/r| < 0.01 Ha on [0.5, 8],
    and the round trip returns the density within L2 0.005 (seeds 0-11: |E error| <= 0.72 mHa,
    max |U + 1/r| <= 0.0018 Ha, L2 <= 4e-4; `python benchmarks/atoms_fast_seeds.py --seeds 12`)."""
    from qpnn_hpc.inverse.trial import run_trial
    t = write_hydrogen_table(tmp_path)
    monkeypatch.chdir(tmp_path)  # a relative file name: the same spec (and seed) in every run
    res = run_trial(radial_spec("h_ionisation.npz"))
    assert abs(res.energy + 0.5) < 2e-3, res.energy
    m = (res.grid >= 0.5) & (res.grid <= 8.0)
    assert np.abs(res.potential[m] + 1 / res.grid[m]).max() < 0.01
    assert radial.round_trip(t, res.grid, res.potential)["density_l2"] < 0.005


@pytest.mark.parametrize("atom", [a for a in ("li", "be") if a in SHIPPED])
def test_fast_radial_qpnn_on_the_campaign_domain(atom):
    """Li and Be on the campaign's domain [0.1, 10] with the atoms recipe (64-64, 400 epochs of
    500 points): eigenvalue within 5 mHa (seed 000: 66 / 47 mHa) and max |U - v_eff| < 0.05 Ha
    on [0.5, 8], the campaign's tolerance. Seeds 0-11 measured (`python
    benchmarks/atoms_fast_seeds.py --atoms li be ne --seeds 12`, 2026-11-30, C4-grafted tables):
    Li |E error| <= 2.30 mHa, max |U - v_eff| <= 0.035 Ha; Be <= 3.75 mHa, <= 0.0104 Ha. Ne is
    not a unit test: at this budget its 12 seeds spread -7.2 .. +11.0 mHa (the campaign's
    1500 epochs of 5000 points on a 64-128-128 network are what bring it within 5 mHa;
    jobs/atoms.toml)."""
    from qpnn_hpc.inverse.trial import run_trial
    res = run_trial(radial_spec(shipped(atom)))
    assert abs(res.energy - res.energy_exact) < 5e-3, res.energy - res.energy_exact
    m = (res.grid >= 0.5) & (res.grid <= 8.0)
    assert np.abs(res.potential[m] - res.potential_true[m]).max() < 0.05


def test_atoms_campaign_report(tmp_path):
    """A small atoms campaign (Li in both gauges, 2 trials) through `qpnn-hpc run` and
    `qpnn-hpc report`: the atoms section's Table 1 equals the errors recomputed from the
    file, the round trip has its floor row, and both figures are written."""
    from tests.conftest import qpnn
    from qpnn_hpc.atoms import report as atoms_report
    from qpnn_hpc.atoms import radial
    from qpnn_hpc.inverse import report
    from qpnn_hpc.campaigns import store as results
    camp = tmp_path / "atoms_small.toml"
    systems = "".join(f'[[systems]]\nname = "tabulated"\nfile = "qpnn_hpc/data/li_{g}.npz"\n'
                      'geometry = "radial"\nlo = 0.1\nhi = 10.0\n\n' for g in atoms.GAUGES)
    camp.write_text(
        'name = "atoms_small"\ntrials = 2\nmethods = ["qpnn"]\n\n[defaults]\n'
        'model = { widths = [32, 32], log_radius = true }\n'
        'train = { epochs = 200, points = 300, lr = 1e-2, lr_final = 1e-4 }\n'
        'loss = { anchor_mode = "exact", volume_weight = true }\n'
        'sampler = { chains = 50, burn_in = 50, thin = 1 }\n'
        'eval = { energy_sweeps = 4, uniform_energy_points = 2000, grid_points = 1000 }\n\n' + systems)
    out = tmp_path / "atoms.h5"
    qpnn("run", camp, "--out", out, "--batch", 2, "--quiet")
    qpnn("report", out, "--out", tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "### Table 1: reference vs learned energy" in md and "### Round trip" in md
    for png in ("atoms_energy_per_trial.png", "atoms_potential.png"):
        assert (tmp_path / "rep" / png).stat().st_size > 10_000
    table = results.read_table(out)
    groups = atoms_report.analyse(table, report.groups(table))
    assert [(g["atom"], g["gauge"]) for g in groups] == [("li", "energy"), ("li", "ionisation")]
    for g in groups:
        t = atoms.load_table("li", g["gauge"])
        err = 1e3 * (table["energy"][g["rows"]] - t["energy"])
        assert g["mean_err_mha"] == pytest.approx(err.mean(), abs=1e-9)
        assert f"| Li | {g['gauge']} |" in md and f"{g['mean_err_mha']:+.2f}" in md
        assert abs(g["mean_err_mha"]) < 66.0             # seed 000's Li error, even at this budget
        # the round trip of each trial and its floor (the tiny budget leaves Li's sensitive
        # valence density off by L2 0.03-0.6 here; the campaign's figures are in jobs/atoms.toml)
        assert g["floor_l2"] < 1e-3 and len(g["trip_l2"]) == 2 and g["setting"] == ""
        i = g["rows"][1]  # the report's round trip is that of the trial's own potential
        m = np.isfinite(table["grid"][i])
        trip = radial.round_trip(t, table["grid"][i][m], table["potential"][i][m])
        assert g["trip_l2"][1] == pytest.approx(trip["density_l2"], rel=1e-12)
        assert g["trip_eig_mha"][1] == pytest.approx(1e3 * trip["eigenvalue_error"], rel=1e-12)
    # two settings on one table (a grid, an ablation) stay apart, each row named by its setting
    li_e = groups[0]["rows"]
    split = atoms_report.analyse(table, [{"label": "A", "rows": li_e[:1]}, {"label": "B", "rows": li_e[1:]}])
    assert [(g["setting"], len(g["rows"])) for g in split] == [("A", 1), ("B", 1)]
    assert "| Li (B) | energy |" in atoms_report.markdown(split)
    # the independent check: each table's v_eff against -1/r on its outer half [6, 12] bohr
    # (the shipped Li graft: 0.0002 Ha; the C2 graft of before, 0.017), the graft recorded
    for g in atoms.GAUGES:
        row = next(ln for ln in md.splitlines() if ln.startswith(f"| `qpnn_hpc/data/li_{g}.npz` | radial | grafted |"))
        assert float(row.split("|")[4].split()[0]) < 0.003 and "([6.00, 12.00])" in row
