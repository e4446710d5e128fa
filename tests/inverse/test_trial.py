"""Trials: reproducibility, batching, a short training that must learn, bad input."""
import dataclasses

import numpy as np
import pytest

from qpnn_hpc.config import ConfigError
from qpnn_hpc.inverse.trial import TrialSpec, batch_key, run_trial, run_trials

TINY = {"system": {"name": "harmonic_oscillator", "levels": [0], "half_width": 4.0},
        "model": {"widths": [16, 16], "init_scale": 0.01},
        "train": {"epochs": 30, "points": 200},
        "sampler": {"chains": 64, "burn_in": 50, "thin": 2},
        "eval": {"eps_points": 200, "energy_sweeps": 8, "uniform_energy_points": 500, "grid_points": 11},
        "dtype": "float64"}


@pytest.mark.parametrize("method", ["qpnn", "qpnn_ms", "mpnn"])
def test_same_spec_gives_identical_trials(method):
    spec = TrialSpec.from_dict({**TINY, "method": method, "seed": 3})
    a, b = run_trial(spec), run_trial(spec)
    assert a.trial_id == b.trial_id == spec.id
    for name in ("loss_curve", "potential"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.scalars() | {"wall_time": 0} == b.scalars() | {"wall_time": 0}


@pytest.mark.parametrize("method", ["qpnn", "mpnn"])
def test_batched_trials_equal_separate_trials(method):
    specs = [TrialSpec.from_dict({**TINY, "method": method, "seed": s}) for s in (1, 2, 3)]
    batched = run_trials(specs)
    alone = run_trial(specs[1])
    assert batched[1].trial_id == alone.trial_id
    np.testing.assert_allclose(batched[1].loss_curve, alone.loss_curve, rtol=1e-9)
    np.testing.assert_allclose(batched[1].potential, alone.potential, rtol=1e-9, atol=1e-12)
    assert not np.allclose(batched[0].potential, batched[1].potential)  # seeds do matter


def test_spec_id_is_canonical_and_seed_sensitive():
    a = TrialSpec.from_dict({**TINY, "seed": 1})
    b = TrialSpec.from_dict({"seed": 1, **{k: TINY[k] for k in reversed(list(TINY))}})
    assert a.id == b.id and len(a.id) == 16
    c = dataclasses.replace(a, seed=2)
    assert c.id != a.id and batch_key(c) == batch_key(a)


def test_short_mpnn_training_learns_ho_ground_state():
    """A few seconds: MPNN on the 1D HO ground state (gauge fixed exactly at the anchor)
    reaches |E - 0.5| < 5 mHa and |U - V| < 0.02 Ha where the density lives (|x| < 1).

    Measured over seeds 0-9 with OMP_NUM_THREADS=1 (seeds 0-1 also with 2 threads: the same
    numbers to 4 digits): E - 0.5 from -2.18 to +0.01 mHa (energy_err 0.10-0.17 mHa), max
    |U - V| 0.0006-0.0032 Ha, final/initial loss 0.006-0.018. Margins: 2.3x, 6x, 5x. (With
    the old penalty anchor, lambda = 100, the same seeds gave +1.8 to +6.5 mHa and max |U - V|
    0.064-0.080 Ha: the 5 mHa bound then failed on 4 seeds of 11; seed 0 gave 4.66 on 1
    thread and 5.04 in the issue's run.)"""
    spec = TrialSpec.from_dict({
        "system": {"name": "harmonic_oscillator", "levels": [0], "half_width": 3.0},
        "method": "mpnn", "model": {"widths": [32, 32], "init_scale": 1.0},
        "train": {"epochs": 600, "points": 500, "lr": 3e-3, "lr_final": 1e-4},
        "loss": {"anchor_mode": "exact"},
        "sampler": {"chains": 250, "burn_in": 100, "thin": 5}, "seed": 0})
    r = run_trial(spec)
    assert r.status == "done"
    assert abs(r.energy - 0.5) < 5e-3, r.energy
    core = np.abs(r.grid) < 1.0
    assert np.max(np.abs(r.potential - r.potential_true)[core]) < 0.02
    assert r.loss_curve[-1] < 0.1 * r.loss_curve[0]


def test_diverging_trial_is_reported_failed():
    spec = TrialSpec.from_dict({**TINY, "method": "mpnn", "train": {"epochs": 20, "points": 100, "lr": 1e300,
                                                                    "clip_norm": None}})
    r = run_trial(spec)
    assert r.status == "failed" and "non-finite" in r.reason


@pytest.mark.parametrize("patch,match", [
    ({"method": "vmc"}, "method.*valid methods are: qpnn, qpnn_ms, mpnn"),
    ({"system": {"name": "helium"}}, "system.name.*valid names"),
    ({"train": {"points": 0}}, "train.points.*positive"),
    ({"train": {"epoch": 3}}, "unknown key.*train.epoch.*valid keys.*epochs"),
    ({"loss": {"anchor": [9.0]}}, "loss.anchor.*outside"),
    ({"dtype": "float16"}, "dtype"),
    ({"model": "seed999"}, "model.*preset"),
    ({"train": {"lr": "fast"}}, "train.lr: expected a number"),
    ({"colour": 1}, "unknown key.*colour.*valid keys"),
])
def test_bad_spec_names_the_field(patch, match):
    with pytest.raises(ConfigError, match=match):
        spec = TrialSpec.from_dict({**TINY, **patch})
        run_trial(spec)


def test_fixed_length_tuple_fields_parse():
    spec = TrialSpec.from_dict({**TINY, "system": {"name": "hydrogen", "anchor": [0.5, 0.5, 0.0]}})
    from qpnn_hpc.inverse.trial import build_system
    assert build_system(spec).default_anchor == (0.5, 0.5, 0.0)
    with pytest.raises(ConfigError, match="system.anchor: expected a list of 3"):
        TrialSpec.from_dict({**TINY, "system": {"name": "hydrogen", "anchor": [0.5]}})
