#!/usr/bin/python3
"""Fixtures for test/ssl: the DINO-family objectives computed by an independent PyTorch
implementation written after the reference code, in float64.

  /usr/bin/python3 scripts/make-ssl-fixtures.py     writes test/fixtures/ssl/*.safetensors

Needs torch (Debian: apt-get install python3-torch); the project itself never does. Inputs are drawn
in float32 by a seeded torch.Generator, rounded to float16 and stored as F16, so the file holds
exactly the numbers both sides compute with (half the bytes of F32). Everything is then computed in
float64 and the expected values stored as F32 (a rounding of 6e-8 relative, far below the 1e-4 the
tests allow). Where an input decides a discrete choice (KoLeo's nearest neighbour), the script
asserts a margin so float32 arithmetic cannot choose differently.

Reference code followed (not imported):
  facebookresearch/dino main_dino.py        DINOLoss.forward, DINOLoss.update_center
  facebookresearch/dino vision_transformer.py DINOHead
  facebookresearch/dinov2 dinov2/loss/dino_clstoken_loss.py  sinkhorn_knopp_teacher
  facebookresearch/dinov2 dinov2/loss/koleo_loss.py          KoLeoLoss
  facebookresearch/msn src/losses.py                          me_max regulariser
  KoLeo-proto (Govindarajan et al., BMVC 2024): KoLeoLoss on the prototypes, the rows of
  head.last_layer.weight_v, differentiated with respect to weight_v.
"""
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'ssl')
RANK = ['BOOL', 'U8', 'I8', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64']
CAST = {'F16': torch.float16, 'F32': torch.float32}


def write(path, tensors, metadata):
    """tensors: {name: (dtype, tensor)}; laid out as the safetensors reference does (descending dtype
    rank, then name; header padded with spaces to 8 bytes), so every tensor is aligned."""
    order = sorted(tensors, key=lambda n: (-RANK.index(tensors[n][0]), n))
    chunks = []
    for n in order:
        dtype, t = tensors[n]
        t = t.detach().to(CAST[dtype]).contiguous()
        chunks.append((t.view(torch.int16) if dtype == 'F16' else t).numpy().tobytes())
    parts = ['"__metadata__":{' + ','.join(f'{json.dumps(k)}:{json.dumps(str(metadata[k]))}' for k in sorted(metadata)) + '}']
    offset = 0
    for name, chunk in zip(order, chunks):
        dtype, t = tensors[name]
        parts.append(f'{json.dumps(name)}:{{"dtype":"{dtype}","shape":[{",".join(str(d) for d in t.shape)}],'
                     f'"data_offsets":[{offset},{offset + len(chunk)}]}}')
        offset += len(chunk)
    header = ('{' + ','.join(parts) + '}').encode('utf-8')
    header += b' ' * (-len(header) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(header)) + header + b''.join(chunks))
    print(f'wrote {os.path.relpath(path)}: {8 + len(header) + offset} bytes')


class Inputs:
    """Seeded inputs, rounded to float16 and handed out as float64; stored under their names."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)
        self.stored = {}

    def _keep(self, name, x32):
        h = x32.to(torch.float16)
        assert torch.isfinite(h).all(), name
        self.stored[name] = ('F16', h)
        return h.to(torch.float64)

    def uniform(self, name, shape, lo=-1.0, hi=1.0):
        return self._keep(name, lo + (hi - lo) * torch.rand(shape, generator=self.g, dtype=torch.float32))

    def normal(self, name, shape, std=1.0):
        return self._keep(name, std * torch.randn(shape, generator=self.g, dtype=torch.float32))

    def given(self, name, x):
        return self._keep(name, x.to(torch.float32))


def expect(store, name, t):
    store[name] = ('F32', t.detach().clone())  # a copy: parameters change in place later


# --------------------------------------------------------------------------------------------------
# facebookresearch/dino, main_dino.py (the temperature schedule replaced by one fixed value).

class DINOLoss(nn.Module):
    def __init__(self, out_dim, ncrops, teacher_temp, student_temp=0.1, center_momentum=0.9, center=None):
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.ncrops = ncrops
        self.teacher_temp = teacher_temp
        self.register_buffer("center", torch.zeros(1, out_dim, dtype=torch.float64) if center is None else center.clone())

    def forward(self, student_output, teacher_output):
        student_out = student_output / self.student_temp
        student_out = student_out.chunk(self.ncrops)

        temp = self.teacher_temp
        teacher_out = F.softmax((teacher_output - self.center) / temp, dim=-1)
        teacher_out = teacher_out.detach().chunk(2)

        total_loss = 0
        n_loss_terms = 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq:
                    continue
                loss = torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)
                total_loss += loss.mean()
                n_loss_terms += 1
        total_loss /= n_loss_terms
        self.update_center(teacher_output)
        return total_loss

    @torch.no_grad()
    def update_center(self, teacher_output):
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True)
        batch_center = batch_center / len(teacher_output)  # world size 1
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)


# facebookresearch/dinov2, DINOLoss.sinkhorn_knopp_teacher (world size 1).
@torch.no_grad()
def sinkhorn_knopp_teacher(teacher_output, teacher_temp, n_iterations=3):
    Q = torch.exp(teacher_output / teacher_temp).t()
    B = Q.shape[1]
    K = Q.shape[0]
    sum_Q = torch.sum(Q)
    Q /= sum_Q
    for it in range(n_iterations):
        sum_of_rows = torch.sum(Q, dim=1, keepdim=True)
        Q /= sum_of_rows
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.t()


# facebookresearch/msn, src/losses.py: the me-max term of init_msn_loss.
def me_max(student_logits, temp):
    probs = F.softmax(student_logits / temp, dim=1)
    avg_probs = torch.mean(probs, dim=0)
    return - torch.sum(torch.log(avg_probs**(-avg_probs))) + math.log(float(len(avg_probs)))


# facebookresearch/dinov2, dinov2/loss/koleo_loss.py.
class KoLeoLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.pdist = nn.PairwiseDistance(2, eps=1e-8)

    def pairwise_NNs_inner(self, x):
        dots = torch.mm(x, x.t())
        n = x.shape[0]
        dots.view(-1)[:: (n + 1)].fill_(-1)
        _, I = torch.max(dots, dim=1)
        return I

    def forward(self, student_output, eps=1e-8):
        student_output = F.normalize(student_output, eps=eps, p=2, dim=-1)
        with torch.no_grad():
            I = self.pairwise_NNs_inner(student_output)
        distances = self.pdist(student_output, student_output[I])
        loss = -torch.log(distances + eps).mean()
        return loss


def assert_nn_margin(x, what, margin=1e-4):
    """The best and second-best neighbours by inner product must differ by `margin`, so float32
    picks the same neighbour as float64."""
    xn = F.normalize(x, dim=-1)
    dots = xn @ xn.t()
    dots.fill_diagonal_(-2)
    top = dots.topk(2, dim=1).values
    gap = (top[:, 0] - top[:, 1]).min().item()
    assert gap > margin, f'{what}: nearest-neighbour margin {gap} too small; change the seed'
    return gap


# facebookresearch/dino, vision_transformer.py (trunc_normal_ init replaced: the test loads values).
class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, use_bn=False, norm_last_layer=True, nlayers=3, hidden_dim=2048, bottleneck_dim=256):
        super().__init__()
        nlayers = max(nlayers, 1)
        if nlayers == 1:
            self.mlp = nn.Linear(in_dim, bottleneck_dim)
        else:
            layers = [nn.Linear(in_dim, hidden_dim)]
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.GELU())
            for _ in range(nlayers - 2):
                layers.append(nn.Linear(hidden_dim, hidden_dim))
                if use_bn:
                    layers.append(nn.BatchNorm1d(hidden_dim))
                layers.append(nn.GELU())
            layers.append(nn.Linear(hidden_dim, bottleneck_dim))
            self.mlp = nn.Sequential(*layers)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        if norm_last_layer:
            self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        x = self.mlp(x)
        x = nn.functional.normalize(x, dim=-1, p=2)
        x = self.last_layer(x)
        return x


# --------------------------------------------------------------------------------------------------

def make_dino():
    inp = Inputs(1)
    exp = {}
    meta = {}
    # DINO's multi-crop shape: 2 global + 4 local crops of B = 8 images, K = 256 prototypes.
    B, ncrops, K = 8, 6, 256
    student_temp, teacher_temp = 0.1, 0.04
    student = inp.uniform('student', (ncrops * B, K)).requires_grad_()
    teacher = inp.uniform('teacher', (2 * B, K))
    center = inp.uniform('center', (1, K), -0.1, 0.1)
    loss_fn = DINOLoss(K, ncrops, teacher_temp, student_temp, 0.9, center)
    loss = loss_fn(student, teacher)
    loss.backward()
    expect(exp, 'loss', loss)
    expect(exp, 'grad_student', student.grad)
    expect(exp, 'center_after', loss_fn.center)
    meta.update(B=B, ncrops=ncrops, K=K, student_temp=student_temp, teacher_temp=teacher_temp, center_momentum=0.9)

    # Odd sizes: 2 global + 1 local crop, B = 5, K = 33, other temperatures and momentum.
    s = inp.uniform('odd.student', (3 * 5, 33), -2, 2).requires_grad_()
    t = inp.uniform('odd.teacher', (2 * 5, 33), -2, 2)
    c = inp.uniform('odd.center', (1, 33), -0.5, 0.5)
    f = DINOLoss(33, 3, 0.07, 0.2, 0.8, c)
    l = f(s, t)
    l.backward()
    expect(exp, 'odd.loss', l)
    expect(exp, 'odd.grad_student', s.grad)
    expect(exp, 'odd.center_after', f.center)

    # Only the 2 global crops (no local crops): each crop learns from the other one.
    s = inp.uniform('global.student', (2 * 3, 17)).requires_grad_()
    t = inp.uniform('global.teacher', (2 * 3, 17))
    f = DINOLoss(17, 2, 0.04, 0.1, 0.9, torch.zeros(1, 17, dtype=torch.float64))
    l = f(s, t)
    l.backward()
    expect(exp, 'global.loss', l)
    expect(exp, 'global.grad_student', s.grad)

    # Sinkhorn-Knopp on the same teacher logits (DINOv2's teacher temperature 0.07), and on an odd
    # shape with 1 and 3 iterations.
    expect(exp, 'sk', sinkhorn_knopp_teacher(teacher, 0.07, 3))
    small = inp.uniform('sk_small.teacher', (5, 13), -1, 1)
    expect(exp, 'sk_small.iter3', sinkhorn_knopp_teacher(small, 0.05, 3))
    expect(exp, 'sk_small.iter1', sinkhorn_knopp_teacher(small, 0.05, 1))

    # me-max on the student's first global crop, at the student temperature.
    g = student.detach()[:B].clone().requires_grad_()
    r = me_max(g, student_temp)
    r.backward()
    expect(exp, 'memax.loss', r)
    expect(exp, 'memax.grad', g.grad)
    # A collapsed batch (every row the same one-hot logits): me-max near log K, and a gradient that
    # vanishes (~1e-11) as the softmax saturates.
    col = inp.given('memax_collapsed.logits', torch.eye(7, dtype=torch.float64)[[2] * 6] * 3).requires_grad_()
    r = me_max(col, 0.1)
    r.backward()
    expect(exp, 'memax_collapsed.loss', r)
    expect(exp, 'memax_collapsed.grad', col.grad)
    # Nearly collapsed but not saturated: every row prefers prototype 2, with noise.
    peak = torch.eye(7, dtype=torch.float64)[[2] * 6] * 0.3 + 0.05 * torch.rand((6, 7), generator=inp.g, dtype=torch.float32)
    peak = inp.given('memax_peaked.logits', peak).requires_grad_()
    r = me_max(peak, 0.1)
    r.backward()
    expect(exp, 'memax_peaked.loss', r)
    expect(exp, 'memax_peaked.grad', peak.grad)

    write(os.path.join(OUT, 'dino.safetensors'), {**inp.stored, **exp}, {**meta, 'torch': torch.__version__})


def make_koleo():
    inp = Inputs(2)
    exp = {}
    N, D = 33, 24
    gen = torch.Generator().manual_seed(20)
    x = torch.randn(N, D, generator=gen)
    # A near-duplicate pair (rows 5 and 20 about 0.03 apart once normalised) and a row far from
    # unit norm (scale must not matter).
    x[20] = x[5] + 0.03 * torch.randn(D, generator=gen) * x[5].norm() / math.sqrt(D)
    x[9] *= 40
    feats = inp.given('feats', x).requires_grad_()
    gap = assert_nn_margin(feats.detach(), 'koleo feats')
    loss = KoLeoLoss()(feats)
    loss.backward()
    expect(exp, 'loss', loss)
    expect(exp, 'grad', feats.grad)
    d = (F.normalize(feats[5], dim=0) - F.normalize(feats[20], dim=0)).norm().item()
    write(os.path.join(OUT, 'koleo.safetensors'), {**inp.stored, **exp},
          {'N': N, 'D': D, 'near_duplicate_rows': '5,20', 'near_duplicate_distance': d, 'nn_margin': gap,
           'torch': torch.__version__})


def set_params(head, inp, prefix):
    for name, p in head.named_parameters():
        if name.endswith('weight_g'):
            continue
        fan_in = p.shape[-1] if p.dim() == 2 else 10
        v = inp.uniform(prefix + name, tuple(p.shape), -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        with torch.no_grad():
            p.copy_(v)


def head_loss(out, targets, temp=0.1):
    # The DINO cross-entropy shape: −Σ target · log_softmax(out / temp), averaged over rows.
    return torch.sum(-targets * F.log_softmax(out / temp, dim=-1), dim=-1).mean()


# Large enough that the KoLeo-proto gradient is comparable to the head loss gradient on weight_v
# (norms 1.6 and 2.7), so an error in either term shows.
KOLEO_PROTO_WEIGHT = 10.0


def make_head():
    inp = Inputs(3)
    exp = {}
    in_dim, hidden, bottleneck, K, B = 48, 64, 32, 256, 8
    head = DINOHead(in_dim, K, norm_last_layer=True, nlayers=3, hidden_dim=hidden, bottleneck_dim=bottleneck).double()
    set_params(head, inp, 'head.')
    state_names = ','.join(head.state_dict().keys())
    x = inp.normal('x', (B, in_dim))
    targets = F.softmax(inp.normal('targets', (B, K)) / 0.5, dim=-1)
    targets = inp.given('targets', targets)
    out = head(x)
    loss = head_loss(out, targets)
    loss.backward()
    expect(exp, 'out', out)
    expect(exp, 'loss', loss)
    assert not head.last_layer.weight_g.requires_grad
    for name, p in head.named_parameters():
        if p.requires_grad:
            expect(exp, 'grad.head.' + name, p.grad)

    # KoLeo-proto alone: KoLeo on the prototypes, the rows of weight_v.
    gap = assert_nn_margin(head.last_layer.weight_v.detach(), 'prototypes')
    kp = KoLeoLoss()(head.last_layer.weight_v)
    expect(exp, 'koleo_proto.loss', kp)

    # norm_last_layer = False, after some training (weight_g away from 1 and trained), with the
    # paper's objective: the DINO-style loss plus lambda * KoLeo-proto, whose gradient reaches
    # weight_v through both terms. (The output is g * the output above: the test derives it.)
    head.zero_grad(set_to_none=True)
    head.last_layer.weight_g.requires_grad = True
    g = inp.uniform('free.weight_g', (K, 1), 0.5, 1.5)
    with torch.no_grad():
        head.last_layer.weight_g.copy_(g)
    out = head(x)
    loss = head_loss(out, targets)
    total = loss + KOLEO_PROTO_WEIGHT * KoLeoLoss()(head.last_layer.weight_v)
    total.backward()
    expect(exp, 'free.loss', loss)
    expect(exp, 'free.total', total)
    expect(exp, 'free.grad.head.last_layer.weight_v', head.last_layer.weight_v.grad)
    expect(exp, 'free.grad.head.last_layer.weight_g', head.last_layer.weight_g.grad)

    # nlayers = 1: the mlp is a bare Linear, so its state-dict names are mlp.weight / mlp.bias.
    one = DINOHead(6, 5, nlayers=1, bottleneck_dim=4).double()
    set_params(one, inp, 'one.')
    names = ','.join(one.state_dict().keys())
    x1 = inp.normal('one.x', (3, 6))
    expect(exp, 'one.out', one(x1))

    write(os.path.join(OUT, 'head.safetensors'), {**inp.stored, **exp},
          {'in_dim': in_dim, 'hidden_dim': hidden, 'bottleneck_dim': bottleneck, 'out_dim': K, 'B': B,
           'loss_temp': 0.1, 'koleo_proto_weight': KOLEO_PROTO_WEIGHT, 'prototype_nn_margin': gap, 'state_dict': state_names,
           'one.state_dict': names, 'torch': torch.__version__})


def make_adamw():
    inp = Inputs(4)
    exp = {}
    p0 = inp.uniform('p0', (37, 5)).requires_grad_()
    p1 = inp.uniform('p1', (17,)).requires_grad_()
    # eps 1e-6 with p1's gradients ~1e-4 makes where eps is added visible (to sqrt(v_hat), after
    # the bias correction); DINO's default 1e-8 would hide it.
    eps = 1e-6
    opt = torch.optim.AdamW([{'params': [p0]}, {'params': [p1], 'weight_decay': 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=eps, weight_decay=0.04)
    # lr / weight decay change every step as DINO's schedules set them; p1 has no grad at step 3
    # (torch skips it and its step count does not advance). The last step's lr * wd = 0.04 makes
    # the decoupled decay (applied before the Adam update) visible at 1e-4.
    lrs = [5e-4, 1e-3, 2e-3, 1.5e-3, 1e-2]
    wds = [0.04, 0.1, 0.2, 0.4, 4.0]
    for step in range(len(lrs)):
        opt.param_groups[0]['lr'] = lrs[step]
        opt.param_groups[0]['weight_decay'] = wds[step]
        opt.param_groups[1]['lr'] = lrs[step] * 2
        g0 = inp.normal(f'step{step}.grad.p0', (37, 5), 0.1)
        g0[3] = 0  # a row of zero gradients: only the decay and the momentum move it
        inp.given(f'step{step}.grad.p0', g0)
        p0.grad = g0
        if step == 2:
            p1.grad = None
        else:
            p1.grad = inp.normal(f'step{step}.grad.p1', (17,), 1e-4)
        opt.step()
        expect(exp, f'step{step}.p0', p0)
        expect(exp, f'step{step}.p1', p1)
    write(os.path.join(OUT, 'adamw.safetensors'), {**inp.stored, **exp},
          {'lr': json.dumps(lrs), 'weight_decay': json.dumps(wds), 'p1_lr_factor': 2, 'p1_no_grad_step': 2,
           'betas': '[0.9,0.999]', 'eps': eps, 'torch': torch.__version__})


if __name__ == '__main__':
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT, exist_ok=True)
    make_dino()
    make_koleo()
    make_head()
    make_adamw()
