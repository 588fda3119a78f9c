#!/usr/bin/env python3
"""Fixtures for test/nn/resnet.test.ts, written by PyTorch itself.

  /usr/bin/python3 scripts/make-resnet-fixtures.py     writes test/fixtures/resnet/*

Needs torch (Debian: python3-torch). torchvision (python3-torchvision) is the oracle for the names:
when it is installed the state-dict lists come from torchvision's resnet18/resnet50 (fc removed, as
DINO replaces it by nn.Identity), and the plain-torch reference below is checked against it (same
names and shapes, same outputs with torchvision's weights). Without torchvision the lists come from
the reference alone.

The reference is torchvision's ResNet (v1.5: the stride of a Bottleneck sits on its 3x3 conv)
generalised to any stage widths and number of stages, and to a CIFAR-style stem (3x3 stride-1 conv,
no max-pool) for small images, which torchvision cannot express.

Files:
  names.json        {"resnet18": [[name, shape], ...], "resnet50": [...]} in state-dict order
  <case>.pth        torch.save of {"config", "state_dict" (float32, with random BN affine and
                    running statistics so eval mode is not an identity), "input", "eval_out",
                    "train_out", "train_state" (running statistics after one training forward),
                    and for gradient cases "weight" (the loss is sum(weight * train_out)),
                    "grads" (d loss / d parameter) and "input_grad"}. Expected values are computed
                    in float64 from the float32 weights and input, and stored as float64.
"""
import json
import os

import torch
from torch import nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'resnet')


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, widths=(64, 128, 256, 512), stem='imagenet', in_chans=3):
        super().__init__()
        block = {'basic': BasicBlock, 'bottleneck': Bottleneck}[block]
        self.inplanes = widths[0]
        if stem == 'imagenet':
            self.conv1 = nn.Conv2d(in_chans, self.inplanes, 7, 2, 3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_chans, self.inplanes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem == 'imagenet' else nn.Identity()
        self.stages = []
        for i, (n, w) in enumerate(zip(layers, widths)):
            layer = self._make_layer(block, w, n, 1 if i == 0 else 2)
            setattr(self, f'layer{i + 1}', layer)
            self.stages.append(layer)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for layer in self.stages:
            x = layer(x)
        return torch.flatten(self.avgpool(x), 1)


PRESETS = {
    'resnet18': dict(block='basic', layers=[2, 2, 2, 2]),
    'resnet50': dict(block='bottleneck', layers=[3, 4, 6, 3]),
}


def names(model):
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def torchvision_names():
    """torchvision's lists with fc dropped, after checking the reference against torchvision."""
    try:
        import torchvision
    except ImportError:
        print('torchvision not installed: names come from the plain-torch reference only')
        return {arch: names(ResNet(**cfg)) for arch, cfg in PRESETS.items()}
    out = {}
    for arch, cfg in PRESETS.items():
        tv = getattr(torchvision.models, arch)()
        tv.fc = nn.Identity()
        ref = ResNet(**cfg)
        assert names(tv) == names(ref), f'{arch}: reference names differ from torchvision'
        ref.load_state_dict(tv.state_dict())
        tv.eval()
        ref.eval()
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            assert torch.allclose(tv(x), ref(x), atol=1e-5), f'{arch}: reference output differs from torchvision'
        out[arch] = names(tv)
        print(f'{arch}: reference matches torchvision {torchvision.__version__} ({len(out[arch])} entries)')
    return out


def randomise_bn(model, gen):
    """Non-trivial affine and running statistics, so eval mode tests more than an identity."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 0.5 + torch.rand(c, generator=gen)
            m.bias.data = torch.rand(c, generator=gen) - 0.5
            m.running_mean.data = (torch.rand(c, generator=gen) - 0.5) * 0.2
            m.running_var.data = 0.5 + torch.rand(c, generator=gen)
            m.num_batches_tracked.fill_(7)


def make_case(name, config, input_shape, grads, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ResNet(config['block'], config['layers'], config['widths'], config['stem'], config['in_chans'])
    randomise_bn(model, gen)
    x = torch.rand(*input_shape, generator=gen) * 2 - 1
    state = {k: v.clone() for k, v in model.state_dict().items()}

    ref = model.double()
    ref.eval()
    with torch.no_grad():
        eval_out = ref(x.double())
    ref.train()
    xd = x.double().requires_grad_(grads)
    train_out = ref(xd)
    case = {
        'config': config, 'state_dict': state, 'input': x, 'eval_out': eval_out, 'train_out': train_out.detach(),
        'train_state': {k: v.clone() for k, v in ref.state_dict().items() if 'running' in k or 'num_batches' in k},
    }
    if grads:
        w = torch.rand(train_out.shape, generator=gen, dtype=torch.float64) + 0.5
        (train_out * w).sum().backward()
        case['weight'] = w
        case['grads'] = {k: p.grad.clone() for k, p in ref.named_parameters()}
        case['input_grad'] = xd.grad.clone()
    torch.save(case, os.path.join(OUT, f'{name}.pth'))
    print(f'{name}.pth: {sum(v.numel() for v in state.values())} state values, output {list(eval_out.shape)}')


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'names.json'), 'w') as f:
        json.dump(torchvision_names(), f)
        f.write('\n')
    # resnet_cpu's shape (BasicBlock, CIFAR stem, 1 channel) at a quarter of its widths
    make_case('basic-cifar', dict(block='basic', layers=[1, 1, 1, 1], widths=[4, 8, 8, 16], stem='cifar', in_chans=1),
              (3, 1, 10, 10), grads=False, seed=1)
    # the ImageNet stem (7x7 stride 2 + max-pool) and Bottleneck blocks (downsample in every stage)
    make_case('bottleneck-imagenet', dict(block='bottleneck', layers=[2, 1, 1, 1], widths=[4, 4, 8, 8], stem='imagenet', in_chans=3),
              (2, 3, 40, 40), grads=False, seed=2)
    # gradient case: one BasicBlock per stage, two stages (the second with a strided downsample)
    make_case('tiny-grad', dict(block='basic', layers=[1, 1], widths=[3, 5], stem='cifar', in_chans=2),
              (2, 2, 6, 6), grads=True, seed=3)


if __name__ == '__main__':
    main()
