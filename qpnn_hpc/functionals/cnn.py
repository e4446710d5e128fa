r"""Seed 002's CNN (Fig. 7) and a batched ensemble of K of them.

One model maps a profile on the grid (the density n(x) in 1/bohr or the potential V(x)
in Ha, length L) to one number (a scaled energy, see :mod:`.train`)::

    (B, L) -> Conv1d(1 -> 10, width 8) -> ReLU -> Conv1d(10 -> 20, width 8) -> ReLU
           -> flatten (20 (L - 14), channel-major) -> Dense 120 -> ReLU -> Dense 120 -> ReLU
           -> Dense 1 -> (B,)

No padding ("the edges are excluded during convolution"), stride 1. Parameter count
:func:`parameter_count`: for the seed's L = 168, 386 071; for this project's grid of
169 points, 388 471.

Parameters (:func:`parameter_shapes`, in this order, which is also the order of the flat
vector :func:`flatten`): ``w1`` (10, 1, 8), ``b1`` (10,), ``w2`` (20, 10, 8), ``b2`` (20,),
``w3`` (20 (L - 14), 120), ``b3``, ``w4`` (120, 120), ``b4``, ``w5`` (120, 1), ``b5`` (1,).
Convolution weights have torch's (out, in, width) layout; dense weights are (in, out),
h -> h @ w + b. Initialisation: torch's default for Conv1d and Linear, every weight and
bias uniform in (-1/sqrt(fan_in), 1/sqrt(fan_in)) (fan_in = 8, 80, 20 (L - 14), 120,
120), drawn from one ``torch.Generator`` in the order above.

Ensemble (:class:`Ensemble`): K models trained as one, each with its OWN parameter tensors
and its own operations; what they share is the training loop, one backward call (the sum of
the K losses, so each gradient is exactly its own model's) and one optimiser with a
parameter group per model (:mod:`.train`). Model k built from generator g_k has exactly
the weights of ``CNN(L, g_k)`` (tested bitwise), and trains to exactly the numbers it
would reach alone.

Why not stacked parameters (grouped convolutions, or torch.func.vmap over stacked
parameters)? Measured (``benchmarks/functionals_ensemble.py --compare``: forward + backward
of 50 profiles per model, L = 169, float32, one thread, CPU time, best of 5, this 2-core AMD
EPYC Zen 4; +-10 % between runs on this shared machine), ms per model and step:

========================================  =====  =====  =====
K                                           1      8     32
========================================  =====  =====  =====
separate tensors, per-model ops (chosen)   4.7    4.8    4.9
stacked: per-model conv, baddbmm dense     4.7    4.8    5.1
stacked: grouped conv (groups = K)         4.9    5.3    5.7
stacked: torch.func.vmap(forward)          5.1    5.3    6.1
========================================  =====  =====  =====

The separate and stacked-bmm ways are equally fast, grouped convolutions and vmap (which
lowers to them) slower at larger K: one model already keeps a core busy (~190 MFLOP
per step of 50 profiles: conv 2 25 M and dense 1 37 M forward, backward twice that, at
30-50 GFLOP/s; oneDNN's grouped convolutions with 10-20 channels per group are no faster
than K small ones). But the stacked kernels round differently for different K (bmm and
grouped-conv blocking): 1e-7 relative after 5 epochs, which Adam amplifies over 300 epochs
to test MAEs that differ by 40-90 % (T[V], atoms) between a model trained in a batch and
alone. Separate
tensors make a model's arithmetic independent of K, of the chunking and of the thread
count of the caller (training runs one intra-op thread per model): batched = alone to the
bit. What batching gains is the per-step overhead (Python, optimiser, small batches)
shared, and the cores used by whole models (threads over chunks, :mod:`.train`).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from qpnn_hpc.config import check

__all__ = ["FILTERS", "WIDTH", "HIDDEN", "parameter_shapes", "parameter_count", "init_parameters",
           "forward", "flatten", "unflatten", "CNN", "Ensemble"]

#: Filters of the two convolutional layers (seed 002: Y = 10, Z = 20).
FILTERS = (10, 20)
#: Filter width k of both convolutions (seed 002: 8).
WIDTH = 8
#: Neurons of the two dense hidden layers (seed 002: 120 each).
HIDDEN = (120, 120)


def _features(L: int) -> int:
    """Length of the flattened feature vector: 20 channels of L - 2 (k - 1) points."""
    return FILTERS[1] * (L - 2 * (WIDTH - 1))


def _check_length(L) -> None:
    check(isinstance(L, int) and not isinstance(L, bool) and L >= 2 * WIDTH - 1, "L",
          f"profile length must be an integer >= {2 * WIDTH - 1} (two convolutions of width {WIDTH} "
          f"without padding), got {L!r}")


def parameter_shapes(L: int) -> dict[str, tuple[int, ...]]:
    """Shapes of one model's parameters for profiles of length ``L``, in storage order."""
    _check_length(L)
    c1, c2 = FILTERS
    h1, h2 = HIDDEN
    return {"w1": (c1, 1, WIDTH), "b1": (c1,), "w2": (c2, c1, WIDTH), "b2": (c2,),
            "w3": (_features(L), h1), "b3": (h1,), "w4": (h1, h2), "b4": (h2,),
            "w5": (h2, 1), "b5": (1,)}


def parameter_count(L: int) -> int:
    """Number of learnable parameters of one model for profiles of length ``L``."""
    return sum(math.prod(s) for s in parameter_shapes(L).values())


def _fan_in(name: str, shapes: dict) -> int:
    w = shapes["w" + name[1:]]
    return math.prod(w[1:]) if len(w) == 3 else w[0]


def init_parameters(L: int, generator: torch.Generator, dtype=torch.float32, device="cpu") -> dict:
    """One model's initial parameters: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from
    ``generator`` in the order of :func:`parameter_shapes` (torch's default for Conv1d/Linear)."""
    shapes = parameter_shapes(L)
    out = {}
    for name, shape in shapes.items():
        bound = 1.0 / math.sqrt(_fan_in(name, shapes))
        t = torch.empty(shape, dtype=torch.float32).uniform_(-bound, bound, generator=generator)
        out[name] = t.to(device=device, dtype=dtype)
    return out


def forward(params: dict, x: torch.Tensor) -> torch.Tensor:
    """One model: profiles ``x`` (B, L) -> outputs (B,)."""
    h = F.relu(F.conv1d(x.unsqueeze(1), params["w1"], params["b1"]))
    h = F.relu(F.conv1d(h, params["w2"], params["b2"])).flatten(1)
    h = F.relu(torch.addmm(params["b3"], h, params["w3"]))
    h = F.relu(torch.addmm(params["b4"], h, params["w4"]))
    return torch.addmm(params["b5"], h, params["w5"]).squeeze(-1)


def flatten(params: dict) -> torch.Tensor:
    """One model's parameters as a flat vector, in the order of :func:`parameter_shapes`."""
    return torch.cat([params[name].reshape(-1) for name in parameter_shapes(_length_of(params))])


def _length_of(params: dict) -> int:
    return params["w3"].shape[-2] // FILTERS[1] + 2 * (WIDTH - 1)


def unflatten(vector, L: int, dtype=torch.float32, device="cpu") -> dict:
    """Inverse of :func:`flatten`: a flat vector of :func:`parameter_count` (L) numbers."""
    v = torch.as_tensor(vector).to(device=device, dtype=dtype).reshape(-1)
    n = parameter_count(L)
    check(v.numel() == n, "weights", f"{v.numel()} numbers; a CNN for profiles of {L} points has {n}")
    out, i = {}, 0
    for name, shape in parameter_shapes(L).items():
        size = math.prod(shape)
        out[name] = v[i:i + size].reshape(shape).clone()
        i += size
    return out


class CNN(nn.Module):
    """One model of Fig. 7: profiles (B, L) -> (B,). Parameters from :func:`init_parameters`
    with ``generator``, or given as ``params`` (e.g. :func:`unflatten` of stored weights)."""

    def __init__(self, L: int, generator: torch.Generator | None = None, params: dict | None = None,
                 dtype=torch.float32, device="cpu"):
        super().__init__()
        check((generator is None) != (params is None), "CNN", "give either a generator or params")
        if params is None:
            params = init_parameters(L, generator, dtype, device)
        self.L = L
        self.params = nn.ParameterDict({k: nn.Parameter(v) for k, v in params.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return forward(self.params, x)

    def flat(self) -> torch.Tensor:
        return flatten({k: v.detach() for k, v in self.params.items()})


class Ensemble(nn.Module):
    """K models of Fig. 7, each with its own parameter tensors: profiles (K, B, L) -> (K, B).

    Model k is ``CNN(L, generators[k])``; :meth:`forward` runs each model on its own
    profiles ``x[k]`` (each model may see its own minibatch), one model after another.
    """

    def __init__(self, L: int, generators: Sequence[torch.Generator], dtype=torch.float32, device="cpu"):
        super().__init__()
        check(len(generators) >= 1, "generators", "need at least one (one per model)")
        self.L, self.K = L, len(generators)
        self.members = nn.ModuleList([CNN(L, g, dtype=dtype, device=device) for g in generators])

    def forward(self, x) -> torch.Tensor:
        check(len(x) == self.K, "x", f"{len(x)} batches of profiles for {self.K} models")
        return torch.stack([m(xk.contiguous()) for m, xk in zip(self.members, x)])

    def flat(self, k: int) -> torch.Tensor:
        """Model k's parameters as a flat vector (:func:`flatten`)."""
        return self.members[k].flat()
