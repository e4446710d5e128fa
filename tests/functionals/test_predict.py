"""A stored functional rebuilt from (weights, scale, spec, grid); profiles on another grid refused."""
import numpy as np
import pytest
import torch

from qpnn_hpc.config import ConfigError
from qpnn_hpc.functionals import cnn
from qpnn_hpc.functionals.predict import Functional
from qpnn_hpc.functionals.train import FunctionalSpec

X = np.linspace(-7, 7, 169)
SPEC = FunctionalSpec("molecules.h5", "molecules", "V", "T")
SCALE = [-0.4, 0.5, 0.2, 0.03]


def weights(L=169, seed=0):
    return cnn.flatten(cnn.init_parameters(L, torch.Generator().manual_seed(seed))).numpy()


def test_predict_shapes_and_scaling():
    f = Functional(SPEC, weights(), SCALE, X)
    V = -1 / (np.abs(X)[None] + np.array([[0.7], [0.8], [0.9]]))
    q = f.predict(V, X)
    assert q.shape == (3,) and q.dtype == np.float64
    assert f.predict(V[1]) == pytest.approx(q[1], rel=1e-6)
    raw = cnn.forward(cnn.unflatten(weights(), 169), torch.as_tensor((V - SCALE[0]) / SCALE[1], dtype=torch.float32))
    np.testing.assert_allclose(q, SCALE[2] + SCALE[3] * raw.detach().double().numpy(), rtol=1e-5)
    assert (f.input, f.target) == ("V", "T")


def test_profile_on_another_grid_is_refused():
    f = Functional(SPEC, weights(), SCALE, X)
    with pytest.raises(ConfigError) as e:
        f.predict(np.zeros((2, 168)), np.linspace(-7, 7, 168))
    assert str(e.value) == ("profile: 168 points on [-7, 7] bohr; this functional was trained on 169 points "
                            "on [-7, 7] bohr; resample onto its grid")
    with pytest.raises(ConfigError, match="^profile: 241 points; this functional was trained on 169 points"):
        f.predict(np.zeros(241))
    with pytest.raises(ConfigError, match=r"^profile: 169 points on \[-7, 7.0001\] bohr; this functional"):
        f.predict(np.zeros(169), np.linspace(-7, 7.0001, 169))
    f.predict(np.zeros(169), X + 1e-12)                              # within 1e-9 bohr: the same grid


def test_bad_stored_model():
    with pytest.raises(ConfigError, match="^weights: 386071 numbers; a CNN for profiles of 169 points has 388471"):
        Functional(SPEC, weights(168), SCALE, X)
    with pytest.raises(ConfigError, match="^weights: empty"):
        Functional(SPEC, np.zeros(0, np.float32), SCALE, X)
    with pytest.raises(ConfigError, match="^scale: "):
        Functional(SPEC, weights(), [0, 0, 0, 1], X)
    with pytest.raises(ConfigError, match="^spec: "):
        Functional({"target": "T"}, weights(), SCALE, X)
    with pytest.raises(ConfigError, match="^row: status 'failed'"):
        Functional.from_row(SPEC, {"status": "failed"}, X)
