"""The potential network U_theta(x), batched over K independent trials.

A stack of K multilayer perceptrons of one shape is held as weight tensors with a
leading trial axis (K, n_in, n_out): one batched matrix product evaluates all K
networks, and trial k's parameters are the slices [k] of every tensor, so K
trials train as one model without interacting (see ``training.clip_per_trial``).
K = 1 is the single-trial case: there is one code path.

Seed 000's model (:data:`SEED000`): hidden widths 64-128-128, tanh, a residual
connection between the 2nd and 3rd hidden layer. Seed 001's initialisation: the
default uniform(-1/sqrt(n_in), 1/sqrt(n_in)) weights multiplied by a small factor
delta (``init_scale``, 0.01 in seed 001), so that U starts near 0.

Radial systems (input r in bohr) may use ``log_radius``: the network sees s = ln r. On
[0.1, 10] bohr, r spans two decades; the atomic potentials change on the scale of r
itself (-Z/r near the nucleus, the shell maximum of Ne at 0.26 bohr, -1/r in the tail),
so in s they are smooth on a scale of order 1 everywhere. In D > 1 with ``radius_input``,
``log_radius`` appends s = ln|x| as well (inputs x, |x|, ln|x|): hydrogen's -1/r is then
-e^-s, and the tanh network follows it down to r ~ 0.03 bohr (U(0.01) ~ -55 Ha, against
-33 Ha from |x| alone; the core's share of the energy error +0.25 mHa against +0.85), and
the MPNN loss (seed 001 eq. 7) falls from ~2e-3 to ~8e-4 at 2000 epochs (jobs/mpnn_table1.toml).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from qpnn_hpc.config import check, field

ACTIVATIONS = {"tanh": torch.tanh, "silu": nn.functional.silu, "softplus": nn.functional.softplus,
               "gelu": nn.functional.gelu}


@dataclass(frozen=True)
class ModelConfig:
    widths: tuple[int, ...] = field((64, 128, 128), help="hidden layer widths")
    activation: str = field("tanh", help=f"hidden activation: one of {sorted(ACTIVATIONS)}")
    residual: bool = field(True, help="add h_{l-1} to h_l wherever two consecutive hidden widths match")
    init_scale: float = field(1.0, help="delta: initial weights and biases multiplied by it (seed 001: 0.01)")
    radius_input: bool = field(False, help="append |x| (bohr) to the D Cartesian inputs (D > 1)")
    log_radius: bool = field(False, omit_default=True,
                             help="radial systems: the input is ln(r/bohr) instead of r; D > 1 with radius_input: "
                                  "ln|x| is appended to (x, |x|); so that the core (-Z/r = -Z e^-s) is as well "
                                  "resolved as the tail")

    def __post_init__(self):
        check(len(self.widths) >= 1 and all(w > 0 for w in self.widths), "model.widths",
              "needs at least one positive width")
        check(self.activation in ACTIVATIONS, "model.activation",
              f"unknown {self.activation!r}; valid: {', '.join(sorted(ACTIVATIONS))}")
        check(self.init_scale > 0, "model.init_scale", "must be > 0")


SEED000 = ModelConfig(widths=(64, 128, 128), activation="tanh", residual=True, init_scale=1.0)
SEED001 = ModelConfig(widths=(64, 128, 128), activation="tanh", residual=True, init_scale=0.01)
PRESETS = {"seed000": SEED000, "seed001": SEED001}


def preset_table(name: str, where: str = "model") -> dict:
    """The [model] table of preset ``name`` (a spec may name a preset instead of a table)."""
    from qpnn_hpc.config import ConfigError, to_dict
    if name not in PRESETS:
        raise ConfigError(f"{where}: unknown preset {name!r}; valid: {', '.join(sorted(PRESETS))}")
    return to_dict(PRESETS[name])


#: ln|x| is taken of max(|x|, R_MIN) (bohr), so that a point on the origin itself has a finite input.
R_MIN = 1e-6

#: An anchor closer than this to a kink of the network's inputs is refused (bohr): the 3D HO
#: with the anchor on the origin (the kink of |x|) learned a dip there that pinned U(0) = V(0)
#: with U - V off by up to +20 (ground) / +61 mHa (first excited state) elsewhere. 0.05 bohr is a
#: chosen margin (the dip's width was not measured); anchors at 1 bohr are measured safe
#: (tests/inverse/test_anchor.py).
KINK_CLEARANCE = 0.05


def anchor_on_kink(config: ModelConfig, dim: int, point) -> Optional[str]:
    """Why the gauge anchor r0 (bohr) sits on a kink of the network's inputs, or None.

    With ``radius_input`` (D > 1) the input |x| is not differentiable at x = 0: the network
    can learn a narrow dip (or spike) there at almost no cost in the loss (few points land in
    the small volume around it), and an anchor on it fixes U(r0) = V(r0) on the dip while U is
    shifted by a constant everywhere else: every energy is off by that constant, silently.
    ``log_radius`` inputs (ln r) are smooth for r > 0, where every radial box lies."""
    if config.radius_input and dim > 1:
        r = math.sqrt(sum(float(p) ** 2 for p in point))
        if r < KINK_CLEARANCE:
            return (f"{[float(p) for p in point]} is {r:.3g} bohr from the origin, where the network's input |x| "
                    f"(model.radius_input) has a kink: a narrow dip learned there pins U(r0) = V(r0) while U - V "
                    f"is off elsewhere (3D HO, MPNN: trials up to +20 mHa off in the ground state, +61 mHa in "
                    f"the first excited state); choose a point at least {KINK_CLEARANCE} bohr "
                    "from the origin where the density is not small, or set radius_input = false")
    return None


class PotentialNet(nn.Module):
    """K independent MLPs x (K, N, D) -> U (K, N), in Hartree for x in bohr."""

    def __init__(self, dim_in: int, config: ModelConfig, generators: Sequence[torch.Generator],
                 dtype=torch.float32, device="cpu"):
        super().__init__()
        self.config = config
        self.K = len(generators)
        self.radius_input = config.radius_input and dim_in > 1
        self.log_radius_input = self.radius_input and config.log_radius   # (x, |x|, ln|x|)
        sizes = (dim_in + int(self.radius_input) + int(self.log_radius_input), *config.widths, 1)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(n_in)
            w = torch.stack([torch.empty(n_in, n_out, dtype=torch.float64).uniform_(-bound, bound, generator=g)
                             for g in generators])
            b = torch.stack([torch.empty(n_out, dtype=torch.float64).uniform_(-bound, bound, generator=g)
                             for g in generators])
            self.weights.append(nn.Parameter((config.init_scale * w).to(device=device, dtype=dtype)))
            self.biases.append(nn.Parameter((config.init_scale * b).to(device=device, dtype=dtype)))
        self.act = ACTIVATIONS[config.activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.radius_input:
            r = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
            h = torch.cat([x, r, torch.log(r.clamp_min(R_MIN))] if self.log_radius_input else [x, r], -1)
        elif self.config.log_radius:
            h = torch.log(x)
        else:
            h = x
        n_hidden = len(self.weights) - 1
        for i in range(n_hidden):
            z = self.act(torch.baddbmm(self.biases[i][:, None, :], h, self.weights[i]))
            h = z + h if (self.config.residual and i > 0 and z.shape[-1] == h.shape[-1]) else z
        return torch.baddbmm(self.biases[-1][:, None, :], h, self.weights[-1])[..., 0]


class AnchoredPotential(nn.Module):
    """U(x) = N(x) - N(r0) + V(r0): the gauge anchor holds exactly for every weight."""

    def __init__(self, net: PotentialNet, anchor_point: torch.Tensor, anchor_value: float):
        super().__init__()
        self.net = net
        self.K = net.K
        self.register_buffer("r0", anchor_point.reshape(1, 1, -1))
        self.v0 = float(anchor_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) - self.net(self.r0.expand(self.K, 1, -1)) + self.v0
