"""A DINO network, backbone + head, as src/train/network.ts builds it from a config."""
import torch
import torch.nn as nn

from .head import DINOHead
from .presets import VIT_PRESETS
from .resnet import ResNet
from .vit import VisionTransformer


class DinoNetwork(nn.Module):
    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, globals_, locals_=None):
        """DINO's MultiCropWrapper: the backbone once per crop resolution, the head once on all crops.
        One call per network, because DDP hooks the wrapped module's forward, not its submodules'.
        Returns the head's output and the global crops' features (KoLeo on features uses them)."""
        feats = [self.backbone(globals_)] + ([self.backbone(locals_)] if locals_ is not None else [])
        return self.head(torch.cat(feats) if len(feats) > 1 else feats[0]), feats[0]


def build_network(cfg, channels, gen, drop_path_rate):
    """The network a protodino config (train.py DEFAULTS' keys) describes, its init drawn from `gen`,
    backbone first: the twin's --init torch and the DDP trainer's fresh start depend on that order."""
    if cfg["arch"] in VIT_PRESETS:
        p = VIT_PRESETS[cfg["arch"]]
        backbone = VisionTransformer(cfg["global_crops_size"], cfg["patch_size"], channels, p["dim"], p["depth"], p["heads"],
                                     drop_path_rate, gen)
        dim = p["dim"]
    else:  # protodino's ResNets take no drop path
        backbone = ResNet(cfg["arch"], channels, gen)
        dim = backbone.embed_dim
    head = DINOHead(dim, cfg["out_dim"], cfg["hidden_dim"], cfg["bottleneck_dim"], cfg["head_layers"], cfg["use_bn_in_head"],
                    cfg["norm_last_layer"], gen)
    return DinoNetwork(backbone, head)
