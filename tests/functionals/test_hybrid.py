"""Gauge-invariant hybrids E[n; V] = T[n] + integral n V dx and A = -E - Eg, on exact systems."""
import numpy as np
import pytest
import torch

from qpnn_hpc.config import ConfigError
from qpnn_hpc.functionals import cnn, hybrid
from qpnn_hpc.functionals.predict import Functional
from qpnn_hpc.functionals.train import FunctionalSpec

from tests.functionals.test_train import solved


@pytest.fixture(scope="module")
def atoms(tmp_path_factory):
    return solved("atoms", 3, tmp_path_factory.mktemp("atoms"))


def test_energy_with_the_exact_kinetic_energy_is_E1(atoms):
    for d in (atoms.train, atoms.test):
        dx = (atoms.x[-1] - atoms.x[0]) / (atoms.x.size - 1)
        E_V = hybrid.external_energy(d["n1"], d["V"], atoms.x)
        assert np.array_equal(E_V, d["E_V"])                         # the dataset's rule, bit for bit
        E = hybrid.energy(d["T"], d["n1"], d["V"], atoms.x)
        assert np.array_equal(E, d["T"] + np.sum(d["n1"] * d["V"], axis=-1) * dx)
        assert np.max(np.abs(E - d["E1"])) < 1e-10


def test_affinity_sign(atoms):
    d = atoms.train
    # A = E1 - E2 and Eg = E2 - 2 E1, so A = -E1 - Eg
    assert np.max(np.abs(hybrid.affinity(d["E1"], d["Eg"]) - d["A"])) < 1e-12
    E = hybrid.energy(d["T"], d["n1"], d["V"], atoms.x)
    assert np.max(np.abs(hybrid.affinity(E, d["Eg"]) - d["A"])) < 1e-10
    assert hybrid.affinity(-0.5, 0.46) == pytest.approx(0.04)       # hydrogen-like: E1 = -0.5, Eg = 0.46


def test_gauge(atoms):
    """V -> V + c: E -> E + c and A -> A - c with n, T, Eg unchanged (seed 002, 2.2)."""
    d, c = atoms.train, 0.1
    E = hybrid.energy(d["T"], d["n1"], d["V"], atoms.x)
    E_shift = hybrid.energy(d["T"], d["n1"], d["V"] + c, atoms.x)
    np.testing.assert_allclose(E_shift - E, c, atol=1e-12)
    np.testing.assert_allclose(hybrid.affinity(E_shift, d["Eg"]) - hybrid.affinity(E, d["Eg"]), -c, atol=1e-12)


def functional(target, x, seed):
    weights = cnn.flatten(cnn.init_parameters(x.size, torch.Generator().manual_seed(seed))).numpy()
    spec = FunctionalSpec("atoms.h5", "atoms", "n", target)
    return Functional(spec, weights, [0.1, 0.1, 0.2, 0.05], x)


def test_hybrid_from_learned_functionals(atoms):
    T_f, Eg_f = functional("T", atoms.x, 0), functional("Eg", atoms.x, 1)
    n, V = atoms.test["n1"], atoms.test["V"]
    out = hybrid.predict(T_f, Eg_f, n, V, atoms.x)
    assert np.array_equal(out["E"], T_f.predict(n) + hybrid.external_energy(n, V, atoms.x))
    assert np.array_equal(out["A"], -out["E"] - Eg_f.predict(n))
    with pytest.raises(ConfigError, match=r"^T_functional: expected a T\[n\] functional, got Eg\[n\]"):
        hybrid.predict(Eg_f, Eg_f, n, V, atoms.x)
    with pytest.raises(ConfigError, match="^V: shape"):
        hybrid.external_energy(n, V[:, :-1], atoms.x)
