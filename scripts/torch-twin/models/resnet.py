"""The ResNets of src/nn/resnet.ts: torchvision's ResNet v1.5 (bias-free convs, BatchNorm, projection
shortcuts, a Bottleneck strides on its 3x3 conv) with protodino's presets (presets.py), fc replaced by
global average pooling as DINO does. Modules carry torchvision's names (conv1, bn1, layer1.0.conv1,
layer2.0.downsample.0, ...) because protodino keeps them. Init is torchvision's
kaiming_normal_(mode='fan_out', nonlinearity='relu') for the convs, drawn from `generator` (None:
torch's global RNG, which the ResNet step peer uses), BatchNorm 1/0; BatchNorm keeps torch's momentum
0.1 and unbiased running variance, as protodino does.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .presets import RESNET_PRESETS


def conv(inp, out, k, stride, padding, generator):
    c = nn.Conv2d(inp, out, k, stride, padding, bias=False)
    with torch.no_grad():
        c.weight.copy_(torch.randn(c.weight.shape, generator=generator) * math.sqrt(2 / (out * k * k)))
    return c


def downsample(inp, out, stride, generator):
    # torchvision's rule for a projection shortcut; None keeps the identity.
    if stride == 1 and inp == out:
        return None
    return nn.Sequential(conv(inp, out, 1, stride, 0, generator), nn.BatchNorm2d(out))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, generator=None):
        super().__init__()
        self.conv1 = conv(inplanes, planes, 3, stride, 1, generator)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, 1, 1, generator)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample(inplanes, planes, stride, generator)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride, generator=None):
        super().__init__()
        self.conv1 = conv(inplanes, planes, 1, 1, 0, generator)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, stride, 1, generator)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv(planes, planes * 4, 1, 1, 0, generator)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample(inplanes, planes * 4, stride, generator)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        return F.relu(self.bn3(self.conv3(h)) + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, arch, in_chans, generator=None):
        super().__init__()
        if arch not in RESNET_PRESETS:
            raise ValueError(f"unknown ResNet arch '{arch}' (known: {', '.join(RESNET_PRESETS)})")
        p = RESNET_PRESETS[arch]
        Block = BasicBlock if p["block"] == "basic" else Bottleneck
        inplanes = p["widths"][0]
        self.imagenet_stem = p["stem"] == "imagenet"
        self.conv1 = conv(in_chans, inplanes, 7, 2, 3, generator) if self.imagenet_stem else conv(in_chans, inplanes, 3, 1, 1, generator)
        self.bn1 = nn.BatchNorm2d(inplanes)
        for i, (n, planes) in enumerate(zip(p["layers"], p["widths"])):
            blocks = []
            for j in range(n):
                blocks.append(Block(inplanes, planes, 2 if i > 0 and j == 0 else 1, generator))
                inplanes = planes * Block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.n_stages = len(p["layers"])
        self.embed_dim = inplanes

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        if self.imagenet_stem:
            h = F.max_pool2d(h, 3, 2, 1)
        for i in range(self.n_stages):
            h = getattr(self, f"layer{i + 1}")(h)
        return h.mean(dim=(2, 3))
