#!/usr/bin/env python3
"""PyTorch peer of bench/dino-step.ts: the same DINO training step in PyTorch eager on CPU.

Model and step match protodino's (src/train/step.ts, src/nn/vit.ts, src/nn/head.ts): the ViT and the
DINO head of scripts/torch-twin/models/ (the definition the training twin and the DDP trainer use),
student forward and backward on 2 global + L local crops, the teacher forward on the global crops,
the DINO loss with centering, KoLeo-proto on the prototypes, DINO's per-parameter gradient clipping,
AdamW with DINO's two parameter groups, the teacher EMA and the center update. The weights start
from facebookresearch/dino's own initialisation (upstream_vit, upstream_head), not protodino's:
the peer times a step, and keeping its start keeps its loss comparable with earlier reports.

Run: OPENBLAS_NUM_THREADS=N OMP_NUM_THREADS=N /usr/bin/python3 dino_step.py --arch vit_cpu --batch 64 --threads N
[--linear blas|onednn]: the Linear layers through F.linear (the BLAS) or through oneDNN as 1x1 convolutions,
the route a PyTorch built with MKL/oneDNN favours on some hosts; bench/dino-step.ts runs both and keeps
the faster. The attention products (bmm) stay in the BLAS either way.
Prints one JSON line: step times, images/s, parameter count, peak memory (peak RSS less the RSS after
importing torch), and which BLAS / oneDNN the process loaded. The thread variables must be set before torch loads (OpenBLAS sizes its own pool then);
this script sets them itself when they are missing, before importing torch.
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
from models.presets import VIT_PRESETS  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=sorted(VIT_PRESETS), default="vit_cpu")
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
    p.add_argument("--linear", choices=["blas", "onednn"], default="blas",
                   help="route of the Linear layers: F.linear (BLAS sgemm), or oneDNN as 1x1 convolutions")
    return p.parse_args()


# Imported (by resnet_step.py, which sets the thread variables itself) it only provides its pieces.
args = parse_args() if __name__ == "__main__" else None
if args is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))

import torch  # noqa: E402  (after the thread variables)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from models.head import DINOHead  # noqa: E402
from models.network import DinoNetwork  # noqa: E402
from models.vit import VisionTransformer  # noqa: E402


def rss_bytes():
    """Resident set size now (resnet_step.py reads it the same way, before importing this module)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# What torch and the interpreter hold before a step's tensors exist: peak memory is counted above it.
RSS_AFTER_IMPORT = rss_bytes()


def init_weights(m):
    """DINO's _init_weights, from torch's global RNG."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def upstream_vit(img_size, patch, in_chans, dim, depth, heads):
    """The shared ViT with facebookresearch/dino's initialisation, drawn from torch's global RNG in the
    order DINO's vision_transformer.py draws it: every conv and Linear as its constructor draws it,
    then trunc_normal_ (std 0.02, cut at ±2) for pos_embed, cls_token and every Linear, zero biases."""
    state = torch.get_rng_state()
    vit = VisionTransformer(img_size, patch, in_chans, dim, depth, heads, 0, None)
    # Its constructor drew protodino's init from the same RNG; rewinding makes the draws below the
    # first ones after the caller's seed, whatever protodino's scheme takes.
    torch.set_rng_state(state)
    for m in vit.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.reset_parameters()
    nn.init.trunc_normal_(vit.pos_embed, std=0.02)
    nn.init.trunc_normal_(vit.cls_token, std=0.02)
    vit.apply(init_weights)
    return vit


def upstream_head(in_dim, out_dim, hidden, bottleneck, use_bn):
    """The shared DINO head (3 layers, norm_last_layer) with facebookresearch/dino's initialisation from
    torch's global RNG: the MLP's Linears as constructed, then trunc_normal_ over them; the prototypes
    keep nn.Linear's default draw (kaiming_uniform_, a = sqrt(5)), as DINOHead does."""
    state = torch.get_rng_state()
    head = DINOHead(in_dim, out_dim, hidden, bottleneck, 3, use_bn, True, None)
    torch.set_rng_state(state)  # as in upstream_vit
    linears = [m for m in head.mlp.modules() if isinstance(m, nn.Linear)]
    for m in linears:
        m.reset_parameters()
    for m in linears:
        init_weights(m)
    nn.init.kaiming_uniform_(head.last_layer.weight_v, a=math.sqrt(5))
    return head


def koleo_proto(weight_v, eps=1e-8):
    """DINOv2's KoLeoLoss on the L2-normalised prototypes."""
    x = F.normalize(weight_v, eps=eps, p=2, dim=-1)
    with torch.no_grad():
        dots = x @ x.t()
        dots.fill_diagonal_(-1)
        nn_idx = dots.argmax(dim=1)
    d = F.pairwise_distance(x, x[nn_idx], p=2, eps=eps)
    return -torch.log(d + eps).mean()


def conv1x1_forward(self, x):
    """nn.Linear as a 1x1 convolution over the flattened rows: CPU conv2d runs in oneDNN (mkldnn) for
    float32 once the batch (here every token of every crop) has 16 rows or more, with its own backward;
    F.linear runs in the BLAS. Same parameters, same optimizer: only the kernels change."""
    shape = x.shape
    y = F.conv2d(x.reshape(-1, shape[-1], 1, 1), self.weight[:, :, None, None], self.bias)
    return y.reshape(*shape[:-1], self.out_features)


def route_linears(module, route):
    """Sends every nn.Linear of module through `route` (blas: unchanged; onednn: conv1x1_forward)."""
    if route == "onednn":
        for m in module.modules():
            if isinstance(m, nn.Linear):
                m.forward = conv1x1_forward.__get__(m)
    return module


def linear_route(route):
    """What the Linear layers ran on, checked with the autograd profiler on a small 1x1 convolution."""
    if route == "blas":
        return "F.linear (BLAS sgemm)"
    lin = route_linears(nn.Linear(8, 8), "onednn")
    with torch.autograd.profiler.profile() as prof:
        lin(torch.randn(32, 8, requires_grad=True)).sum().backward()
    names = {e.name for e in prof.function_events}
    if not any("mkldnn" in n for n in names):
        raise SystemExit(f"--linear onednn: conv2d did not run in oneDNN here (ops: {sorted(names)[:12]})")
    return "oneDNN 1x1 convolution (aten::mkldnn_convolution)"


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
    if args.linear == "onednn" and not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        raise SystemExit("--linear onednn: this PyTorch has no oneDNN (torch.backends.mkldnn)")
    route = linear_route(args.linear)
    torch.manual_seed(0)
    p = VIT_PRESETS[args.arch]
    B, L, C = args.batch, args.local_crops, args.channels

    def network():
        torch.manual_seed(0)
        vit = upstream_vit(args.global_size, args.patch, C, p["dim"], p["depth"], p["heads"])
        net = DinoNetwork(vit, upstream_head(p["dim"], args.out_dim, args.hidden_dim, args.bottleneck_dim, False))
        return route_linears(net, args.linear)

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
        with torch.no_grad():
            t_out, _ = teacher(globals_)
        s_out, _ = student(globals_, locals_)
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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    med = sorted(times)[len(times) // 2] if len(times) % 2 else sum(sorted(times)[len(times) // 2 - 1:len(times) // 2 + 1]) / 2
    json.dump({
        "peer": "pytorch", "torch": torch.__version__, "python": sys.version.split()[0],
        "arch": args.arch, "device": str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""), "batch": B, "crops": {"global": 2, "local": L}, "threads": torch.get_num_threads(),
        "parameters": sum(q.numel() for q in student.parameters()),
        "step_seconds": times, "median_seconds": med, "images_per_s": B / med, "loss": loss,
        "finite": math.isfinite(loss), "peak_bytes": peak - RSS_AFTER_IMPORT, "peak_rss_bytes": peak,
        "blas": blas_info(), "linear_route": route,
    }, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
