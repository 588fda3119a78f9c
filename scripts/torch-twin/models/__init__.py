"""The one PyTorch definition of protodino's networks, for every Python program of the repository:
the bench step peers (bench/peers/), the training twin (train.py), the DDP trainer (train_ddp.py)
and embed.py. One file per piece, as in src/nn and src/train:

  presets.py  the ViT and ResNet presets (no torch: the trainers check --arch before importing it)
  init.py     protodino's initialisation scheme, drawn from a torch.Generator
  vit.py      the ViT of src/nn/vit.ts
  resnet.py   the ResNets of src/nn/resnet.ts
  head.py     the DINO head of src/nn/head.ts
  network.py  backbone + head, built from a protodino config, with the multi-crop forward

Modules and parameters carry facebookresearch/dino's names (backbone.blocks.0.attn.qkv.weight,
head.last_layer.weight_v, ...), which protodino reads and writes: checkpoints cross between the
engines by name. Importing this package imports no torch; its submodules other than presets do.
"""
