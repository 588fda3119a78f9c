"""The ViT of src/nn/vit.ts: patch embedding, CLS token, learned position embedding bicubic-resized
for the local crops, pre-norm blocks with qkv bias and GELU MLP, LayerNorm eps 1e-6, stochastic depth
rising linearly to drop_path_rate over the blocks. Returns the CLS token's features."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .init import Linear, trunc_normal_, uniform_


class Attention(nn.Module):
    def __init__(self, dim, heads, gen):
        super().__init__()
        self.heads = heads
        self.scale = 1 / math.sqrt(dim / heads)
        self.qkv = Linear(dim, dim * 3, gen)
        self.proj = Linear(dim, dim, gen)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden, gen):
        super().__init__()
        self.fc1 = Linear(dim, hidden, gen)
        self.fc2 = Linear(hidden, dim, gen)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


def drop_path(x, p, training):
    if p == 0 or not training:
        return x
    keep = torch.bernoulli(torch.full((x.shape[0],) + (1,) * (x.ndim - 1), 1 - p, dtype=x.dtype))
    return x * keep / (1 - p)


class Block(nn.Module):
    def __init__(self, dim, heads, dp, gen):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, gen)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim, gen)
        self.dp = dp

    def forward(self, x):
        x = x + drop_path(self.attn(self.norm1(x)), self.dp, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.dp, self.training)


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_chans, dim, gen):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        bound = 1 / math.sqrt(in_chans * patch * patch)
        uniform_(self.proj.weight, bound, gen)
        uniform_(self.proj.bias, bound, gen)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    def __init__(self, img_size, patch, in_chans, dim, depth, heads, drop_path_rate, gen):
        super().__init__()
        self.patch = patch
        self.grid = img_size // patch
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid + 1, dim))
        trunc_normal_(self.cls_token, 0.02, gen)
        trunc_normal_(self.pos_embed, 0.02, gen)
        self.patch_embed = PatchEmbed(patch, in_chans, dim, gen)
        self.blocks = nn.ModuleList([Block(dim, heads, drop_path_rate * i / (depth - 1) if depth > 1 else 0, gen)
                                     for i in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def pos_encoding(self, gh, gw):
        if gh == self.grid and gw == self.grid:
            return self.pos_embed
        cls, patches = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        d = patches.shape[-1]
        grid = patches.reshape(1, self.grid, self.grid, d).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
        return torch.cat((cls, grid.permute(0, 2, 3, 1).reshape(1, gh * gw, d)), dim=1)

    def forward(self, x):
        B, _, H, W = x.shape
        t = self.patch_embed(x)
        t = torch.cat((self.cls_token.expand(B, -1, -1), t), dim=1) + self.pos_encoding(H // self.patch, W // self.patch)
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)[:, 0]
