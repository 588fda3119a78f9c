#!/usr/bin/env python3
"""PyTorch peer of bench/dino-step.ts: the same DINO training step in PyTorch eager on CPU.

Model and step match protodino's (src/train/step.ts, src/nn/vit.ts, src/nn/head.ts): a ViT
(patch embedding, CLS token, learned position embedding bicubic-resized for the local crops,
pre-norm blocks with qkv bias and GELU MLP, LayerNorm eps 1e-6), the DINO head (3-layer GELU MLP,
L2 normalisation, weight-normalised last layer with weight_g frozen at 1), student forward and
backward on 2 global + L local crops, the teacher forward on the global crops, the DINO loss with
centering, KoLeo-proto on the prototypes, DINO's per-parameter gradient clipping, AdamW with
DINO's two parameter groups, the teacher EMA and the center update.

Run: OPENBLAS_NUM_THREADS=N OMP_NUM_THREADS=N /usr/bin/python3 dino_step.py --arch vit_cpu --batch 64 --threads N
Prints one JSON line: step times, images/s, parameter count, and which BLAS / oneDNN the process
loaded. The thread variables must be set before torch loads (OpenBLAS sizes its own pool then);
this script sets them itself when they are missing, before importing torch.
"""
import argparse
import json
import math
import os
import sys
import time

PRESETS = {
    "vit_cpu": dict(dim=64, depth=4, heads=4),
    "vit_tiny": dict(dim=192, depth=12, heads=3),
    "vit_small": dict(dim=384, depth=12, heads=6),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=sorted(PRESETS), default="vit_cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="torch device: cpu, or cuda for the GPU anchor of scripts/gpu-check.sh")
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--global_size", type=int, default=28)
    p.add_argument("--local_size", type=int, default=12)
    p.add_argument("--local_crops", type=int, default=6)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--out_dim", type=int, default=1024)
    p.add_argument("--hidden_dim", type=int, default=256)
    p.add_argument("--bottleneck_dim", type=int, default=64)
    p.add_argument("--koleo_proto", type=float, default=0.1)
    p.add_argument("--clip_grad", type=float, default=3.0)
    p.add_argument("--lr", type=float, default=0.0005 * 64 / 256)
    p.add_argument("--weight_decay", type=float, default=0.04)
    p.add_argument("--momentum", type=float, default=0.996)
    p.add_argument("--teacher_temp", type=float, default=0.04)
    p.add_argument("--student_temp", type=float, default=0.1)
    p.add_argument("--center_momentum", type=float, default=0.9)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--min_steps", type=int, default=2)
    p.add_argument("--max_steps", type=int, default=10)
    p.add_argument("--min_seconds", type=float, default=0.0)
    return p.parse_args()


# Imported (by resnet_step.py, which sets the thread variables itself) it only provides its pieces.
args = parse_args() if __name__ == "__main__" else None
if args is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))

import torch  # noqa: E402  (after the thread variables)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, img_size, patch, in_chans, dim, depth, heads):
        super().__init__()
        self.patch = patch
        self.grid = img_size // patch
        self.patch_embed = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(init_weights)

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
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat((self.cls_token.expand(B, -1, -1), t), dim=1) + self.pos_encoding(H // self.patch, W // self.patch)
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)[:, 0]


def init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, hidden, bottleneck):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        self.apply(init_weights)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False  # norm_last_layer

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


class MultiCrop(nn.Module):
    """DINO's MultiCropWrapper: the backbone once per crop resolution, the head once on all."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crops):
        return self.head(torch.cat([self.backbone(c) for c in crops]))


def koleo_proto(weight_v, eps=1e-8):
    """DINOv2's KoLeoLoss on the L2-normalised prototypes."""
    x = F.normalize(weight_v, eps=eps, p=2, dim=-1)
    with torch.no_grad():
        dots = x @ x.t()
        dots.fill_diagonal_(-1)
        nn_idx = dots.argmax(dim=1)
    d = F.pairwise_distance(x, x[nn_idx], p=2, eps=eps)
    return -torch.log(d + eps).mean()


def blas_info():
    """What BLAS / oneDNN this process uses: build flags, loaded libraries, OpenBLAS' own config."""
    cfg = torch.__config__.show()
    info = {
        "torch_blas_info": next((p.split("=", 1)[1] for p in cfg.replace(",", " ").split() if p.startswith("BLAS_INFO=")), None),
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "mkldnn_in_build": "MKL-DNN" in cfg or "oneDNN" in cfg,
        "libblas_so_3": os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3"),
        "loaded": [],
    }
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if line.rstrip().endswith((".so", ".so.0", ".so.2", ".so.3")) or ".so." in line})
    info["loaded"] = [l for l in libs if any(k in os.path.basename(l) for k in ("blas", "lapack", "mkl", "dnnl", "gomp", "omp"))]
    openblas = next((l for l in info["loaded"] if "openblas" in os.path.basename(l)), None)
    if openblas:
        import ctypes
        lib = ctypes.CDLL(openblas)
        lib.openblas_get_config.restype = ctypes.c_char_p
        info["openblas_config"] = lib.openblas_get_config().decode()
        info["openblas_threads"] = lib.openblas_get_num_threads()
    base = os.path.basename(info["libblas_so_3"])
    info["path"] = ("OpenBLAS" if openblas else "reference BLAS (Netlib)" if "blas" in base else base) + \
        (", oneDNN available" if info["mkldnn_available"] else "")
    return info


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    p = PRESETS[args.arch]
    B, L, C = args.batch, args.local_crops, args.channels

    def network():
        torch.manual_seed(0)
        vit = VisionTransformer(args.global_size, args.patch, C, p["dim"], p["depth"], p["heads"])
        return MultiCrop(vit, DINOHead(p["dim"], args.out_dim, args.hidden_dim, args.bottleneck_dim))

    dev = torch.device(args.device)
    student, teacher = network().to(dev), network().to(dev)
    teacher.load_state_dict(student.state_dict())
    for q in teacher.parameters():
        q.requires_grad = False
    decay = [q for n, q in student.named_parameters() if q.requires_grad and not n.endswith(".bias") and q.ndim > 1]
    plain = [q for n, q in student.named_parameters() if q.requires_grad and (n.endswith(".bias") or q.ndim <= 1)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay}, {"params": plain, "weight_decay": 0.0}], lr=args.lr)
    center = torch.zeros(1, args.out_dim, device=dev)
    n_crops = 2 + L

    g = torch.Generator().manual_seed(1)
    globals_ = torch.randn(2 * B, C, args.global_size, args.global_size, generator=g).to(dev)
    locals_ = torch.randn(L * B, C, args.local_size, args.local_size, generator=g).to(dev) if L > 0 else None

    def step():
        nonlocal center
        crops = [globals_] + ([locals_] if locals_ is not None else [])
        with torch.no_grad():
            t_out = teacher([globals_])
        s_out = student(crops)
        # The DINO loss in protodino's fused form (one log-softmax per crop): crop v against the sum of
        # the teacher targets of the global crops other than v, summed over the 2·(n_crops − 1) pairs.
        logp = F.log_softmax(s_out / args.student_temp, dim=-1)
        with torch.no_grad():
            q = F.softmax((t_out - center) / args.teacher_temp, dim=-1)
            q0, q1 = q.chunk(2)
            targets = torch.cat([q1, q0] + [q0 + q1] * (n_crops - 2))
        loss = -(targets * logp).sum(-1).sum() / (2 * (n_crops - 1) * B)
        if args.koleo_proto > 0:
            loss = loss + args.koleo_proto * koleo_proto(student.head.last_layer.weight_v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for q_ in student.parameters():  # DINO's utils.clip_gradients
            if q_.grad is not None:
                coef = args.clip_grad / (q_.grad.data.norm(2) + 1e-6)
                if coef < 1:
                    q_.grad.data.mul_(coef)
        opt.step()
        with torch.no_grad():
            m = args.momentum
            for ps, pt in zip(student.parameters(), teacher.parameters()):
                pt.data.mul_(m).add_((1 - m) * ps.detach().data)
            center = center * args.center_momentum + t_out.mean(dim=0, keepdim=True) * (1 - args.center_momentum)
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, loss = [], float("nan")
    start = time.perf_counter()
    while len(times) < args.max_steps and (len(times) < args.min_steps or time.perf_counter() - start < args.min_seconds):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    med = sorted(times)[len(times) // 2] if len(times) % 2 else sum(sorted(times)[len(times) // 2 - 1:len(times) // 2 + 1]) / 2
    json.dump({
        "peer": "pytorch", "torch": torch.__version__, "python": sys.version.split()[0],
        "arch": args.arch, "device": str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""), "batch": B, "crops": {"global": 2, "local": L}, "threads": torch.get_num_threads(),
        "parameters": sum(q.numel() for q in student.parameters()),
        "step_seconds": times, "median_seconds": med, "images_per_s": B / med, "loss": loss,
        "finite": math.isfinite(loss), "blas": blas_info(),
    }, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
