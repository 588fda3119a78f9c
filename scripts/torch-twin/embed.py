#!/usr/bin/env python3
"""The PyTorch side of `protodino embed`: backbone features of the first --max test images from a
train_ddp.py checkpoint.pth, by the network of models/ in eval mode (BatchNorm on running statistics),
the images normalised with the mean/std stored in the checkpoint's args. Written as safetensors
('features' F32 [N, D]) so a test can hold them against protodino's own embed of the same file.

  /usr/bin/python3 scripts/torch-twin/embed.py CHECKPOINT.pth --out FILE.safetensors [--max N] [--student]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as twin  # noqa: E402
import train_ddp  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max", type=int, default=0)
    ap.add_argument("--student", action="store_true")
    args = ap.parse_args()
    import torch
    from models.network import build_network
    torch.set_num_threads(1)
    obj = torch.load(args.checkpoint, map_location="cpu")
    meta = obj["args"]
    cfg, norm = meta["config"], meta["normalization"]
    test = train_ddp.load_test_set(cfg)
    if test is None:
        raise SystemExit(f"embed.py: no test split for {cfg['dataset']}")
    images = test[0][:args.max or len(test[0])]
    net = build_network(cfg, images.shape[1], torch.Generator().manual_seed(0), 0)
    which = "student" if args.student else "teacher"
    net.load_state_dict({k[len("module."):] if k.startswith("module.") else k: v for k, v in obj[which].items()})
    net.eval()
    mean = np.array(norm["mean"], np.float32)[:, None, None]
    std = np.array(norm["std"], np.float32)[:, None, None]
    x = torch.from_numpy((images.astype(np.float32) / 255 - mean) / std)
    with torch.no_grad():
        f = net.backbone(x).numpy().astype(np.float32)
    twin.write_safetensors(args.out, {"features": f}, {"source": args.checkpoint, "network": which})
    print(f"wrote {args.out}: features {list(f.shape)}")


if __name__ == "__main__":
    main()
