"""The pieces of DINO's step that change when the batch is split over processes, and the prototype
measures the trainer logs. Imported by train_ddp.py; torch only.

SyncBatchNorm: torch 1.13's nn.SyncBatchNorm runs on CUDA only, and without it a process normalises
by its own B/W samples, which is a different network from the one-process run. GlooSyncBatchNorm
computes the batch mean and variance from sums all-reduced with torch.distributed.nn's differentiable
all_reduce, so the backward pass gets the cross-process terms too; it keeps nn.BatchNorm's parameter
and buffer names, so checkpoints are unchanged. With one process it skips the collectives and is the
same formula, which is what lets a 1-process run be the reference for a 2-process one.
"""
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm


def _world():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _all_sum(t):
    if _world() == 1:
        return t
    import torch.distributed.nn.functional as dnf
    return dnf.all_reduce(t, op=dist.ReduceOp.SUM)


class GlooSyncBatchNorm(_BatchNorm):
    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x):
        self._check_input_dim(x)
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        local = x.numel() // x.shape[1]
        n = float(_all_sum(torch.tensor([float(local)])).item()) if _world() > 1 else float(local)
        mean = _all_sum(x.sum(dims)) / n
        xc = x - mean.view(shape)
        var = _all_sum((xc * xc).sum(dims)) / n
        y = xc * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                # torch (and protodino) keep the unbiased variance in the running estimate.
                self.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1, 1)), alpha=m)
                self.num_batches_tracked.add_(1)
        return y


def convert_sync_batchnorm(module, device):
    """Every BatchNorm of `module` synchronised over the process group: torch's on CUDA, ours on CPU."""
    if device == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, GlooSyncBatchNorm):
        out = GlooSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        with torch.no_grad():
            if module.affine:
                out.weight.copy_(module.weight)
                out.bias.copy_(module.bias)
            out.running_mean.copy_(module.running_mean)
            out.running_var.copy_(module.running_var)
            out.num_batches_tracked.copy_(module.num_batches_tracked)
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, device))
    return out


def nearest_other(x, block=1024):
    """Index of each unit row's nearest other row, one block of rows at a time: memory O(block·K),
    never the K×K similarity matrix (at K = 65536 that would be 16 GiB in float32)."""
    K = x.shape[0]
    out = torch.empty(K, dtype=torch.long, device=x.device)
    with torch.no_grad():
        for s in range(0, K, block):
            e = min(K, s + block)
            dots = x[s:e] @ x.t()
            rows = torch.arange(e - s, device=x.device)
            dots[rows, rows + s] = -2  # never itself
            out[s:e] = dots.argmax(dim=1)
    return out


def koleo_blocked(w, eps=1e-8, block=1024):
    """DINOv2's KoLeo (protodino's koleoLoss, the twin's koleo) on the prototype rows, the neighbour
    search blocked: -mean log(distance to the nearest other row + eps)."""
    x = F.normalize(w, eps=eps, p=2, dim=-1)
    nn_idx = nearest_other(x.detach(), block)
    d = F.pairwise_distance(x, x[nn_idx], p=2, eps=eps)
    return -torch.log(d + eps).mean()


def unique_greedy(w, eps_list, block=1024):
    """protodino's greedy unique-prototype count (src/eval/unique.ts): scan rows in index order and keep
    one unless its cosine with a kept row exceeds 1 - eps²/2 (Euclidean ε on unit rows)."""
    x = F.normalize(w.detach().double(), dim=-1)
    K = x.shape[0]
    out = {}
    for eps in eps_list:
        thr = 1 - eps * eps / 2
        kept = torch.empty(0, x.shape[1], dtype=x.dtype)
        for s in range(0, K, block):
            blk = x[s:s + block]
            near_kept = (blk @ kept.t() > thr).any(dim=1) if kept.shape[0] else torch.zeros(blk.shape[0], dtype=torch.bool)
            inner = blk @ blk.t() > thr
            keep = []
            for i in range(blk.shape[0]):
                if near_kept[i] or (keep and bool(inner[i, keep].any())):
                    continue
                keep.append(i)
            kept = torch.cat([kept, blk[keep]])
        out[str(eps)] = int(kept.shape[0])
    return out
