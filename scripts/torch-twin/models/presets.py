"""protodino's backbone presets: src/nn/vit.ts VIT_PRESETS and src/nn/resnet.ts RESNET_PRESETS (widths
torchvision's, stem 'imagenet' unless given). Free of torch, so a config is checked before torch loads."""

VIT_PRESETS = {
    "vit_cpu": dict(dim=64, depth=4, heads=4),
    "vit_tiny": dict(dim=192, depth=12, heads=3),
    "vit_small": dict(dim=384, depth=12, heads=6),
}

RESNET_PRESETS = {
    "resnet_cpu": dict(block="basic", layers=[1, 1, 1, 1], widths=[16, 32, 64, 128], stem="cifar"),
    "resnet18": dict(block="basic", layers=[2, 2, 2, 2], widths=[64, 128, 256, 512], stem="imagenet"),
    "resnet50": dict(block="bottleneck", layers=[3, 4, 6, 3], widths=[64, 128, 256, 512], stem="imagenet"),
}
