#!/usr/bin/env python3
"""Fixtures for test/io: .pth files written by torch.save itself, and what torch.load reads back.

  /usr/bin/python3 scripts/make-pth-fixtures.py             writes test/fixtures/pth/*
  /usr/bin/python3 scripts/make-pth-fixtures.py --describe F  prints describe(torch.load(F)) as JSON
  /usr/bin/python3 scripts/make-pth-fixtures.py --describe-weights-only F   the same, weights_only=True

Needs torch (Debian: apt-get install python3-torch). Tensor contents are arange-based so tests can
also state them by hand; expected.json holds describe() of every fixture as torch loads it, the
independent oracle the TypeScript reader is compared against.

describe() is a JSON form both sides can produce: tensors → {"tensor": dtype, "shape", "values",
"requires_grad"} with float values as numbers (NaN/inf as strings) and int64 values as strings;
dicts → {"dict": [[key, value], ...]} sorted by key (int keys as strings); lists and tuples →
{"list": [...]}; ints → numbers, or strings beyond 2^53; floats → numbers; bytes → {"bytes": hex};
argparse.Namespace → its dict; numpy scalars → their Python value.
"""
import argparse
import collections
import io
import json
import math
import os
import sys
import zipfile

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'pth')

DTYPES = {
    torch.float32: 'F32', torch.float64: 'F64', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.int64: 'I64',
    torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8', torch.uint8: 'U8', torch.bool: 'BOOL',
}
SAFE = 2 ** 53


def num(x):
    if x is None or isinstance(x, bool):
        return x
    if isinstance(x, int):
        return x if -SAFE < x < SAFE else str(x)
    if math.isnan(x):
        return 'nan'
    if math.isinf(x):
        return 'inf' if x > 0 else '-inf'
    return x


def describe(v):
    if isinstance(v, torch.Tensor):
        flat = v.detach().flatten()
        if v.dtype == torch.int64:
            values = [str(x) for x in flat.tolist()]
        elif v.dtype in (torch.float16, torch.bfloat16):
            values = [num(x) for x in flat.float().tolist()]
        else:
            values = [num(x) for x in flat.tolist()]
        return {'tensor': DTYPES[v.dtype], 'shape': list(v.shape), 'values': values, 'requires_grad': v.requires_grad}
    if isinstance(v, argparse.Namespace):
        return describe(vars(v))
    if isinstance(v, dict):
        pairs = [[k if isinstance(k, str) else str(k), describe(x)] for k, x in v.items()]
        return {'dict': sorted(pairs, key=lambda p: p[0])}
    if isinstance(v, (list, tuple)):
        return {'list': [describe(x) for x in v]}
    if isinstance(v, np.generic):
        return describe(v.item())
    if isinstance(v, bytes):
        return {'bytes': v.hex()}
    if v is None or isinstance(v, (bool, int, float)):
        return num(v)
    if isinstance(v, str):
        return v
    raise TypeError(f'cannot describe {type(v)}')


def arange(n, dtype=torch.float32):
    return torch.arange(n, dtype=torch.float64).to(dtype)


def state_dict_fixture():
    """Every dtype, views of shared storages (transposed, sliced, offset, stride 0), a Parameter,
    nested containers, Python and numpy scalars, and an argparse.Namespace."""
    base = arange(24).reshape(4, 6)  # storage 0..23, shared by the views below
    sd = collections.OrderedDict()
    sd['f32'] = base
    sd['f32.t'] = base.t()  # stride (1, 6)
    sd['f32.slice'] = base[1:, ::2]  # offset 6, stride (6, 2)
    sd['f32.row'] = base[2]  # offset 12
    sd['f32.expand'] = arange(3).expand(4, 3)  # stride (0, 1)
    sd['f32.scalar'] = torch.tensor(-1.25)
    sd['f32.empty'] = torch.zeros(0, 3)
    sd['f64'] = torch.tensor([0.1, -1e300, 5e-324, math.inf], dtype=torch.float64)
    sd['f16'] = torch.tensor([0.0, 1.0, -2.5, 65504.0, 2 ** -24, math.inf, -math.inf, 1 / 3], dtype=torch.float16)
    bf = (arange(12) / 8 - 0.5).to(torch.bfloat16).reshape(3, 4)
    sd['bf16.cols'] = bf[:, 1::2]  # non-contiguous bf16 view
    sd['i64'] = torch.tensor([0, -1, 2 ** 53 + 1, -2 ** 63, 2 ** 63 - 1], dtype=torch.int64)
    sd['i64.t'] = torch.arange(6, dtype=torch.int64).reshape(2, 3).t()
    sd['i32'] = torch.tensor([-2 ** 31, 2 ** 31 - 1, 7], dtype=torch.int32)
    sd['i16'] = torch.tensor([-32768, 32767], dtype=torch.int16)
    sd['i8'] = torch.tensor([-128, 127], dtype=torch.int8)
    sd['u8'] = torch.tensor([0, 255], dtype=torch.uint8)
    sd['bool'] = torch.tensor([True, False, True])
    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(arange(6).reshape(2, 3))
        lin.bias.copy_(torch.tensor([0.5, -0.5]))
    obj = {
        'state_dict': sd,
        'param': lin.weight,  # an nn.Parameter: _rebuild_parameter, requires_grad
        'module_state': lin.state_dict(),  # an OrderedDict with a _metadata attribute (BUILD)
        'nested': {'list': [1, 2.5, 'three', None, True, [arange(2)]], 'tuple': (4, -5, 2 ** 70), 3: 'int key'},
        'args': argparse.Namespace(arch='vit_tiny', lr=0.0005, epochs=3, crops=(0.4, 1.0), name='naïve ✓', flag=False),
        'numpy': [np.float64(1.5), np.int64(-7), np.float32(0.25), np.bool_(True), np.int32(9)],
        'bytes': b'\x00\xffab',
        'shared_again': base,  # the same tensor object: pickled once, memo reference the second time
    }
    return obj


class DINOHead(torch.nn.Module):
    """facebookresearch/dino's DINOHead, tiny: mlp then a weight-normalised last layer."""

    def __init__(self, in_dim, out_dim, hidden_dim=6, bottleneck_dim=4):
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(in_dim, hidden_dim), torch.nn.GELU(), torch.nn.Linear(hidden_dim, bottleneck_dim))
        self.last_layer = torch.nn.utils.weight_norm(torch.nn.Linear(bottleneck_dim, out_dim, bias=False))


class Backbone(torch.nn.Module):
    def __init__(self, dim=5):
        super().__init__()
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, dim))
        self.patch_embed = torch.nn.Conv2d(3, dim, 4, 4)
        self.norm = torch.nn.LayerNorm(dim)


class MultiCropWrapper(torch.nn.Module):
    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.head = head


class DDP(torch.nn.Module):
    """Stands in for DistributedDataParallel, which adds the 'module.' prefix to every key."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def dino_fixture():
    """checkpoint.pth as facebookresearch/dino's train loop saves it, with K=8 prototypes of dim 4."""
    torch.manual_seed(0)
    student = DDP(MultiCropWrapper(Backbone(), DINOHead(5, 8)))
    teacher = MultiCropWrapper(Backbone(), DINOHead(5, 8))
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3)
    loss = sum((p * p).sum() for p in student.parameters())
    loss.backward()
    opt.step()  # before the head gets its known values below, which the step would change
    with torch.no_grad():
        last = student.module.head.last_layer
        last.weight_v.copy_(arange(32).reshape(8, 4) / 4 - 3)
        last.weight_g.copy_(arange(8).reshape(8, 1) + 1)
        tl = teacher.head.last_layer
        tl.weight_v.copy_(100 + arange(32).reshape(8, 4))
        tl.weight_g.fill_(1)
    args = argparse.Namespace(arch='vit_tiny', patch_size=16, out_dim=8, norm_last_layer=True, momentum_teacher=0.996,
                              use_bn_in_head=False, warmup_teacher_temp=0.04, teacher_temp=0.04, use_fp16=False,
                              weight_decay=0.04, lr=0.0005, global_crops_scale=(0.4, 1.0), local_crops_number=8,
                              local_crops_scale=(0.05, 0.4), data_path='/path/to/imagenet/train', seed=0, gpu=0,
                              rank=0, world_size=1, dist_url='env://')
    dino_loss_state = collections.OrderedDict(center=arange(8).reshape(1, 8) / 100)
    return {
        'student': student.state_dict(),
        'teacher': teacher.state_dict(),
        'optimizer': opt.state_dict(),
        'epoch': 3,
        'args': args,
        'dino_loss': dino_loss_state,
        'fp16_scaler': {'scale': 65536.0, 'growth_factor': 2.0, 'backoff_factor': 0.5, 'growth_interval': 2000, '_growth_tracker': 0},
    }, teacher


def deflated_copy(src, dst):
    """The same archive with every entry DEFLATE-compressed (as a zip tool might re-pack it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
            zout.writestr(fixed, zin.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)


def make():
    os.makedirs(OUT, exist_ok=True)
    files = {}

    def save(name, obj, **kw):
        path = os.path.join(OUT, name)
        torch.save(obj, path, **kw)
        files[name] = path

    save('state-dict.pth', state_dict_fixture())
    save('state-dict-protocol4.pth', state_dict_fixture(), pickle_protocol=4)
    ckpt, teacher = dino_fixture()
    save('dino-checkpoint.pth', ckpt)
    torch.nn.utils.remove_weight_norm(teacher.head.last_layer)
    save('dino-teacher-plain.pth', teacher.state_dict())  # bare state dict, head.last_layer.weight
    deflated_copy(files['state-dict.pth'], os.path.join(OUT, 'state-dict-deflate.pth'))
    files['state-dict-deflate.pth'] = os.path.join(OUT, 'state-dict-deflate.pth')
    # Legacy format (refused by the reader); its storage keys are object ids, so its bytes vary per run.
    torch.save({'w': arange(3)}, os.path.join(OUT, 'legacy.pth'), _use_new_zipfile_serialization=False)

    expected = {'torch': torch.__version__, 'numpy': np.__version__, 'files': {}}
    for name, path in sorted(files.items()):
        expected['files'][name] = describe(torch.load(path))
    with open(os.path.join(OUT, 'expected.json'), 'w', encoding='utf-8') as f:
        json.dump(expected, f, ensure_ascii=False, separators=(',', ':'), sort_keys=True)
        f.write('\n')
    for name in sorted(os.listdir(OUT)):
        print(f'wrote {name}: {os.path.getsize(os.path.join(OUT, name))} bytes')


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] in ('--describe', '--describe-weights-only'):
        obj = torch.load(sys.argv[2], weights_only=sys.argv[1] == '--describe-weights-only')
        print(json.dumps(describe(obj), ensure_ascii=False))
    else:
        make()
