r"""A trained functional: the CNN of one :class:`~.train.FunctionalSpec` with its scaling and grid.

Rebuilt from what a training row stores (``weights``, the flat float32 parameters of
:func:`.cnn.flatten`; ``scale`` = [mu_x, sigma_x, mu_y, sigma_y]), the spec and the grid x
(bohr) it was trained on. :meth:`Functional.predict` maps profiles (the density n in 1/bohr or
the potential V in Ha, on that grid) to the property in Ha:

.. math:: Q = \mu_y + \sigma_y\, \mathrm{CNN}\big((p - \mu_x) / \sigma_x\big),

computed as in training (float32 network; the same operations), so the predictions of the
test split equal the row's ``test_pred`` to float rounding.

From a results file of a functional campaign (the tasks that kept their weights):
``load("results/functionals_final.h5", task)``, ``task`` its row index or task id.

A profile on another grid (another number of points, or points that differ by more than
1e-9 bohr) is refused with a :class:`~qpnn_hpc.config.ConfigError`: the CNN's weights are
tied to the grid's points (its dense layer sees every position).
"""
from __future__ import annotations

import numpy as np
import torch

from qpnn_hpc.config import check
from qpnn_hpc.functionals import cnn
from qpnn_hpc.functionals.train import INPUTS, TARGETS, FunctionalSpec

__all__ = ["Functional", "load"]


class Functional:
    """Q[p] for one spec: ``Functional(spec, weights, scale, x)``; ``predict(profiles)`` in Ha."""

    def __init__(self, spec: FunctionalSpec, weights, scale, x):
        check(isinstance(spec, FunctionalSpec), "spec", f"expected FunctionalSpec, got {type(spec).__name__}")
        x = np.asarray(x, dtype=float)
        check(x.ndim == 1 and x.size >= 2, "x", f"grid must be 1D with >= 2 points, got shape {x.shape}")
        scale = np.asarray(scale, dtype=float).reshape(-1)
        check(scale.size == 4 and np.all(np.isfinite(scale)) and scale[1] > 0 and scale[3] > 0, "scale",
              f"expected [mu_x, sigma_x > 0, mu_y, sigma_y > 0] as stored by training, got {scale.tolist()}")
        weights = np.asarray(weights, dtype=np.float32).reshape(-1)
        check(weights.size > 0, "weights", "empty: train with keep_weights = true to keep them")
        self.spec = spec
        self.x = x
        self.scale = scale
        self.params = cnn.unflatten(weights, int(x.size))

    @classmethod
    def from_row(cls, spec: FunctionalSpec, row: dict, x) -> "Functional":
        """From a row of :func:`.train.train_batch` (trained with keep_weights)."""
        check(row.get("status") == "done", "row", f"status {row.get('status')!r}: only a 'done' row has a model")
        return cls(spec, row["weights"], row["scale"], x)

    @property
    def input(self) -> str:
        """Dataset key of the input profile: 'n1' (density, 1/bohr) or 'V' (Ha)."""
        return INPUTS[self.spec.input]

    @property
    def target(self) -> str:
        """Dataset key of the output: 'E1', 'T', 'A' or 'Eg' (Ha)."""
        return TARGETS[self.spec.target]

    def _check_grid(self, n_points: int, x) -> None:
        c, d, m = self.x[0], self.x[-1], self.x.size
        trained = f"this functional was trained on {m} points on [{c:g}, {d:g}] bohr; resample onto its grid"
        if x is None:
            check(n_points == m, "profile", f"{n_points} points; {trained}")
            return
        x = np.asarray(x, dtype=float).reshape(-1)
        where = f"{x.size} points on [{x[0]:g}, {x[-1]:g}] bohr" if x.size else "0 points"
        check(x.size == n_points, "x", f"{x.size} grid points for profiles of {n_points}")
        check(x.size == m and bool(np.all(np.abs(x - self.x) <= 1e-9)), "profile", f"{where}; {trained}")

    def predict(self, profiles, x=None) -> np.ndarray:
        """Q (Ha) of profiles (N, L) or one profile (L,); ``x``: their grid (bohr), checked if given."""
        p = np.asarray(profiles, dtype=float)
        single = p.ndim == 1
        p = p[None] if single else p
        check(p.ndim == 2, "profile", f"expected (L,) or (N, L) profiles, got shape {p.shape}")
        self._check_grid(p.shape[1], x)
        mu_x, s_x, mu_y, s_y = self.scale
        inp = torch.as_tensor((p - mu_x) / s_x, dtype=torch.float32)
        with torch.no_grad():
            q = (cnn.forward(self.params, inp) * torch.tensor(s_y, dtype=torch.float32)
                 + torch.tensor(mu_y, dtype=torch.float32))
        q = q.double().numpy()
        return q[0] if single else q


def load(path, task) -> Functional:
    """The trained functional of row ``task`` (index or task id) of a functional results file."""
    from qpnn_hpc.campaigns import store
    from qpnn_hpc.config import from_dict
    table = store.read_table(path)
    check(table["kind"] == "functional", "results", f"{str(path)!r} is a {table['kind']!r} results file, "
                                                     "not one of trained functionals")
    if isinstance(task, str):
        hits = np.flatnonzero(table["id"] == task)
        check(hits.size == 1, "task", f"no task {task!r} in {str(path)!r}")
        task = int(hits[0])
    check(0 <= int(task) < len(table["id"]), "task", f"row {task} is not in 0 .. {len(table['id']) - 1}")
    i = int(task)
    check(table["status"][i] == store.DONE, "task", f"row {i} is {store.STATUS_NAMES[int(table['status'][i])]}; "
                                                    "only a done training has a model")
    j = int(table["weights_index"][i]) if "weights_index" in table else -1
    check(j >= 0, "task", f"row {i} kept no weights (campaign keep_weights = N keeps repeats 0 .. N-1); rows "
                          f"with weights: {np.flatnonzero(table.get('weights_index', np.array([])) >= 0).tolist()[:10]}")
    spec = from_dict(FunctionalSpec, table["spec"][i])
    return Functional(spec, table["weights"][j], table["scale"][i], table["x"])
