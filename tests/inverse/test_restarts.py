"""train.restarts: R starts per trial in one batch, the one with the lowest final training loss kept."""
import math

import numpy as np
import pytest
import torch

from qpnn_hpc.config import ConfigError, to_dict
from qpnn_hpc.inverse.models import AnchoredPotential, ModelConfig, PotentialNet
from qpnn_hpc.inverse.training import final_loss, keep_best, restart_stream
from qpnn_hpc.inverse.trial import TrialSpec, run_trial, run_trials

from tests.inverse.test_trial import TINY


def test_final_loss_is_the_median_of_the_last_epochs_and_never_keeps_a_diverged_start():
    curve = torch.tensor([[9.0] * 36 + [1.0, 3.0, 2.0, 50.0],          # last 2 epochs: the lower median of (2, 50)
                          [9.0] * 38 + [math.nan, 1.0],
                          [1.0] * 40], dtype=torch.float64)
    np.testing.assert_allclose(final_loss(curve).numpy(), [2.0, math.inf, 1.0])


def test_keep_best_keeps_each_trials_lowest_final_loss():
    """K = 2 trials of R = 3 starts (rows trial-major); the kept networks are the chosen rows."""
    gens = [torch.Generator().manual_seed(i) for i in range(6)]
    net = PotentialNet(1, ModelConfig(widths=(8, 8)), gens, dtype=torch.float64)
    model = AnchoredPotential(net, torch.tensor([0.5], dtype=torch.float64), -1.0)
    x = torch.linspace(-2, 2, 7, dtype=torch.float64).reshape(1, -1, 1)
    before = model(x.expand(6, -1, -1)).detach()
    last = torch.tensor([3.0, 1.0, 2.0, 0.5, 4.0, math.nan], dtype=torch.float64)
    curve = torch.ones(6, 40, dtype=torch.float64) * last[:, None]
    model, kept = keep_best(model, curve, 3)
    assert model.K == 2 and net.K == 2 and all(p.shape[0] == 2 for p in net.parameters())
    torch.testing.assert_close(model(x.expand(2, -1, -1)), before[[1, 3]])
    torch.testing.assert_close(kept[:, -1], last[[1, 3]])


def test_one_start_keeps_the_spec_and_its_id():
    """restarts = 1 is left out of the canonical spec: every earlier id and stream is unchanged."""
    s = TrialSpec.from_dict({**TINY, "method": "qpnn", "seed": 2})
    assert "restarts" not in to_dict(s)["train"] and restart_stream("init", 0) == "init"
    r = TrialSpec.from_dict({**TINY, "method": "qpnn", "seed": 2, "train": {**TINY["train"], "restarts": 3}})
    assert to_dict(r)["train"]["restarts"] == 3 and r.id != s.id
    with pytest.raises(ConfigError, match=r"^train.restarts: must be an integer >= 1"):
        TrialSpec.from_dict({**TINY, "train": {**TINY["train"], "restarts": 0}})


@pytest.mark.parametrize("method", ["qpnn", "mpnn"])
def test_trials_with_restarts_batch_like_single_trials(method):
    """Three starts per trial (every method's streams: init, points or chains): the results of
    trials batched together equal those of each trial alone (the starts of trial k are rows
    3k..3k+2 of the batch), and the trials differ."""
    train = {**TINY["train"], "restarts": 3}
    specs = [TrialSpec.from_dict({**TINY, "method": method, "seed": s, "train": train}) for s in (4, 5)]
    batched = run_trials(specs)
    alone = run_trial(specs[1])
    np.testing.assert_allclose(batched[1].loss_curve, alone.loss_curve, rtol=1e-9)
    np.testing.assert_allclose(batched[1].potential, alone.potential, rtol=1e-9, atol=1e-12)
    assert all(r.status == "done" and r.loss_curve.shape == (TINY["train"]["epochs"],) for r in batched)
    assert not np.allclose(batched[0].potential, batched[1].potential)
