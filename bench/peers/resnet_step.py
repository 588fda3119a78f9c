#!/usr/bin/env python3
"""PyTorch peer of bench/resnet-step.ts: protodino's ResNet DINO training step in PyTorch eager on CPU.

The model and step match src/nn/resnet.ts and src/train/step.ts: the ResNet and the DINO head of
scripts/torch-twin/models/ (the definition the training twin and the DDP trainer use;
torchvision's v1.5 with protodino's presets, fc replaced by global average pooling), the head with
BatchNorm in its hidden layers (DINO's --use_bn_in_head), the backbone once per crop resolution and
the head once on all crops, the DINO loss with centering, KoLeo-proto, DINO's per-parameter
clipping, AdamW with two parameter groups, the teacher forward on the global crops, EMA and center
update. The ViT peer (dino_step.py) provides the head's initialisation (DINO's own), KoLeo-proto and
the BLAS report.

Run: /usr/bin/python3 resnet_step.py --arch resnet_cpu --batch 64 --threads N
Prints one JSON line: step times (wall and CPU: on a shared machine CPU time is the steadier), images/s, parameters, peak memory (peak RSS less the RSS after
importing torch, so the interpreter and libraries are not counted), and which convolution route
(oneDNN/mkldnn or the native/BLAS one) and BLAS the process uses.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

# The networks' one definition; its presets load without torch, so --arch is checked before torch.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "torch-twin"))
from models.presets import RESNET_PRESETS  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=sorted(RESNET_PRESETS), default="resnet_cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--global_size", type=int, default=28)
    p.add_argument("--local_size", type=int, default=12)
    p.add_argument("--local_crops", type=int, default=4)
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
    p.add_argument("--mkldnn", choices=["on", "off"], default="on",
                   help="torch.backends.mkldnn.enabled: off forces the native (im2col + BLAS) convolution")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--min_steps", type=int, default=2)
    p.add_argument("--max_steps", type=int, default=10)
    p.add_argument("--min_seconds", type=float, default=0.0)
    return p.parse_args()


args = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, str(args.threads))


import torch  # noqa: E402  (after the thread variables)
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dino_step import blas_info, koleo_proto, rss_bytes, upstream_head  # noqa: E402
from models.network import DinoNetwork  # noqa: E402
from models.resnet import ResNet  # noqa: E402

RSS_AFTER_IMPORT = rss_bytes()


def conv_route():
    """Which kernels F.conv2d takes on CPU for float32 NCHW here: oneDNN (mkldnn) or the native slow path (im2col + BLAS gemm)."""
    on = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
    return "oneDNN (mkldnn)" if on else "native im2col + BLAS (mkldnn off)"


def main():
    torch.backends.mkldnn.enabled = args.mkldnn == "on"
    torch.set_num_threads(args.threads)
    B, L, C = args.batch, args.local_crops, args.channels

    def network():
        torch.manual_seed(0)
        net = ResNet(args.arch, C)
        return DinoNetwork(net, upstream_head(net.embed_dim, args.out_dim, args.hidden_dim, args.bottleneck_dim, True))

    student, teacher = network(), network()
    teacher.load_state_dict(student.state_dict())
    for q in teacher.parameters():
        q.requires_grad = False
    decay = [q for n, q in student.named_parameters() if q.requires_grad and not n.endswith(".bias") and q.ndim > 1]
    plain = [q for n, q in student.named_parameters() if q.requires_grad and (n.endswith(".bias") or q.ndim <= 1)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay}, {"params": plain, "weight_decay": 0.0}], lr=args.lr)
    center = torch.zeros(1, args.out_dim)
    n_crops = 2 + L

    g = torch.Generator().manual_seed(1)
    globals_ = torch.randn(2 * B, C, args.global_size, args.global_size, generator=g)
    locals_ = torch.randn(L * B, C, args.local_size, args.local_size, generator=g) if L > 0 else None

    def step():
        nonlocal center
        with torch.no_grad():
            t_out, _ = teacher(globals_)
        s_out, _ = student(globals_, locals_)
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
        for q_ in student.parameters():
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
    times, cpu, loss = [], [], float("nan")
    start = time.perf_counter()
    while len(times) < args.max_steps and (len(times) < args.min_steps or time.perf_counter() - start < args.min_seconds):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    s = sorted(times)
    med = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    json.dump({
        "peer": "pytorch", "torch": torch.__version__, "python": sys.version.split()[0],
        "arch": args.arch, "batch": B, "crops": {"global": 2, "local": L}, "threads": torch.get_num_threads(),
        "parameters": sum(q.numel() for q in student.parameters()),
        "step_seconds": times, "step_cpu_seconds": cpu, "median_seconds": med, "images_per_s": B / med, "loss": loss,
        "finite": math.isfinite(loss), "peak_bytes": peak - RSS_AFTER_IMPORT, "peak_rss_bytes": peak,
        "conv_route": conv_route(), "blas": blas_info(),
    }, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
