"""Anchors that cannot trap (issue 12 item 2): the default anchor of every system is a point
where the network's inputs are smooth and the density is not small; a user anchor on the kink
of |x| (model.radius_input) is refused with the reason."""
import numpy as np
import pytest
import torch

from qpnn_hpc.config import ConfigError, from_dict
from qpnn_hpc.inverse.models import KINK_CLEARANCE, ModelConfig, anchor_on_kink
from qpnn_hpc.inverse.systems import make_system
from qpnn_hpc.inverse.trial import TrialSpec, run_trials

RADIUS = {"widths": [64, 128, 128], "radius_input": True}


def test_user_anchor_on_the_kink_of_the_radius_input_is_refused():
    base = {"system": {"name": "harmonic_oscillator", "dim": 3, "levels": [0, 0, 0]}, "method": "mpnn",
            "model": RADIUS}
    with pytest.raises(ConfigError, match=r"^loss.anchor: \[0.0, 0.0, 0.0\] is 0 bohr from the origin, where "
                                          r"the network's input \|x\| \(model.radius_input\) has a kink"):
        TrialSpec.from_dict({**base, "loss": {"anchor": [0.0, 0.0, 0.0]}})
    with pytest.raises(ConfigError, match=r"^loss.anchor: .* is 0.03 bohr from the origin"):
        TrialSpec.from_dict({**base, "loss": {"anchor": [0.0, 0.03, 0.0]}})
    # off the kink, without the |x| input, or in 1D (no |x| input there): accepted
    TrialSpec.from_dict({**base, "loss": {"anchor": [0.0, 2 * KINK_CLEARANCE, 0.0]}})
    TrialSpec.from_dict({**base, "model": {"radius_input": False}, "loss": {"anchor": [0.0, 0.0, 0.0]}})
    TrialSpec.from_dict({"system": {"name": "harmonic_oscillator", "levels": [0]}, "model": RADIUS,
                         "loss": {"anchor": [0.0]}})


SYSTEMS = [("harmonic_oscillator", {"dim": d, "levels": lv}) for d, lv in
           [(1, [0]), (1, [1]), (1, [2]), (2, [0, 0]), (2, [1, 0]), (2, [0, 2]), (3, [0, 0, 0]),
            (3, [1, 0, 0]), (3, [0, 1, 0]), (3, [0, 0, 2])]]
SYSTEMS += [("harmonic_oscillator", {"dim": 3, "levels": [0, 0, 0], "omega": 2.0})]
SYSTEMS += [("hydrogen", {})] + [("hydrogen_like", {"state": s, "Z": z}) for s in ("1s", "2s", "2p", "3d")
                                  for z in (1.0, 3.0)]


@pytest.mark.parametrize("name,params", SYSTEMS)
def test_default_anchor_is_off_every_kink_and_node(name, params):
    """No kink of the |x| input at r0, V(r0) finite, and the density at r0 at least 0.3 of its
    maximum along the line through r0 parallel to the first axis (no node, not a tail); for
    the Coulomb systems the radial density r^2 |psi|^2 (r0 off the nucleus, where V = -inf)."""
    s = make_system(name, params)
    r0, v0 = s.anchor()
    assert np.isfinite(v0)
    assert anchor_on_kink(ModelConfig(radius_input=True), s.dim, r0) is None
    lo, hi = s.box[0]
    line = torch.tensor(r0, dtype=torch.float64).repeat(2001, 1)
    line[:, 0] = torch.linspace(lo, hi, 2001, dtype=torch.float64)
    at = torch.tensor([r0], dtype=torch.float64)
    weight = (lambda x: (x * x).sum(-1)) if name.startswith("hydrogen") else (lambda x: 1.0)
    density = lambda x: s.psi(x) ** 2 * weight(x)
    assert float(density(at)) >= 0.3 * float(density(line).max())


@pytest.mark.parametrize("levels", [[0, 0, 0], [1, 0, 0]])
def test_3d_ho_reaches_the_1d_accuracy_without_a_hand_moved_anchor(levels):
    """The issue's trap: with radius_input the 3D HO's old default anchor, the origin, sits on
    the kink of |x|. MPNN, the demo's network, 500 epochs x 1000 points, float32, seeds 0-5
    (mHa, mean and sample std; 1 thread, ~25 s per 3 batched seeds on a loaded 2-core machine):
      3D ground, default anchor (1, 0, 0):  -3.0 +- 1.8     old anchor (0, 0, 0): +11.6 +- 7.5
      3D (1,0,0), default anchor (1, 0, 0): +0.1 +- 3.2     old anchor (0, 0, 0): +28 +- 35 (-20 .. +61)
      1D ground / first excited (the reference accuracy): -2.6 +- 0.5 / +2.4 +- 1.0
    Bounds on seeds 0-2: |mean| < 6 mHa (the 1D |mean| 2.6 plus ~2 standard errors of a 3-seed
    3D mean, 2 x 1.85) and every trial within 8 mHa; the old anchor fails both (seeds 0-2:
    mean +9.1 with a trial at +19.6; mean +7.6 with a trial at +53.4)."""
    d = {"system": {"name": "harmonic_oscillator", "dim": 3, "levels": levels, "half_width": 4.0},
         "method": "mpnn", "dtype": "float32", "model": RADIUS,
         "train": {"epochs": 500, "points": 1000, "lr": 1e-3, "lr_final": 1e-5},
         "sampler": {"chains": 500, "burn_in": 300, "thin": 5},
         "loss": {"anchor_mode": "exact"},
         "eval": {"energy_sweeps": 20, "eps_points": 200, "uniform_energy_points": 500, "grid_points": 21}}
    results = run_trials([TrialSpec.from_dict({**d, "seed": s}) for s in range(3)])
    assert results[0].anchor == (1.0, 0.0, 0.0)
    err = np.array([1000 * (r.energy - r.energy_exact) for r in results])
    assert abs(err.mean()) < 6.0 and np.abs(err).max() < 8.0, err
