#!/usr/bin/env python3
"""PyTorch training twin of `protodino train`: the same DINO recipe, step for step, in PyTorch eager.

It reads protodino's own training config (the `start` event of a run's log.jsonl, or a JSON file
with the same keys, completed with protodino's defaults) and trains what protodino trains with it:

  model      models/ (the one definition the step peers, this twin and train_ddp.py share): the
             ViT of src/nn/vit.ts (patch embedding, CLS token, learned position embedding
             bicubic-resized for the local crops, pre-norm blocks with qkv bias and GELU MLP,
             LayerNorm eps 1e-6) or the ResNet of src/nn/resnet.ts (torchvision's names, BatchNorm
             with torch's momentum 0.1 and unbiased running variance, as protodino's), and the DINO
             head of src/nn/head.ts (GELU MLP, optional BatchNorm --use_bn_in_head, L2
             normalisation, weight-normed last layer, weight_g frozen at 1 with --norm_last_layer),
             parameters named as protodino / facebookresearch/dino name them;
  init       either protodino's step-0 weights (--init FILE from protodino-side.mjs init: removes
             init as a variable), or protodino's scheme drawn with torch's RNG (--init torch):
             trunc_normal std 0.02 truncated at ±2 std (protodino's bounds, see the docs), zero
             biases, U(±1/sqrt(fan_in)) for the patch conv and the prototypes, kaiming_normal
             (fan_out, relu) for the ResNet's convs, LayerNorm/BatchNorm 1/0;
  data       Fashion-MNIST (or IDX) from the same files, the same subset, normalised by the same
             training-set mean/std; DINO's multi-crop (src/data/multicrop.ts, transforms.ts) ported
             operation for operation, including protodino's counter-based random streams (sfc32 keyed
             by seed, epoch, sample, crop) and epoch shuffles, so with --data_stream protodino (the
             default) the twin sees the very same crops protodino sees (--check_batch verifies it);
             --data_stream independent salts the streams: other crops, same distribution;
  schedules  cosine lr (base lr·batch/256, linear warm-up), wd cosine, teacher momentum cosine to 1,
             teacher temperature warm-up per epoch (src/train/schedules.ts, in float64);
  step       teacher forward on the 2 global crops, student on 2 global + N local crops (head once on
             all of them), DINO loss with centering, optional KoLeo-proto and KoLeo on features,
             backward, DINO's per-parameter clipping, freeze_last_layer, AdamW with the decay /
             no-decay groups of protodino's decayGroups, teacher EMA, center update (src/train/step.ts).
             BatchNorm: both networks stay in training mode, as in DINO and protodino, so each
             normalises by its batch and moves its own running statistics (the student's backbone
             twice a step: globals, then locals); the EMA covers parameters only, so the teacher's
             running statistics come from its own forwards on the global crops, which is what
             `protodino eval` then uses (eval mode).

It writes OUT/log.jsonl (protodino's record format: a `start` event, `step` events) and, at each
--save_at step, OUT/checkpoint-step<N>.safetensors: a protodino checkpoint (student.*, teacher.*,
dino_loss.center, protodino metadata with the config) that `protodino eval` reads, so both engines
are judged by the same k-NN code.

Run (torch is Debian's python3-torch, for /usr/bin/python3):
  /usr/bin/python3 scripts/torch-twin/train.py --config runs/x/log.jsonl --out runs/x-torch \
      [--init init.safetensors | --init torch] [--save_at 100,200,300] [--max_steps N] [--threads 1]
train_ddp.py (the same recipe under DistributedDataParallel) imports this module's data,
augmentation, schedules and update, and both build their networks with models/, so the two change
together.

Not supported (a clear error): the PCA arch, --ibot, --vmf, --centering other than centering,
--freeze_backbone, --prototypes_only, --accum_steps > 1, --long_tail > 1, datasets other than
fashion-mnist / idx.
"""
import argparse
import gzip
import hashlib
import json
import math
import os
import struct
import sys
import time

import numpy as np

from models.presets import RESNET_PRESETS, VIT_PRESETS

# protodino's DEFAULTS (src/train/config.ts); the driver's self-check compares them with the build's.
DEFAULTS = {
    "preset": "", "arch": "vit_cpu", "patch_size": 4, "out_dim": 1024, "hidden_dim": 256, "bottleneck_dim": 64, "head_layers": 3,
    "norm_last_layer": True, "use_bn_in_head": False, "drop_path_rate": 0, "freeze_backbone": False,
    "prototypes_only": False, "pca_dim": 64, "prototypes": "gradient", "em_eta": 0.02, "em_var_floor": 1e-4,
    "em_beta_start": 0.2, "em_beta_warmup": 500, "em_target": "softmax", "momentum_teacher": 0.996, "warmup_teacher_temp": 0.04,
    "teacher_temp": 0.04, "warmup_teacher_temp_epochs": 0, "student_temp": 0.1, "center_momentum": 0.9,
    "centering": "centering", "koleo_proto": 0, "koleo_proto_exact_every": 0, "koleo_proto_candidates": 16, "koleo_features": 0, "vmf": False, "ibot": False,
    "ibot_loss_weight": 1, "ibot_mask_ratio": [0.1, 0.5], "ibot_mask_prob": 0.5, "ibot_teacher_patch_temp": 0.07,
    "ibot_student_patch_temp": 0.1, "lr": 0.0005, "min_lr": 1e-6, "warmup_epochs": 0, "weight_decay": 0.04,
    "weight_decay_end": 0.4, "clip_grad": 3.0, "batch_size": 64, "accum_steps": 1, "epochs": 1,
    "freeze_last_layer": 1, "max_steps": 0, "global_crops_size": 28, "local_crops_size": 12,
    "global_crops_scale": [0.4, 1], "local_crops_number": 6, "local_crops_scale": [0.05, 0.4],
    "color_jitter_prob": 0.8, "global_blur_prob": [1, 0.1], "local_blur_prob": 0.5, "blur_sigma": [0.1, 2],
    "solarize_prob": 0.2, "dataset": "fashion-mnist", "data_path": "", "long_tail": 1, "subset": 0, "seed": 0,
    "backend": "auto", "threads": 0, "output_dir": "runs/dino", "log_every": 10, "save_every": 0, "resume": False,
    "init_from": "", "on_nan": "stop", "quiet": False, "profile": False, "collapse_window": 200, "eps_metric": "euclidean", "eval_every_epoch": True, "eval_train_max": 5000,
    "eval_test_max": 1000,
}

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]


class TwinError(Exception):
    pass


# ---------------------------------------------------------------------------------------------------
# Config


def read_config(path):
    """protodino's config: the `start` event of a log.jsonl, or a JSON object (optionally {config: ...})."""
    with open(path) as f:
        text = f.read()
    cfg = None
    if path.endswith(".jsonl"):
        for line in text.splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec.get("event") == "start" and isinstance(rec.get("config"), dict):
                cfg = rec["config"]
                break
        if cfg is None:
            raise TwinError(f"{path}: no 'start' event with a config (is it a protodino run's log.jsonl?)")
    else:
        cfg = json.loads(text)
        if isinstance(cfg, dict) and isinstance(cfg.get("config"), dict):
            cfg = cfg["config"]
    if not isinstance(cfg, dict):
        raise TwinError(f"{path}: the config is not a JSON object")
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise TwinError(f"{path}: unknown config keys {unknown} (newer protodino? update DEFAULTS in {__file__})")
    missing = sorted(set(DEFAULTS) - set(cfg))
    if cfg.get("preset") and missing:
        # A preset's values live in protodino (src/train/presets.ts); its log.jsonl records them all.
        raise TwinError(f"{path}: preset '{cfg['preset']}' with keys left out ({', '.join(missing)}): give the full config "
                        "(a protodino run's log.jsonl records it)")
    out = dict(DEFAULTS)
    out.update(cfg)
    return out


def check_supported(cfg):
    def no(flag, why):
        raise TwinError(f"--{flag}: {why} is not supported by the PyTorch twin")
    if cfg["arch"] not in VIT_PRESETS and cfg["arch"] not in RESNET_PRESETS:
        no("arch", f"'{cfg['arch']}' (the twin trains the ViTs {', '.join(VIT_PRESETS)} and the ResNets "
               f"{', '.join(RESNET_PRESETS)}; protodino's PCA is not mirrored)")
    if cfg["ibot"]:
        no("ibot", "iBOT's patch loss")
    if cfg["init_from"]:
        no("init_from", "starting from another run's weights")
    if cfg["koleo_proto_exact_every"] > 1:
        no("koleo_proto_exact_every", "KoLeo-proto's candidate cache")
    if cfg["vmf"]:
        no("vmf", "DINO-vMF")
    if cfg["centering"] != "centering":
        no("centering", f"'{cfg['centering']}' (only centering)")
    if cfg["freeze_backbone"]:
        no("freeze_backbone", "a frozen backbone")
    if cfg["prototypes_only"]:
        no("prototypes_only", "the prototypes-only head")
    if cfg.get("prototypes", "gradient") != "gradient":
        no("prototypes", f"'{cfg['prototypes']}' (EM prototypes are not mirrored)")
    if cfg["accum_steps"] != 1:
        no("accum_steps", f"{cfg['accum_steps']} (gradient accumulation)")
    if cfg["long_tail"] > 1:
        no("long_tail", f"{cfg['long_tail']} (long-tailed subsets)")
    if cfg["dataset"] not in ("fashion-mnist", "idx"):
        no("dataset", f"'{cfg['dataset']}' (fashion-mnist and idx only)")
    sizes = [cfg["global_crops_size"]] + ([cfg["local_crops_size"]] if cfg["local_crops_number"] > 0 else [])
    if cfg["arch"] in VIT_PRESETS and any(s % cfg["patch_size"] for s in sizes):
        raise TwinError("crop sizes must be multiples of --patch_size")


# ---------------------------------------------------------------------------------------------------
# Data: IDX files, protodino's random streams, the multi-crop augmentation


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise TwinError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_train_set(cfg):
    """[N, C, H, W] u8 images and labels of the split protodino trains on (subset applied)."""
    if cfg["dataset"] == "fashion-mnist":
        d = cfg["data_path"] or FASHION_MNIST_DIR

        def f(kind):
            base = os.path.join(d, f"train-{kind}-ubyte")
            return base + ".gz" if os.path.exists(base + ".gz") or not os.path.exists(base) else base
        img_path, lab_path = f("images-idx3"), f("labels-idx1")
    else:
        img_path = os.path.join(cfg["data_path"], "train-images-idx3-ubyte.gz")
        lab_path = os.path.join(cfg["data_path"], "train-labels-idx1-ubyte.gz")
    images = read_idx(img_path)
    labels = read_idx(lab_path).astype(np.int64)
    if images.ndim != 3:
        raise TwinError(f"{img_path}: expected [N, H, W] images")
    images = images[:, None, :, :]
    if 0 < cfg["subset"] < images.shape[0]:
        images, labels = images[:cfg["subset"]], labels[:cfg["subset"]]
    return np.ascontiguousarray(images), labels


def channel_stats(images):
    """src/data/dataset.ts channelStats: mean/std over every pixel from a histogram, in float64."""
    mean, std = [], []
    for c in range(images.shape[1]):
        hist = np.bincount(images[:, c].reshape(-1), minlength=256).astype(np.float64)
        v = np.arange(256, dtype=np.float64)
        s = 0.0
        s2 = 0.0
        for i in range(256):  # the same summation order as protodino
            s += hist[i] * v[i]
            s2 += hist[i] * v[i] * v[i]
        count = max(1, images.shape[0] * images.shape[2] * images.shape[3])
        m = s / count
        mean.append(m / 255)
        std.append(math.sqrt(max(0.0, s2 / count - m * m)) / 255)
    return mean, std


M32 = 0xFFFFFFFF


def _imul(a, b):
    return (a * b) & M32


def _rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & M32


def _fmix32(h):
    h ^= h >> 16
    h = _imul(h, 0x85EBCA6B)
    h ^= h >> 13
    h = _imul(h, 0xC2B2AE35)
    h ^= h >> 16
    return h


def hash_words(salt, words):
    """src/data/rng.ts hashWords (MurmurHash3-style), in uint32 arithmetic."""
    h = salt & M32
    for w in words:
        k = _imul(w & M32, 0xCC9E2D51)
        k = _rotl(k, 15)
        k = _imul(k, 0x1B873593)
        h ^= k
        h = _rotl(h, 13)
        h = (_imul(h, 5) + 0xE6546B64) & M32
    return _fmix32(h ^ len(words))


class Rng:
    """src/data/rng.ts Rng: sfc32 seeded by hashing a key of integers."""

    __slots__ = ("a", "b", "c", "d")

    def __init__(self, key):
        self.a = hash_words(0x9E3779B9, key)
        self.b = hash_words(0x7F4A7C15, key)
        self.c = hash_words(0x243F6A88, key)
        self.d = 1
        for _ in range(12):
            self.u32()

    def u32(self):
        a, b, c, d = self.a, self.b, self.c, self.d
        t = (a + b + d) & M32
        self.d = (d + 1) & M32
        self.a = b ^ (b >> 9)
        self.b = (c + (c << 3)) & M32
        c = ((c << 21) | (c >> 11)) & M32
        self.c = (c + t) & M32
        return t

    def float(self):
        return self.u32() / 4294967296.0

    def uniform(self, lo, hi):
        return lo + (hi - lo) * self.float()

    def int(self, n):
        return math.floor(self.float() * n)

    def chance(self, p):
        return p >= 1 or (p > 0 and self.float() < p)


def permutation(n, rng):
    p = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.int(i + 1)
        p[i], p[j] = p[j], p[i]
    return np.array(p, dtype=np.int64)


def js_round(x):
    """JavaScript's Math.round: nearest integer, ties towards +infinity."""
    f = math.floor(x)
    return f + 1 if x - f >= 0.5 else f


def random_resized_crop_box(rand, H, W, scale, ratio):
    """torchvision RandomResizedCrop.get_params as src/data/transforms.ts randomResizedCropBox."""
    area = H * W
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * (scale[0] + (scale[1] - scale[0]) * rand())
        aspect = math.exp(log_lo + (log_hi - log_lo) * rand())
        w = js_round(math.sqrt(target * aspect))
        h = js_round(math.sqrt(target / aspect))
        if 0 < w <= W and 0 < h <= H:
            top = math.floor(rand() * (H - h + 1))
            left = math.floor(rand() * (W - w + 1))
            return top, left, h, w
    in_ratio = W / H
    w, h = W, H
    if in_ratio < ratio[0]:
        h = js_round(w / ratio[0])
    elif in_ratio > ratio[1]:
        w = js_round(h * ratio[1])
    return (H - h) // 2, (W - w) // 2, h, w


_AXIS_CACHE = {}


def _axis(n, start, length):
    key = (n, start, length)
    r = _AXIS_CACHE.get(key)
    if r is None:
        scale = length / n
        i0 = np.empty(n, dtype=np.int64)
        i1 = np.empty(n, dtype=np.int64)
        w = np.empty(n, dtype=np.float32)
        for o in range(n):
            f = max(0.0, (o + 0.5) * scale - 0.5)
            a = min(math.floor(f), length - 1)
            i0[o] = start + a
            i1[o] = start + min(a + 1, length - 1)
            w[o] = f - a
        r = (i0, i1, w.astype(np.float64))
        if len(_AXIS_CACHE) < 100000:
            _AXIS_CACHE[key] = r
    return r


def crop_resize(img_u8, box, S):
    """Bilinear crop-resize (half-pixel centres, edges clamped inside the box), to [0, 1], f32."""
    top, left, h, w = box
    i0x, i1x, wx = _axis(S, left, w)
    i0y, i1y, wy = _axis(S, top, h)
    src = img_u8.astype(np.float64)  # [C, H, W]
    r0 = src[:, i0y, :]
    r1 = src[:, i1y, :]
    a0, b0 = r0[:, :, i0x], r0[:, :, i1x]
    a1, b1 = r1[:, :, i0x], r1[:, :, i1x]
    topv = a0 + (b0 - a0) * wx
    bot = a1 + (b1 - a1) * wx
    return ((topv + (bot - topv) * wy[:, None]) * (1 / 255)).astype(np.float32)


def _clamp01(x):
    return np.minimum(np.maximum(x, 0.0), 1.0)


def adjust_brightness(img, f):
    return _clamp01(img.astype(np.float64) * f).astype(np.float32)


def adjust_contrast(img, f):
    C = img.shape[0]
    x = img.astype(np.float64)
    if C == 3:
        grey = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
        s = np.cumsum(grey.reshape(-1))[-1]
    else:
        s = np.cumsum(x[0].reshape(-1))[-1]  # sequential, as protodino sums
    m = (1 - f) * (s / (img.shape[1] * img.shape[2]))
    return _clamp01(f * x + m).astype(np.float32)


def gaussian_kernel(sigma):
    r = max(1, math.ceil(3 * sigma))
    e = [math.exp((-i * i) / (2 * sigma * sigma)) for i in range(-r, r + 1)]
    s = 0.0
    for v in e:
        s += v
    k32 = np.array(e, dtype=np.float32)
    return (k32.astype(np.float64) / s).astype(np.float32)


def gaussian_blur(img, sigma):
    """Separable blur, radius ceil(3 sigma), edges extended; rows first, then columns; f32 between passes."""
    k = gaussian_kernel(sigma).astype(np.float64)
    r = (len(k) - 1) // 2

    def pass_last(x):  # along the last axis
        n = x.shape[-1]
        pad = np.concatenate([np.repeat(x[..., :1], r, axis=-1), x, np.repeat(x[..., -1:], r, axis=-1)], axis=-1).astype(np.float64)
        s = np.zeros(x.shape, dtype=np.float64)
        for t in range(len(k)):
            s = s + pad[..., t:t + n] * k[t]
        return s.astype(np.float32)

    out = pass_last(img)
    out = pass_last(out.swapaxes(-1, -2)).swapaxes(-1, -2)
    return np.ascontiguousarray(out)


def solarize(img, threshold=128 / 255):
    x = img.astype(np.float64)
    return np.where(x >= threshold, 1 - x, x).astype(np.float32)


class MultiCrop:
    """src/data/multicrop.ts MultiCrop.apply for grey images, with protodino's random streams."""

    def __init__(self, cfg, mean, std, channels, salt):
        self.sizes = [cfg["global_crops_size"]] * 2 + [cfg["local_crops_size"]] * cfg["local_crops_number"]
        self.global_scale = cfg["global_crops_scale"]
        self.local_scale = cfg["local_crops_scale"]
        self.ratio = (3 / 4, 4 / 3)
        self.flip_p = 0.5
        self.jitter_p = cfg["color_jitter_prob"]
        self.brightness, self.contrast, self.saturation, self.hue = 0.4, 0.4, 0.2, 0.1
        self.grayscale_p = 0.2
        self.global_blur_p = cfg["global_blur_prob"]
        self.local_blur_p = cfg["local_blur_prob"]
        self.blur_sigma = cfg["blur_sigma"]
        self.global_solarize_p = [0, cfg["solarize_prob"]]
        self.mean = np.array(mean, dtype=np.float64)[:, None, None]
        self.inv_std = np.array([1 / s for s in std], dtype=np.float64)[:, None, None]
        self.channels = channels
        self.salt = salt  # None: protodino's streams; an int: other streams (--data_stream independent)

    def crop_key(self, seed, epoch, index, k):
        key = [0xD1A0, seed & M32, seed // 0x100000000, epoch, index, k]
        return key if self.salt is None else key + [self.salt]

    def apply(self, img_u8, index, seed, epoch):
        C = self.channels
        outs = []
        for k, S in enumerate(self.sizes):
            glob = k < 2
            rng = Rng(self.crop_key(seed, epoch, index, k))
            H, W = img_u8.shape[1], img_u8.shape[2]
            box = random_resized_crop_box(rng.float, H, W, self.global_scale if glob else self.local_scale, self.ratio)
            img = crop_resize(img_u8, box, S)
            if rng.chance(self.flip_p):
                img = np.ascontiguousarray(img[:, :, ::-1])
            if rng.chance(self.jitter_p):
                img = self.jitter(img, rng)
            if C == 3 and rng.chance(self.grayscale_p):
                raise TwinError("colour images are not supported")
            if rng.chance(self.global_blur_p[k] if glob else self.local_blur_p):
                img = gaussian_blur(img, rng.uniform(self.blur_sigma[0], self.blur_sigma[1]))
            if glob and rng.chance(self.global_solarize_p[k]):
                img = solarize(img)
            outs.append(((img.astype(np.float64) - self.mean) * self.inv_std).astype(np.float32))
        return outs

    def jitter(self, img, rng):
        order = [0, 1, 2, 3]
        for i in range(3, 0, -1):
            j = rng.int(i + 1)
            order[i], order[j] = order[j], order[i]
        b = rng.uniform(max(0, 1 - self.brightness), 1 + self.brightness)
        c = rng.uniform(max(0, 1 - self.contrast), 1 + self.contrast)
        rng.uniform(max(0, 1 - self.saturation), 1 + self.saturation)  # drawn, a no-op on grey images
        rng.uniform(-self.hue, self.hue)
        for op in order:
            if op == 0 and self.brightness > 0:
                img = adjust_brightness(img, b)
            elif op == 1 and self.contrast > 0:
                img = adjust_contrast(img, c)
        return img


class Batches:
    """src/data/batch.ts BatchMaker + the loader's cursor: batch b of epoch e, shuffled per epoch, last short batch dropped."""

    def __init__(self, images, cfg, mean, std, salt=None):
        self.images = images
        self.n = images.shape[0]
        self.B = cfg["batch_size"]
        self.per_epoch = self.n // self.B
        if self.per_epoch == 0:
            raise TwinError(f"{self.n} images do not fill one batch of {self.B}")
        self.seed = cfg["seed"]
        self.salt = salt
        self.crop = MultiCrop(cfg, mean, std, images.shape[1], salt)
        self.orders = {}

    def order(self, epoch):
        if epoch not in self.orders:
            key = [0x5E9, self.seed & M32, self.seed // 0x100000000, epoch] + ([] if self.salt is None else [self.salt])
            self.orders = {epoch: permutation(self.n, Rng(key))}
        return self.orders[epoch]

    def make(self, epoch, batch):
        idx = self.order(epoch)[batch * self.B:(batch + 1) * self.B]
        per_crop = [[] for _ in self.crop.sizes]
        for i in idx:
            for k, c in enumerate(self.crop.apply(self.images[i], int(i), self.seed, epoch)):
                per_crop[k].append(c)
        crops = [np.stack(c) for c in per_crop]
        return crops, idx

    def at(self, seq):
        """The seq-th batch of the run (seq = epoch·per_epoch + batch)."""
        return self.make(seq // self.per_epoch, seq % self.per_epoch)


# ---------------------------------------------------------------------------------------------------
# Schedules (src/train/schedules.ts)


def np_linspace(start, stop, num):
    return [float(v) for v in np.linspace(start, stop, num)] if num > 0 else []


def cosine_scheduler(base, final, epochs, niter, warmup_epochs=0, start_warmup=0.0):
    total = epochs * niter
    warm = warmup_epochs * niter
    out = []
    if warmup_epochs > 0:
        out.extend(np_linspace(start_warmup, base, warm))
    length = total - warm
    amp = 0.5 * (base - final)
    out.extend(final + amp * (1 + math.cos(math.pi * i / length)) for i in range(length))
    return out


def teacher_temp_schedule(warm_temp, temp, warm_epochs, nepochs):
    out = [temp] * nepochs
    out[:warm_epochs] = np_linspace(warm_temp, temp, warm_epochs)
    return out


# ---------------------------------------------------------------------------------------------------
# safetensors (what protodino reads: F32/I32 tensors, protodino metadata, payload SHA-256)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    dt = {"F32": np.float32, "I32": np.int32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}
    out = {}
    for name, e in header.items():
        b, en = e["data_offsets"]
        out[name] = np.frombuffer(raw[base + b:base + en], dtype=dt[e["dtype"]]).reshape(e["shape"]).copy()
    return out, meta


def write_safetensors(path, tensors, metadata):
    """Tensors laid out by name, "__metadata__" first, header padded to 8 bytes, checksum of the data."""
    names = sorted(tensors)
    entries, chunks, off = {}, [], 0
    for name in names:
        a = np.asarray(tensors[name]).copy(order="C")  # (ascontiguousarray would make a 0-d scalar 1-d)
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}[a.dtype]
        b = a.tobytes()
        entries[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    data = b"".join(chunks)
    meta = dict(metadata)
    meta["payload_sha256"] = hashlib.sha256(data).hexdigest()
    header = {"__metadata__": dict(sorted(meta.items()))}
    header.update(entries)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        f.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------
# Loss and update (torch from here on; the networks are models/)


def koleo(x, eps=1e-8):
    """DINOv2's KoLeoLoss (protodino's koleoLoss): -mean log(distance to the nearest other row + eps)."""
    import torch
    import torch.nn.functional as F
    x = F.normalize(x, eps=eps, p=2, dim=-1)
    with torch.no_grad():
        dots = x @ x.t()
        dots.fill_diagonal_(-2)
        nn_idx = dots.argmax(dim=1)
    d = F.pairwise_distance(x, x[nn_idx], p=2, eps=eps)
    return -torch.log(d + eps).mean()


def update(cfg, named, student, teacher, opt, epoch, lr, wd, m):
    """After loss.backward(): DINO's per-parameter clipping, last-layer freezing, the AdamW step at this
    step's lr and weight decay (first group only), then the teacher's EMA. The twin and the DDP trainer
    share it, so both step exactly as protodino's trainer does."""
    import torch
    if cfg["clip_grad"] > 0:
        for _, q_ in named:  # DINO's utils.clip_gradients
            if q_.grad is not None:
                coef = cfg["clip_grad"] / (q_.grad.detach().norm(2) + 1e-6)
                if coef < 1:
                    q_.grad.mul_(coef)
    if epoch < cfg["freeze_last_layer"]:
        for q_ in student.head.last_layer.parameters():
            q_.grad = None
    for g in opt.param_groups:
        g["lr"] = lr
    opt.param_groups[0]["weight_decay"] = wd
    opt.step()
    with torch.no_grad():
        for ps, pt in zip(student.parameters(), teacher.parameters()):
            pt.mul_(m).add_(ps.detach(), alpha=1 - m)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--config", required=True, help="a protodino run's log.jsonl (its start event) or a JSON config")
    ap.add_argument("--out", required=True, help="output directory (log.jsonl, checkpoint-step<N>.safetensors)")
    ap.add_argument("--init", default="torch", help="'torch' (protodino's scheme, torch RNG) or a safetensors file of "
                    "protodino's step-0 weights (protodino-side.mjs init)")
    ap.add_argument("--save_at", default="", help="comma-separated steps to save a checkpoint at (the last step always)")
    ap.add_argument("--max_steps", type=int, default=None, help="override the config's max_steps (0: all epochs)")
    ap.add_argument("--seed", type=int, default=None, help="override the config's seed (init with --init torch, data streams)")
    ap.add_argument("--log_every", type=int, default=None, help="override the config's log_every")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--data_stream", choices=["protodino", "independent"], default="protodino",
                    help="protodino: the very crops protodino draws for this seed; independent: other random streams")
    ap.add_argument("--check_batch", default=None, help="compare this protodino-side.mjs batch file (its epoch and batch) with the twin's own and exit")
    ap.add_argument("--mkldnn", choices=["on", "off"], default="on",
                    help="off: torch's native convolutions (im2col + BLAS) instead of oneDNN: the same math, other "
                    "rounding; how far that moves a run measures how fast training amplifies rounding (see the docs)")
    ap.add_argument("--init_only", action="store_true", help="write checkpoint-step0.safetensors (the initial weights) and exit")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    cfg = read_config(args.config)
    for k in ("max_steps", "seed", "log_every"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    check_supported(cfg)
    images, _labels = load_train_set(cfg)
    mean, std = channel_stats(images)
    salt = None if args.data_stream == "protodino" else 0x746F7263  # 'torc'
    batches = Batches(images, cfg, mean, std, salt)

    if args.check_batch:
        ref, meta = read_safetensors(args.check_batch)
        crops, idx = batches.make(int(meta.get("epoch", 0)), int(meta.get("batch", 0)))
        ok = np.array_equal(ref["indices"].astype(np.int64), idx)
        worst = 0.0
        exact = 0
        total = 0
        for k, c in enumerate(crops):
            r = ref[f"crop_{k}"]
            if r.shape != c.shape:
                raise TwinError(f"crop {k}: shape {c.shape} here, {r.shape} in protodino's batch")
            worst = max(worst, float(np.abs(r - c).max()))
            exact += int((r == c).sum())
            total += r.size
        rep = {"check": "batch", "epoch": int(meta.get("epoch", 0)), "batch": int(meta.get("batch", 0)), "indices_equal": bool(ok), "max_abs_diff": worst, "bit_identical_fraction": exact / total,
               "mean": mean, "std": std, "protodino_mean": json.loads(meta.get("mean", "null")),
               "protodino_std": json.loads(meta.get("std", "null"))}
        print(json.dumps(rep))
        return 0 if ok and worst < 1e-4 else 1

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    import torch.nn.functional as F
    from models.network import build_network
    torch.set_num_threads(args.threads)
    torch.backends.mkldnn.enabled = args.mkldnn == "on"
    torch.manual_seed(cfg["seed"])
    channels = images.shape[1]
    gen = torch.Generator().manual_seed(cfg["seed"])
    student = build_network(cfg, channels, gen, cfg["drop_path_rate"])
    teacher = build_network(cfg, channels, torch.Generator().manual_seed(cfg["seed"]), 0)  # DINO's teacher has no drop path
    if args.init != "torch":
        state, _ = read_safetensors(args.init)
        sd = {k[len("student."):]: v for k, v in state.items() if k.startswith("student.")} or state
        own = student.state_dict()
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        if missing or unexpected:
            raise TwinError(f"{args.init}: missing {missing}, unexpected {unexpected}")
        student.load_state_dict({k: torch.from_numpy(np.asarray(v)).reshape(own[k].shape).to(own[k].dtype) for k, v in sd.items()})
    teacher.load_state_dict(student.state_dict())
    for q in teacher.parameters():
        q.requires_grad = False
    named = [(n, q) for n, q in student.named_parameters() if q.requires_grad]
    # protodino's decayGroups (DINO's get_params_groups): biases and 1-D parameters are not decayed.
    decay = [q for n, q in named if not (n.endswith(".bias") or q.ndim == 1)]
    plain = [q for n, q in named if n.endswith(".bias") or q.ndim == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.0}, {"params": plain, "weight_decay": 0.0}], lr=0.0,
                            betas=(0.9, 0.999), eps=1e-8)
    center = torch.zeros(1, cfg["out_dim"])

    B = cfg["batch_size"]
    niter = batches.per_epoch
    total_steps = min(cfg["max_steps"], cfg["epochs"] * niter) if cfg["max_steps"] > 0 else cfg["epochs"] * niter
    lr_s = cosine_scheduler(cfg["lr"] * B / 256, cfg["min_lr"], cfg["epochs"], niter, cfg["warmup_epochs"])
    wd_s = cosine_scheduler(cfg["weight_decay"], cfg["weight_decay_end"], cfg["epochs"], niter)
    mom_s = cosine_scheduler(cfg["momentum_teacher"], 1, cfg["epochs"], niter)
    temp_s = teacher_temp_schedule(cfg["warmup_teacher_temp"], cfg["teacher_temp"], cfg["warmup_teacher_temp_epochs"], cfg["epochs"])
    save_at = sorted({int(s) for s in args.save_at.split(",") if s.strip()} | {total_steps})
    L = cfg["local_crops_number"]
    n_crops = 2 + L

    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "log.jsonl"), "a")

    def write(rec):
        log.write(json.dumps(rec) + "\n")
        log.flush()

    info = {"engine": "pytorch-twin", "torch": torch.__version__, "threads": torch.get_num_threads(), "mkldnn": args.mkldnn, "init": args.init,
            "data_stream": args.data_stream, "config_from": os.path.abspath(args.config)}
    write({"event": "start", "config": cfg, "backend": f"pytorch {torch.__version__} cpu, {torch.get_num_threads()} thread(s)",
           "parameters": sum(q.numel() for q in student.parameters()), "twin": info})

    def save(step, epoch):
        tensors = {}
        for prefix, net in (("student", student), ("teacher", teacher)):
            for name, t in net.state_dict().items():
                tensors[f"{prefix}.{name}"] = t.detach().to(torch.float32).numpy().copy()
        tensors["dino_loss.center"] = center.numpy().astype(np.float32)
        meta = {"format": "protodino-dino-v1", "epoch": epoch, "step": step, "config": cfg,
                "loader": {"epoch": step // niter, "batch": step % niter, "seed": cfg["seed"], "batchSize": B, "n": batches.n},
                "optimizerSteps": {}, "optimizerStep": 0, "optimizerGroups": [], "twin": info}
        path = os.path.join(args.out, f"checkpoint-step{step}.safetensors")
        write_safetensors(path, tensors, {"protodino": json.dumps(meta)})
        write({"event": "save", "step": step, "path": path})

    if args.init_only or 0 in save_at:
        save(0, 0)
        if args.init_only:
            log.close()
            return 0
    student.train()
    teacher.train()  # as in DINO and protodino: the teacher's BatchNorm (backbone, head) normalises by the batch
    t0 = time.perf_counter()
    images_since = 0
    step = 0
    data_s = 0.0
    while step < total_steps:
        epoch = step // niter
        td = time.perf_counter()
        crops, _ = batches.at(step)
        data_s += time.perf_counter() - td
        lr, wd, m, temp = lr_s[step], wd_s[step], mom_s[step], temp_s[epoch]
        globals_ = torch.from_numpy(np.concatenate(crops[:2]))
        locals_ = torch.from_numpy(np.concatenate(crops[2:])) if L > 0 else None
        with torch.no_grad():
            t_out, _ = teacher(globals_)
        s_out, feats0 = student(globals_, locals_)
        with torch.no_grad():
            q = F.softmax((t_out - center) / temp, dim=-1)
            q0, q1 = q[:B], q[B:]
            targets = torch.cat([q1, q0] + [q0 + q1] * (n_crops - 2))
        logp = F.log_softmax(s_out / cfg["student_temp"], dim=-1)
        loss = -(targets * logp).sum(-1).sum() / (2 * (n_crops - 1) * B)
        if cfg["koleo_proto"] > 0:
            loss = loss + cfg["koleo_proto"] * koleo(student.head.last_layer.weight_v)
        if cfg["koleo_features"] > 0:
            loss = loss + cfg["koleo_features"] * koleo(feats0[:B])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        value = loss.item()
        if not math.isfinite(value):
            write({"event": "diverged", "epoch": epoch, "step": step + 1, "tensor": "loss", "value": str(value)})
            raise TwinError(f"training diverged at step {step + 1}: the loss is {value}")
        update(cfg, named, student, teacher, opt, epoch, lr, wd, m)
        with torch.no_grad():
            center = center * cfg["center_momentum"] + t_out.mean(dim=0, keepdim=True) * (1 - cfg["center_momentum"])
        step += 1
        images_since += B
        epoch_done = step % niter == 0 or step == total_steps
        if step % cfg["log_every"] == 0 or epoch_done or step == 1 or step in save_at:
            dt = time.perf_counter() - t0
            rec = {"event": "step", "epoch": epoch, "step": step, "loss": value, "lr": lr, "wd": wd, "momentum": m,
                   "teacher_temp": temp, "img_per_s": images_since / dt, "data_s": data_s}
            write(rec)
            t0, images_since, data_s = time.perf_counter(), 0, 0.0
            if not args.quiet:
                print(f"step {step}/{total_steps} epoch {epoch + 1} loss {value:.4f} {rec['img_per_s']:.0f} img/s", file=sys.stderr)
        if step in save_at:
            save(step, epoch + 1 if epoch_done else epoch)
    log.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TwinError as e:
        print(f"torch-twin: {e}", file=sys.stderr)
        sys.exit(2)
