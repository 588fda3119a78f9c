"""protodino's initialisation scheme (src/nn/layers.ts, src/tensor/ops/random.ts) drawn with torch:
truncated normals cut at ±2 std (protodino's bounds; timm and DINO cut at ±2 absolute), uniforms, and
a Linear initialised so. Every draw takes `gen`, a torch.Generator (None: torch's global RNG), so a
network built twice from one seed is the same network. The nn constructors still draw their default
init from the global RNG before it is overwritten; the twin's drop-path masks come after those draws,
so the order of construction is part of a run's numerics."""
import math

import torch
import torch.nn as nn


def _trunc(t, std, gen):
    # torch 1.13's trunc_normal_ takes no generator: inverse CDF from a uniform draw of `gen`.
    u = torch.rand(t.shape, generator=gen, dtype=torch.float64)
    lo, hi = (1 + math.erf(-2 / math.sqrt(2))) / 2, (1 + math.erf(2 / math.sqrt(2))) / 2
    z = torch.erfinv(2 * (lo + u * (hi - lo)) - 1) * math.sqrt(2)
    return (z.clamp(-2, 2) * std).to(t.dtype)


def trunc_normal_(t, std, gen):
    """protodino's truncatedNormal: mean 0, bounds mean ± 2·std."""
    with torch.no_grad():
        return t.copy_(torch.nn.init.trunc_normal_(torch.empty_like(t), std=std, a=-2 * std, b=2 * std, generator=gen)
                       if "generator" in nn.init.trunc_normal_.__code__.co_varnames else _trunc(t, std, gen))


def uniform_(t, bound, gen):
    with torch.no_grad():
        t.copy_((torch.rand(t.shape, generator=gen) * 2 - 1) * bound)


class Linear(nn.Linear):
    """nn.Linear with protodino's init: weight trunc_normal std 0.02, bias 0."""

    def __init__(self, i, o, gen, bias=True):
        super().__init__(i, o, bias=bias)
        trunc_normal_(self.weight, 0.02, gen)
        if bias:
            nn.init.zeros_(self.bias)
