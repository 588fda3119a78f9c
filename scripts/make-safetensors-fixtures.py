#!/usr/bin/env python3
"""Fixtures for test/train: files made by PyTorch and numpy, independently of our TypeScript code.

  python3 scripts/make-safetensors-fixtures.py            writes test/fixtures/safetensors/*.safetensors
  python3 scripts/make-safetensors-fixtures.py --check F  reads F (e.g. one our writer made) with torch

Needs torch (Debian: apt-get install python3-torch), not the safetensors package: the files are laid
out here by the rules of its reference implementation (compact JSON, "__metadata__" first, tensors by
descending dtype alignment rank then name, header padded with spaces to a multiple of 8), and every
element's bytes come from torch, so our F16/BF16 rounding is checked against torch's casts.
"""
import hashlib
import json
import math
import os
import struct
import sys

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'safetensors')

# The reference crate's Dtype enum order (increasing alignment); data is laid out by descending rank.
RANK = ['BOOL', 'U8', 'I8', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64']
TORCH = {
    'BOOL': torch.bool, 'U8': torch.uint8, 'I8': torch.int8, 'I16': torch.int16, 'F16': torch.float16,
    'BF16': torch.bfloat16, 'I32': torch.int32, 'F32': torch.float32, 'F64': torch.float64, 'I64': torch.int64,
}
SIZE = {'BOOL': 1, 'U8': 1, 'I8': 1, 'I16': 2, 'U16': 2, 'F16': 2, 'BF16': 2, 'I32': 4, 'U32': 4, 'F32': 4, 'F64': 8,
        'I64': 8, 'U64': 8}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.view(torch.int16)
    return t.numpy().tobytes()  # little-endian on every machine this runs on


def dumps(s):
    return json.dumps(s, ensure_ascii=False)


def write(path, tensors, metadata, checksum=True):
    """tensors: {name: (dtype, torch tensor)}"""
    order = sorted(tensors, key=lambda n: (-RANK.index(tensors[n][0]), n.encode('utf-8')))
    chunks = [tensor_bytes(tensors[n][1]) for n in order]
    meta = dict(metadata)
    if checksum:
        meta['payload_sha256'] = hashlib.sha256(b''.join(chunks)).hexdigest()
    parts = []
    if meta:
        kv = ','.join(f'{dumps(k)}:{dumps(meta[k])}' for k in sorted(meta, key=lambda k: k.encode('utf-8')))
        parts.append(f'"__metadata__":{{{kv}}}')
    offset = 0
    for name, chunk in zip(order, chunks):
        dtype, t = tensors[name]
        shape = ','.join(str(d) for d in t.shape)
        parts.append(f'{dumps(name)}:{{"dtype":"{dtype}","shape":[{shape}],"data_offsets":[{offset},{offset + len(chunk)}]}}')
        offset += len(chunk)
    header = ('{' + ','.join(parts) + '}').encode('utf-8')
    header += b' ' * (-len(header) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(header)) + header + b''.join(chunks))
    print(f'wrote {path}: {8 + len(header) + offset} bytes')


# Values chosen to exercise rounding: ties to even in F16 (1 + 2^-11, 1 + 3·2^-11) and BF16
# (1 + 2^-8, 1 + 3·2^-8), F16 overflow (65520 → inf, 65519 → 65504), subnormals and their ties
# (2^-25 → 0, 3·2^-25 → 2^-23), underflow, signed zero, infinities, NaN.
HALF_CASES = [0.0, -0.0, 1.0, -2.5, 1 / 3, math.pi, 65504.0, 65519.0, 65520.0, 1e5, -1e5,
              1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 2 ** -14, 2 ** -24, 2 ** -25,
              3 * 2 ** -25, 2 ** -26, 1e-8, 6.1e-5, 3.4e38, -3.4e38, 1e-40, float('inf'), float('-inf'),
              float('nan'), 0.1, -0.7, 1234.5678, 2 ** -133]


def canonical_bf16_nan(t):
    # torch's casts disagree on the bits of a BF16 NaN: the scalar c10::BFloat16 gives 0x7fc0, the
    # vectorised CPU kernel 0xffff. Both are NaN; pin the scalar one, which our encoder writes.
    bits = t.view(torch.int16).clone()
    bits[torch.isnan(t)] = 0x7fc0
    return bits.view(torch.bfloat16)


def dino_cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs=0, start_warmup_value=0):
    # facebookresearch/dino utils.cosine_scheduler
    warmup_schedule = np.array([])
    warmup_iters = warmup_epochs * niter_per_ep
    if warmup_epochs > 0:
        warmup_schedule = np.linspace(start_warmup_value, base_value, warmup_iters)
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    schedule = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(np.pi * iters / len(iters)))
    schedule = np.concatenate((warmup_schedule, schedule))
    assert len(schedule) == epochs * niter_per_ep
    return schedule


def dino_teacher_temp(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs, nepochs):
    # facebookresearch/dino DINOLoss.teacher_temp_schedule
    return np.concatenate((np.linspace(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs),
                           np.ones(nepochs - warmup_teacher_temp_epochs) * teacher_temp))


SCHEDULES = {
    'lr': ('cosine', [0.0005 * 64 / 256, 1e-6, 20, 13, 3, 0]),
    'wd': ('cosine', [0.04, 0.4, 20, 13, 0, 0]),
    'momentum': ('cosine', [0.996, 1, 20, 13, 0, 0]),
    'warm_from': ('cosine', [0.1, 0.01, 5, 3, 2, 0.05]),
    'all_warmup': ('cosine', [1.0, 0.0, 2, 3, 2, 0.5]),
    'one_iter_warmup': ('cosine', [1.0, 0.0, 3, 1, 1, 0.25]),
    'teacher_temp': ('temp', [0.04, 0.07, 30, 100]),
    'teacher_temp_short': ('temp', [0.04, 0.07, 1, 3]),
    'teacher_temp_none': ('temp', [0.04, 0.07, 0, 4]),
}


def make():
    os.makedirs(OUT, exist_ok=True)
    v = torch.tensor(HALF_CASES, dtype=torch.float32)
    tensors = {
        'values.f32': ('F32', v),
        'values.f16': ('F16', v.to(torch.float16)),
        'values.bf16': ('BF16', canonical_bf16_nan(v.to(torch.bfloat16))),
        'f64': ('F64', torch.tensor([0.1, -1e300, 5e-324, math.e, float('inf')], dtype=torch.float64)),
        'i64': ('I64', torch.tensor([0, -1, 2 ** 53 + 1, -2 ** 63, 2 ** 63 - 1], dtype=torch.int64)),
        'i32': ('I32', torch.tensor([[0, -1, 2 ** 31 - 1], [-2 ** 31, 7, 42]], dtype=torch.int32)),
        'i16': ('I16', torch.tensor([-32768, 32767, 5], dtype=torch.int16)),
        'i8': ('I8', torch.tensor([-128, 127, 0], dtype=torch.int8)),
        'u8': ('U8', torch.tensor([0, 1, 255], dtype=torch.uint8)),
        'mask': ('BOOL', torch.tensor([True, False, True, True], dtype=torch.bool)),
        'head.last_layer.weight_v': ('F32', torch.arange(6, dtype=torch.float32).reshape(2, 3) - 2.5),
        'empty': ('F32', torch.zeros(0, 4, dtype=torch.float32)),
        'scalar': ('F32', torch.tensor(3.5, dtype=torch.float32)),
        'naïve ✓': ('U8', torch.tensor([9], dtype=torch.uint8)),
    }
    write(os.path.join(OUT, 'torch-dtypes.safetensors'), tensors, {'format': 'pt', 'source': 'torch ' + torch.__version__})

    sched = {}
    params = {}
    for name, (kind, args) in SCHEDULES.items():
        s = dino_cosine_scheduler(*args) if kind == 'cosine' else dino_teacher_temp(*args)
        sched[name] = ('F64', torch.from_numpy(np.ascontiguousarray(s, dtype=np.float64)))
        params[name] = json.dumps({'kind': kind, 'args': args})
    params['numpy'] = np.__version__
    write(os.path.join(OUT, 'numpy-schedules.safetensors'), sched, params)


def check(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop('__metadata__', {})
    if 'payload_sha256' in meta:
        ok = hashlib.sha256(data).hexdigest() == meta['payload_sha256']
        print('checksum', 'ok' if ok else 'MISMATCH')
    print('metadata', meta)
    for name, info in sorted(header.items(), key=lambda kv: kv[1]['data_offsets']):
        b, e = info['data_offsets']
        dtype = info['dtype']
        aligned = (8 + n + b) % SIZE[dtype] == 0
        chunk = bytearray(data[b:e])
        if dtype in ('F16', 'BF16'):
            t = torch.frombuffer(chunk, dtype=torch.int16).view(TORCH[dtype]) if chunk else torch.zeros(0, dtype=TORCH[dtype])
        else:
            t = torch.frombuffer(chunk, dtype=TORCH[dtype]) if chunk else torch.zeros(0, dtype=TORCH[dtype])
        t = t.reshape(info['shape'])
        print(f'{name}: {dtype} {list(t.shape)} aligned={aligned} {t.flatten()[:8].tolist()}')


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--check':
        check(sys.argv[2])
    else:
        make()
