"""The DINO head of src/nn/head.ts: an MLP of head_layers Linear layers (GELU between them, BatchNorm
before each GELU with use_bn, DINO's --use_bn_in_head), L2 normalisation, then the prototypes: a
bias-free Linear under weight normalisation, weight_g set to 1 and frozen with norm_last_layer.
The prototypes (weight_v) are drawn U(±1/sqrt(bottleneck)), as protodino draws them."""
import math

import torch.nn as nn
import torch.nn.functional as F

from .init import Linear, uniform_


class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, hidden, bottleneck, nlayers, use_bn, norm_last_layer, gen):
        super().__init__()
        nlayers = max(1, nlayers)
        if nlayers == 1:
            self.mlp = Linear(in_dim, bottleneck, gen)
        else:
            layers = [Linear(in_dim, hidden, gen)]
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(nn.GELU())
            for _ in range(nlayers - 2):
                layers.append(Linear(hidden, hidden, gen))
                if use_bn:
                    layers.append(nn.BatchNorm1d(hidden))
                layers.append(nn.GELU())
            layers.append(Linear(hidden, bottleneck, gen))
            self.mlp = nn.Sequential(*layers)
        last = nn.Linear(bottleneck, out_dim, bias=False)
        uniform_(last.weight, 1 / math.sqrt(bottleneck), gen)
        self.last_layer = nn.utils.weight_norm(last)
        self.last_layer.weight_g.data.fill_(1)
        if norm_last_layer:
            self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))
