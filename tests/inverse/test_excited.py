"""Hydrogen-like excited states (issue 12 item 5): 2s, 2p, 3d for any Z in 3D Cartesian
coordinates, with their exact V = -Z/r and E = -Z^2 / (2 n^2)."""
import math

import numpy as np
import pytest
import torch

from qpnn_hpc.config import ConfigError
from qpnn_hpc.inverse import autodiff
from qpnn_hpc.inverse.systems import make_system

STATES = [(s, Z) for s in ("1s", "2s", "2p", "3d") for Z in (1.0, 2.5)]
N = {"1s": 1, "2s": 2, "2p": 2, "3d": 3}


def _points(s, n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    hw = s.box[0][1]
    return 0.5 * hw * (2 * torch.rand((n, 3), generator=g, dtype=torch.float64) - 1)


@pytest.mark.parametrize("state,Z", STATES)
def test_exact_energy_and_local_energy(state, Z):
    s = make_system("hydrogen_like", {"state": state, "Z": Z})
    assert s.exact_energy == pytest.approx(-Z ** 2 / (2 * N[state] ** 2), rel=1e-15)
    x = _points(s)
    e = -0.5 * s.kinetic_local(x) + s.potential(x)
    assert torch.max(torch.abs(e - s.exact_energy)) < 1e-12


@pytest.mark.parametrize("state,Z", STATES)
def test_psi_is_an_eigenstate_by_autograd(state, Z):
    """The analytic Lap psi/psi equals autograd's Laplacian of psi away from the nodes."""
    s = make_system("hydrogen_like", {"state": state, "Z": Z})
    x = _points(s, n=200, seed=1)
    psi = s.psi(x)
    keep = psi > 1e-3 * psi.max()
    lap = autodiff.laplacian(s.psi, x, create_graph=False).detach() / psi
    np.testing.assert_allclose(lap[keep], s.kinetic_local(x)[keep], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("state,Z", STATES)
def test_normalised(state, Z):
    """int |psi|^2 d^3x = 1: the radial integral of the angular average on 1000 directions
    (a Fibonacci sphere, exact to ~1e-6 for these low-l orbitals) times 4 pi. The default box
    holds the sphere of radius half_width with >= 99.5% of the density (and half_width is that
    radius rounded up to 0.5 bohr)."""
    s = make_system("hydrogen_like", {"state": state, "Z": Z})
    k = np.arange(1000) + 0.5
    theta, phi = np.arccos(1 - 2 * k / 1000), np.pi * (1 + 5 ** 0.5) * k
    u = torch.tensor(np.stack([np.cos(theta), np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi)], -1))
    r = torch.linspace(1e-6, 60.0 / Z, 3001, dtype=torch.float64)
    ang = (s.psi(r[:, None, None] * u[None]) ** 2).mean(-1)
    cum = 4 * math.pi * torch.cumulative_trapezoid(r ** 2 * ang, r)
    assert abs(cum[-1].item() - 1) < 1e-5
    hw = s.box[0][1]
    inside = lambda radius: float(cum[int(torch.searchsorted(r, torch.tensor(radius, dtype=torch.float64))) - 1])
    assert inside(hw) >= 0.995 - 1e-4 and inside(hw - 0.5) < 0.995


@pytest.mark.parametrize("state,Z", STATES)
def test_default_box_and_anchor(state, Z):
    """The box holds 99.5% of the density; the anchor is the outer maximum of r^2 |psi|^2 on the
    x axis: off the nucleus (V finite, off the kink of |x|), off every node, V(r0) = -Z/r0."""
    s = make_system("hydrogen_like", {"state": state, "Z": Z})
    r0, v0 = s.anchor()
    x0 = torch.tensor([r0], dtype=torch.float64)
    assert r0[0] > 0.9 / Z and v0 == pytest.approx(-Z / r0[0])
    assert float(s.psi(x0)) > 0.3 * float(s.psi(torch.tensor([[r0[0] * 1.0001, 0, 0]], dtype=torch.float64)))
    # a 1% step outward lowers r^2 psi^2: a maximum
    f = [float((r ** 2) * s.psi(torch.tensor([[r, 0.0, 0.0]], dtype=torch.float64)) ** 2)
         for r in (0.99 * r0[0], r0[0], 1.01 * r0[0])]
    assert f[1] >= max(f[0], f[2])


def test_nodes_are_where_the_orbitals_say():
    x = torch.tensor([[2.0, 0, 0], [0.0, 1.3, -0.4], [1.0, math.sqrt(2), 0.0]], dtype=torch.float64)
    assert float(make_system("hydrogen_like", {"state": "2s"}).psi(x[:1])) < 1e-15       # r = 2/Z
    assert float(make_system("hydrogen_like", {"state": "2p"}).psi(x[1:2])) < 1e-15      # x = 0
    assert float(make_system("hydrogen_like", {"state": "3d"}).psi(x[2:])) < 1e-15       # 3 x^2 = r^2


def test_bad_state_and_charge_refused():
    with pytest.raises(ConfigError, match=r"^system.state: unknown '4f'; valid: 1s, 2p, 2s, 3d"):
        make_system("hydrogen_like", {"state": "4f"})
    with pytest.raises(ConfigError, match=r"^system.Z: must be > 0"):
        make_system("hydrogen_like", {"state": "2p", "Z": 0.0})


def test_excited_states_campaign_loads():
    """jobs/excited_states.toml: 3 states x 3 methods x 3 trials, default boxes and anchors."""
    from qpnn_hpc.campaigns import files
    from qpnn_hpc.inverse.trial import build_system
    from tests.conftest import ROOT
    c = files.load(ROOT / "jobs" / "excited_states.toml")
    assert c.kind == "trial" and len(c.specs) == 27
    anchors = {s.system["state"]: build_system(s).anchor()[0] for s in c.specs}
    assert anchors == {"2s": (3 + 5 ** 0.5, 0.0, 0.0), "2p": (4.0, 0.0, 0.0), "3d": (9.0, 0.0, 0.0)}


@pytest.mark.parametrize("state", ["2p", "3d"])
def test_mpnn_learns_the_coulomb_potential_of_a_nodal_state(state):
    """MPNN on 2p_x and 3d (the demo's network, radius_input, lr 3e-3, 300 epochs x 500 points,
    default anchor). Measured over seeds 0-5 (1 thread, ~15 s for 6 batched seeds): 2p error
    +1.0 +- 0.8 mHa (max 2.2), 3d -0.5 +- 0.4 (max 0.9); bound 4 mHa per trial (the larger mean
    plus ~3.5 sd). The nodal plane / cones keep the 20-sweep evaluation chains in their lobes:
    split R-hat 1.56-1.76 on those seeds (the quality gate's 1.05 flags them)."""
    d = {"system": {"name": "hydrogen_like", "state": state}, "method": "mpnn", "dtype": "float32",
         "model": {"widths": [64, 128, 128], "radius_input": True},
         "train": {"epochs": 300, "points": 500, "lr": 3e-3, "lr_final": 1e-5},
         "sampler": {"chains": 500, "burn_in": 300, "thin": 5}, "loss": {"anchor_mode": "exact"},
         "eval": {"energy_sweeps": 20, "eps_points": 200, "uniform_energy_points": 500, "grid_points": 21}}
    from qpnn_hpc.inverse.trial import TrialSpec, run_trials
    results = run_trials([TrialSpec.from_dict({**d, "seed": s}) for s in range(3)])
    err = np.array([1000 * (r.energy - r.energy_exact) for r in results])
    assert np.abs(err).max() < 4.0, err
    assert min(r.rhat for r in results) > 1.3
