"""Seed 002's CNN (Fig. 7): shapes, parameter count, torch equivalence, ensemble = K single models."""
import math

import pytest
import torch
from torch import nn

from qpnn_hpc.config import ConfigError
from qpnn_hpc.functionals import cnn


def gen(seed):
    return torch.Generator().manual_seed(seed)


def reference_model(L):
    """Fig. 7 written with torch's stock layers."""
    return nn.Sequential(nn.Conv1d(1, 10, 8), nn.ReLU(), nn.Conv1d(10, 20, 8), nn.ReLU(), nn.Flatten(),
                         nn.Linear(20 * (L - 14), 120), nn.ReLU(), nn.Linear(120, 120), nn.ReLU(), nn.Linear(120, 1))


def test_parameter_count_for_the_seeds_input_length():
    # conv 1: 10*8 + 10; conv 2: 20*10*8 + 20; dense: 3080*120 + 120, 120*120 + 120, 120 + 1
    assert cnn.parameter_count(168) == 90 + 1620 + 369_720 + 14_520 + 121 == 386_071
    assert cnn.parameter_count(168) == sum(p.numel() for p in reference_model(168).parameters())
    assert cnn.parameter_count(169) == 388_471                      # this project's grid
    assert cnn.parameter_count(168) == cnn.flatten(cnn.init_parameters(168, gen(0))).numel()


def test_output_shapes():
    x = torch.randn(5, 168, generator=gen(99))
    assert cnn.CNN(168, gen(0))(x).shape == (5,)
    ens = cnn.Ensemble(168, [gen(0), gen(1), gen(2)])
    assert ens(torch.randn(3, 5, 168, generator=gen(98))).shape == (3, 5)
    assert cnn.forward(cnn.init_parameters(168, gen(0)), x).shape == (5,)


def test_same_function_as_torch_layers():
    L = 40
    params = cnn.init_parameters(L, gen(3))
    ref = reference_model(L)
    with torch.no_grad():
        convs = [m for m in ref if isinstance(m, nn.Conv1d)]
        dense = [m for m in ref if isinstance(m, nn.Linear)]
        for i, m in enumerate(convs, 1):
            m.weight.copy_(params[f"w{i}"])
            m.bias.copy_(params[f"b{i}"])
        for i, m in enumerate(dense, 3):
            m.weight.copy_(params[f"w{i}"].T)                      # (in, out) -> torch's (out, in)
            m.bias.copy_(params[f"b{i}"])
        x = torch.randn(7, L, generator=gen(97))
        torch.testing.assert_close(cnn.forward(params, x), ref(x.unsqueeze(1)).squeeze(-1), rtol=1e-5, atol=1e-6)


def test_initialisation_is_torchs_default_range():
    shapes = cnn.parameter_shapes(168)
    params = cnn.init_parameters(168, gen(0))
    fan_in = {"1": 8, "2": 80, "3": 3080, "4": 120, "5": 120}
    for name, p in params.items():
        assert p.shape == shapes[name] and p.dtype == torch.float32
        assert p.abs().max() <= 1 / math.sqrt(fan_in[name[1]])
    assert torch.equal(cnn.flatten(params), cnn.flatten(cnn.init_parameters(168, gen(0))))
    assert not torch.equal(cnn.flatten(params), cnn.flatten(cnn.init_parameters(168, gen(1))))


def test_ensemble_members_are_the_single_models():
    L, seeds = 60, [11, 12, 13]
    ens = cnn.Ensemble(L, [gen(s) for s in seeds])
    x = torch.randn(3, 4, L, generator=gen(96))
    with torch.no_grad():
        out = ens(x)
    for k, s in enumerate(seeds):
        single = cnn.CNN(L, gen(s))
        assert torch.equal(ens.flat(k), single.flat())             # bitwise the same weights
        with torch.no_grad():
            torch.testing.assert_close(out[k], single(x[k]), rtol=1e-5, atol=1e-6)


def test_flatten_roundtrip_and_bad_lengths():
    params = cnn.init_parameters(50, gen(5))
    back = cnn.unflatten(cnn.flatten(params), 50)
    assert all(torch.equal(back[k], params[k]) for k in params)
    with pytest.raises(ConfigError, match="^weights: "):
        cnn.unflatten(cnn.flatten(params), 51)
    with pytest.raises(ConfigError, match="^L: "):
        cnn.parameter_shapes(10)
