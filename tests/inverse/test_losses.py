"""Losses vanish at the true potential; the anchor fixes the gauge."""
import numpy as np
import pytest
import torch

from qpnn_hpc.inverse import losses
from qpnn_hpc.inverse.systems import make_system


class TruePotential:
    """A 'model' returning the exact V (optionally shifted), for K trials."""

    def __init__(self, system, K=2, shift=0.0):
        self.system, self.K, self.shift = system, K, shift

    def __call__(self, x):
        return self.system.potential(x) + self.shift


SYSTEMS = [("hydrogen", {}), ("harmonic_oscillator", {"levels": [2]}),
           ("harmonic_oscillator", {"dim": 2, "levels": [1, 0]})]


@pytest.mark.parametrize("name,params", SYSTEMS)
@pytest.mark.parametrize("loss", ["qpnn", "mpnn"])
def test_loss_is_zero_at_true_potential(name, params, loss):
    s = make_system(name, params)
    g = torch.Generator().manual_seed(0)
    x = 3.0 * (torch.rand((2, 500, s.dim), generator=g, dtype=torch.float64) - 0.5)
    r0, v0 = s.anchor()
    model = TruePotential(s)
    fn = losses.qpnn_loss if loss == "qpnn" else losses.mpnn_loss
    val = fn(s, model, x, torch.tensor(r0, dtype=torch.float64), v0, 1.0).detach()
    assert val.shape == (2,)
    assert float(val.max()) < 1e-12
    # a shifted potential still solves the equation: only the anchor term sees it
    shifted = fn(s, TruePotential(s, shift=0.1), x, torch.tensor(r0, dtype=torch.float64), v0, 1.0).detach()
    np.testing.assert_allclose(shifted.numpy(), 0.01, rtol=1e-9)


def test_qpnn_loss_sees_a_wrong_shape():
    s = make_system("harmonic_oscillator", {"levels": [0]})
    x = torch.linspace(-2, 2, 101, dtype=torch.float64)[None, :, None]

    class Wrong(TruePotential):
        def __call__(self, x):
            return 0.6 * self.system.potential(x)

    val = losses.qpnn_loss(s, Wrong(s, K=1), x, torch.zeros(1, dtype=torch.float64), 0.0, 1.0)
    # grad E = grad(-0.4 x^2/2) = -0.4 x: mean over the grid of 0.16 x^2
    expected = float((0.16 * x[0, :, 0] ** 2).mean())
    assert abs(float(val.detach()) - expected) < 1e-10


def test_local_energy_float32_and_float64_agree():
    s = make_system("hydrogen", {})
    x64 = torch.tensor([[[0.3, 0.4, 0.5], [1.0, -2.0, 0.5]]], dtype=torch.float64)
    m = TruePotential(s, K=1)
    e64 = losses.local_energy(s, m, x64)
    e32 = losses.local_energy(s, m, x64.float())
    assert e32.dtype == torch.float32
    np.testing.assert_allclose(e32.numpy(), e64.numpy(), atol=1e-5)
    np.testing.assert_allclose(e64.numpy(), -0.5, atol=1e-12)


def test_exact_anchor_holds_for_any_weights():
    from qpnn_hpc.inverse.models import AnchoredPotential, ModelConfig, PotentialNet
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    for radius in (False, True):
        net = PotentialNet(3, ModelConfig(widths=(8, 8), radius_input=radius), gens, dtype=torch.float64)
        r0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
        model = AnchoredPotential(net, r0, -1.0)
        u0 = model(r0.expand(3, 1, 3))
        np.testing.assert_allclose(u0.detach().numpy(), -1.0, atol=1e-14)
        x = torch.randn((3, 5, 3), generator=gens[0], dtype=torch.float64)
        assert model(x).shape == (3, 5) and not torch.allclose(model(x)[0], model(x)[1])


def test_log_radius_appends_ln_r_in_3d():
    """model.log_radius with radius_input in D > 1: the inputs are (x, y, z, |x|, ln|x|) (ln of
    max(|x|, R_MIN), finite on the origin itself); refused in D > 1 without radius_input."""
    from qpnn_hpc.config import ConfigError
    from qpnn_hpc.inverse.models import R_MIN, ModelConfig, PotentialNet
    from qpnn_hpc.inverse.trial import TrialSpec
    gens = [torch.Generator().manual_seed(s) for s in range(2)]
    net = PotentialNet(3, ModelConfig(widths=(8,), radius_input=True, log_radius=True), gens, dtype=torch.float64)
    x = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.4, 0.0], [-1.0, 2.0, 2.0]], dtype=torch.float64)
    r = torch.tensor([0.0, 0.5, 3.0], dtype=torch.float64)[:, None]
    h = torch.cat([x, r, torch.log(r.clamp_min(R_MIN))], -1)          # the inputs the network must see
    for k in range(2):  # one hidden layer by hand: b1 + tanh(h W0 + b0) W1
        want = net.biases[1][k] + torch.tanh(h @ net.weights[0][k] + net.biases[0][k]) @ net.weights[1][k]
        np.testing.assert_allclose(net(x.expand(2, -1, -1))[k].detach().numpy(), want[:, 0].detach().numpy(),
                                   rtol=1e-12)
    spec = TrialSpec.from_dict({"system": {"name": "hydrogen"}, "model": {"radius_input": True, "log_radius": True}})
    assert spec.model.log_radius
    with pytest.raises(ConfigError, match=r"^model.log_radius: needs a radial system .*or radius_input = true"):
        TrialSpec.from_dict({"system": {"name": "hydrogen"}, "model": {"log_radius": True}})
