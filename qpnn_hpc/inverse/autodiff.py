"""Exact derivatives by automatic differentiation (no finite differences).

All functions take points ``x`` of shape ``(..., D)`` and a scalar field
``f: (..., D) -> (...)`` evaluated point-wise (points are independent, so the
gradient of ``f(x).sum()`` with respect to ``x`` is the point-wise gradient).
"""
from __future__ import annotations

import torch


def gradient(values: torch.Tensor, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """Point-wise gradient d values / d x, shape of ``x``. ``x`` must require grad."""
    (g,) = torch.autograd.grad(values.sum(), x, create_graph=create_graph)
    return g


def laplacian(f, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """Point-wise Laplacian sum_i d^2 f / dx_i^2 of ``f`` at ``x`` (shape ``x.shape[:-1]``).

    D backward passes through the gradient: exact up to round-off.
    """
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    y = f(x)
    g = gradient(y, x, create_graph=True)
    lap = torch.zeros_like(y)
    for i in range(x.shape[-1]):
        (gi,) = torch.autograd.grad(g[..., i].sum(), x, create_graph=create_graph, retain_graph=True)
        lap = lap + gi[..., i]
    return lap if create_graph else lap.detach()


def radial_laplacian(f, r: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """3D Laplacian of a spherically symmetric function, f'' + (2/r) f', for ``r`` of shape (..., 1)."""
    if not r.requires_grad:
        r = r.detach().requires_grad_(True)
    y = f(r)
    d1 = gradient(y, r, create_graph=True)
    d2 = gradient(d1[..., 0], r, create_graph=create_graph)
    lap = d2[..., 0] + 2.0 * d1[..., 0] / r[..., 0]
    return lap if create_graph else lap.detach()
