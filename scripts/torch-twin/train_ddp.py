#!/usr/bin/env python3
"""protodino's DINO recipe under PyTorch DistributedDataParallel, for runs larger than one machine.

  torchrun --nproc_per_node=N scripts/torch-twin/train_ddp.py [protodino train flags] [--device cpu|cuda]

The flags are `protodino train`'s, read from its flag table (flags.py), with the same presets. The
network is models/ (the one definition the twin and the bench peers use too); the multi-crop
augmentation with protodino's counter-based random streams, the schedules and the loss are the
twin's (train.py), imported rather than copied. What distribution changes:

  data     the global batch B is split over the W processes by a DistributedSampler over protodino's
           epoch permutation; every crop's randomness is keyed by (seed, epoch, sample index, crop),
           never by the process, so the union of the W batches is the very batch one process draws;
  BN       every BatchNorm (backbone and head, student and teacher) is synchronised, as upstream DINO
           does (dist_ops.py: torch's SyncBatchNorm on CUDA, a differentiable all-reduce one on CPU);
  center   the teacher outputs' batch sum is all-reduced before the centre's EMA, as upstream DINO;
  loss     each process averages over its B/W samples and DDP averages the gradients: the mean over B;
  KoLeo    KoLeo-proto is computed the same on every process (the prototypes are shared), its
           neighbour search blocked so K = 65536 needs no K×K matrix; --koleo_features is per process,
           over its own B/W samples, as DINOv2 computes it.

Rank 0 writes OUTPUT_DIR/log.jsonl (protodino's records, so `protodino report` draws the run) and
OUTPUT_DIR/checkpoint.pth in facebookresearch/dino's layout (student under DDP's 'module.', teacher,
optimizer, epoch, args, dino_loss.center) every epoch, every --save_every steps and at the end.
`args` is a plain dict ({config, step, normalization, world_size}) rather than DINO's argparse
Namespace, so protodino's pickle reader, which builds no Python classes, can take the network's
config from it. --resume continues from OUTPUT_DIR/checkpoint.pth at the step it saved, with the config
saved there (flags given beside --resume override it, as with `protodino train --resume`); --init_from
FILE starts from a `protodino export --to pth` file (or any DINO checkpoint.pth of this network) at
the start of the epoch it saved, as DINO's restart_from_checkpoint does.
"""
import datetime
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import flags as flagtable  # noqa: E402
import train as twin  # noqa: E402
from models.presets import RESNET_PRESETS, VIT_PRESETS  # noqa: E402

OWN_FLAGS = {"device": "cpu"}


class DDPError(Exception):
    pass


def check_config(cfg, world):
    """Everything this trainer refuses, before a process group exists or a step runs."""
    def no(flag, why):
        raise DDPError(f"--{flag}: {why} is not supported by the DDP trainer")
    if cfg["arch"] not in VIT_PRESETS and cfg["arch"] not in RESNET_PRESETS:
        no("arch", f"'{cfg['arch']}' (it trains {', '.join(list(VIT_PRESETS) + list(RESNET_PRESETS))})")
    for flag, why in (("ibot", "iBOT's patch loss"), ("vmf", "DINO-vMF"), ("freeze_backbone", "a frozen backbone"),
                      ("prototypes_only", "the prototypes-only head")):
        if cfg[flag]:
            no(flag, why)
    if cfg["centering"] != "centering":
        no("centering", f"'{cfg['centering']}' (only centering)")
    if cfg["prototypes"] != "gradient":
        no("prototypes", f"'{cfg['prototypes']}' (EM prototypes)")
    if cfg["koleo_proto_exact_every"] > 1:
        no("koleo_proto_exact_every", "KoLeo-proto's candidate cache (the blocked exact search runs every step)")
    if cfg["accum_steps"] != 1:
        no("accum_steps", "gradient accumulation (add processes instead)")
    if cfg["long_tail"] > 1:
        no("long_tail", "a long-tailed subset")
    if cfg["dataset"] not in ("fashion-mnist", "idx"):
        no("dataset", f"'{cfg['dataset']}' (fashion-mnist and idx)")
    if cfg["batch_size"] % world != 0:
        raise DDPError(f"--batch_size {cfg['batch_size']} is not divisible by the world size {world}: every process "
                       f"takes batch_size / world_size samples (try {cfg['batch_size'] - cfg['batch_size'] % world} or "
                       f"{cfg['batch_size'] + world - cfg['batch_size'] % world})")
    sizes = [cfg["global_crops_size"]] + ([cfg["local_crops_size"]] if cfg["local_crops_number"] > 0 else [])
    if cfg["arch"] in VIT_PRESETS and any(s % cfg["patch_size"] for s in sizes):
        raise DDPError("crop sizes must be multiples of --patch_size")


def load_test_set(cfg):
    """The t10k split, as protodino's evalData reads it (None where the files are absent)."""
    d = cfg["data_path"] or twin.FASHION_MNIST_DIR
    for suffix in (".gz", ""):
        img, lab = (os.path.join(d, f"t10k-{k}-ubyte{suffix}") for k in ("images-idx3", "labels-idx1"))
        if os.path.exists(img) and os.path.exists(lab):
            return twin.read_idx(img)[:, None], twin.read_idx(lab).astype(np.int64)
    return None


def main(argv):
    table = flagtable.load_table()
    cfg, own = flagtable.parse(argv, table, OWN_FLAGS)
    # --resume alone continues the run with the config it saved; flags given beside it still win.
    saved = saved_config(os.path.join(cfg["output_dir"], "checkpoint.pth")) if cfg["resume"] else None
    if saved:
        cfg, own = flagtable.parse(argv, table, OWN_FLAGS, base=saved)
    if own["device"] not in ("cpu", "cuda"):
        raise DDPError(f"--device: must be cpu or cuda, got '{own['device']}'")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    check_config(cfg, world)

    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP
    import dist_ops
    from models.network import build_network

    device = own["device"]
    if device == "cuda":
        if not torch.cuda.is_available():
            raise DDPError("--device cuda: torch sees no CUDA device")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    threads = cfg["threads"] or 1
    torch.set_num_threads(threads)

    images, train_labels = twin.load_train_set(cfg)  # the --subset applied
    mean, std = twin.channel_stats(images)
    B = cfg["batch_size"]
    b = B // world
    n = images.shape[0]
    niter = n // B
    if niter == 0:
        raise DDPError(f"{n} images do not fill one batch of {B}")
    total_steps = min(cfg["max_steps"], cfg["epochs"] * niter) if cfg["max_steps"] > 0 else cfg["epochs"] * niter

    channels = images.shape[1]
    student = build_network(cfg, channels, torch.Generator().manual_seed(cfg["seed"]), cfg["drop_path_rate"])
    teacher = build_network(cfg, channels, torch.Generator().manual_seed(cfg["seed"]), 0)

    # The starting point, read and matched against this network before the process group starts.
    state, start_step = None, 0
    ckpt_path = os.path.join(cfg["output_dir"], "checkpoint.pth")
    if cfg["resume"] and os.path.exists(ckpt_path):
        state = load_checkpoint(torch, ckpt_path, student, teacher, cfg)
        start_step = state["args"]["step"] if isinstance(state.get("args"), dict) and "step" in state["args"] else state["epoch"] * niter
    elif cfg["init_from"]:
        state = load_checkpoint(torch, cfg["init_from"], student, teacher, cfg)
        start_step = int(state.get("epoch", 0)) * niter  # DINO restarts at the start of the epoch it saved
    else:
        teacher.load_state_dict(student.state_dict())
    if start_step >= total_steps:
        raise DDPError(f"the starting point is step {start_step}, at or past the run's last step {total_steps} "
                       f"(--epochs {cfg['epochs']}, --max_steps {cfg['max_steps']}): nothing to train")

    # Drop path draws from torch's global generator. Seeding it by (seed, rank, first step), as upstream
    # seeds by seed + rank, makes a run repeatable at a fixed world size, and a resumed run does not
    # replay the masks of the steps it already trained.
    torch.manual_seed((cfg["seed"] * 1_000_003 + rank * 10_007 + start_step) % 2**63)
    if world > 1 or "RANK" in os.environ:
        dist.init_process_group("nccl" if device == "cuda" else "gloo", timeout=datetime.timedelta(minutes=10))
    student = dist_ops.convert_sync_batchnorm(student, device).to(dev)
    teacher = dist_ops.convert_sync_batchnorm(teacher, device).to(dev)
    for q in teacher.parameters():
        q.requires_grad = False
    ddp = DDP(student, device_ids=[dev.index] if device == "cuda" else None, broadcast_buffers=False) if dist.is_initialized() else None
    model = ddp if ddp is not None else student

    named = [(nm, q) for nm, q in student.named_parameters() if q.requires_grad]
    # DINO's get_params_groups (protodino's decayGroups): biases and 1-D parameters are not decayed.
    decay = [q for nm, q in named if not (nm.endswith(".bias") or q.ndim == 1)]
    plain = [q for nm, q in named if nm.endswith(".bias") or q.ndim == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.0}, {"params": plain, "weight_decay": 0.0}], lr=0.0,
                            betas=(0.9, 0.999), eps=1e-8)
    center = torch.zeros(1, cfg["out_dim"], device=dev)
    if state is not None:
        if state.get("optimizer") is not None:
            load_optimizer(opt, state["optimizer"], ckpt_path if cfg["resume"] else cfg["init_from"])
        if state.get("dino_loss") is not None:
            center = state["dino_loss"]["center"].to(dev).reshape(1, -1).clone()

    lr_s = twin.cosine_scheduler(cfg["lr"] * B / 256, cfg["min_lr"], cfg["epochs"], niter, cfg["warmup_epochs"])
    wd_s = twin.cosine_scheduler(cfg["weight_decay"], cfg["weight_decay_end"], cfg["epochs"], niter)
    mom_s = twin.cosine_scheduler(cfg["momentum_teacher"], 1, cfg["epochs"], niter)
    temp_s = twin.teacher_temp_schedule(cfg["warmup_teacher_temp"], cfg["teacher_temp"], cfg["warmup_teacher_temp_epochs"], cfg["epochs"])
    crop = twin.MultiCrop(cfg, mean, std, channels, None)
    L = cfg["local_crops_number"]
    n_crops = 2 + L
    order_cache = {}

    def rank_batch(step):
        """This process's share of the step's global batch: DistributedSampler's interleaving
        (rank, rank + W, ...) of the B samples protodino's permutation puts in that batch."""
        epoch, i = divmod(step, niter)
        if epoch not in order_cache:
            order_cache.clear()
            key = [0x5E9, cfg["seed"] & twin.M32, cfg["seed"] // 0x100000000, epoch]
            order_cache[epoch] = twin.permutation(n, twin.Rng(key))
        idx = order_cache[epoch][i * B:(i + 1) * B][rank::world]
        per_crop = [[] for _ in crop.sizes]
        for s in idx:
            for k, c in enumerate(crop.apply(images[s], int(s), cfg["seed"], epoch)):
                per_crop[k].append(c)
        return [torch.from_numpy(np.stack(c)).to(dev) for c in per_crop]

    log = None
    if rank == 0:
        os.makedirs(cfg["output_dir"], exist_ok=True)
        log = open(os.path.join(cfg["output_dir"], "log.jsonl"), "a")

    def write(rec):
        if log:
            log.write(json.dumps(rec) + "\n")
            log.flush()

    write({"event": "start", "config": cfg, "backend": f"pytorch {torch.__version__} DDP, {world} x {device} "
           f"({'nccl' if device == 'cuda' else 'gloo'}), {threads} thread(s) each",
           "parameters": sum(q.numel() for q in student.parameters()), "world_size": world})
    if cfg["init_from"] and not (cfg["resume"] and os.path.exists(ckpt_path)):
        write({"event": "init_from", "from": cfg["init_from"], "kind": "dino", "step": start_step, "epoch": start_step // niter})

    def save(step, epoch_done):
        if rank != 0:
            return
        obj = {"student": (ddp or student).state_dict(), "teacher": teacher.state_dict(), "optimizer": opt.state_dict(),
               "epoch": epoch_done, "dino_loss": {"center": center.detach().cpu()},
               "args": {"config": cfg, "step": step, "normalization": {"mean": mean, "std": std}, "world_size": world,
                        "engine": "protodino torch-twin/train_ddp.py"}}
        tmp = f"{ckpt_path}.tmp-{os.getpid()}"
        torch.save(obj, tmp)
        os.replace(tmp, ckpt_path)

    test = load_test_set(cfg) if rank == 0 and cfg["eval_every_epoch"] else None

    def diagnostics(epoch):
        w = teacher.head.last_layer.weight_v.detach().cpu()
        rec = {"unique_prototypes": dist_ops.unique_greedy(w, [0.025, 0.1]), "eps_metric": "euclidean", "prototypes": int(w.shape[0])}
        if test is None:
            return rec
        norm = lambda x: ((x.astype(np.float32) / 255 - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None])
        teacher.eval()
        try:
            with torch.no_grad():
                def embed(x):
                    return torch.cat([teacher.backbone(torch.from_numpy(norm(x[s:s + 256])).to(dev)) for s in range(0, len(x), 256)])
                ftr = embed(images[:cfg["eval_train_max"] or len(images)])
                ltr = torch.from_numpy(train_labels[:len(ftr)])
                nte = cfg["eval_test_max"] or len(test[0])
                fte = embed(test[0][:nte])
                lte = torch.from_numpy(test[1][:nte])
                p = F.softmax(teacher.head(fte) / cfg["teacher_temp"], dim=-1)
        finally:
            teacher.train()
        counts = torch.bincount(p.argmax(1), minlength=p.shape[1])
        marg = p.mean(0).double()
        ent = float(-(marg * torch.log(marg.clamp_min(1e-30))).sum())
        k = min(20, len(ftr))
        # protodino's knnClassify (DINO's weighted k-NN): cosine similarity, votes exp(sim / 0.07).
        a, c = F.normalize(ftr, dim=1), F.normalize(fte, dim=1)
        sim, nb = (c @ a.t()).topk(k, dim=1)
        votes = torch.zeros(len(fte), int(max(ltr.max(), lte.max())) + 1, device=dev).scatter_add_(1, ltr.to(dev)[nb], (sim / 0.07).exp())
        rec.update({"usage_used": int((counts > 0).sum()), "usage_entropy": ent, "usage_entropy_fraction": ent / math.log(p.shape[1]),
                    "knn_top1": float((votes.argmax(1).cpu() == lte).double().mean()), "knn_k": k,
                    "eval_train_rows": len(ftr), "eval_test_rows": nte})
        return rec

    student.train()
    teacher.train()  # as DINO and protodino: the teacher's BatchNorm normalises by the (global) batch
    t0, images_since, last = time.perf_counter(), 0, None
    step = start_step
    while step < total_steps:
        epoch = step // niter
        crops = rank_batch(step)
        lr, wd, m, temp = lr_s[step], wd_s[step], mom_s[step], temp_s[epoch]
        globals_ = torch.cat(crops[:2])
        locals_ = torch.cat(crops[2:]) if L > 0 else None
        with torch.no_grad():
            t_out, _f = teacher(globals_)
        s_out, feats0 = model(globals_, locals_)
        with torch.no_grad():
            q = F.softmax((t_out - center) / temp, dim=-1)
            q0, q1 = q[:b], q[b:]
            targets = torch.cat([q1, q0] + [q0 + q1] * (n_crops - 2))
        logp = F.log_softmax(s_out / cfg["student_temp"], dim=-1)
        loss = -(targets * logp).sum(-1).sum() / (2 * (n_crops - 1) * b)
        if cfg["koleo_proto"] > 0:
            loss = loss + cfg["koleo_proto"] * dist_ops.koleo_blocked(student.head.last_layer.weight_v)
        if cfg["koleo_features"] > 0:
            loss = loss + cfg["koleo_features"] * twin.koleo(feats0[:b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        shown = loss.detach().clone()
        if dist.is_initialized():
            dist.all_reduce(shown)
            shown /= world
        value = float(shown)
        if not math.isfinite(value):
            write({"event": "diverged", "epoch": epoch, "step": step + 1, "tensor": "loss", "value": str(value)})
            raise DDPError(f"training diverged at step {step + 1}: the loss is {value}")
        # Clipping acts on the gradients DDP has already averaged over the processes.
        twin.update(cfg, named, student, teacher, opt, epoch, lr, wd, m)
        with torch.no_grad():
            batch_center = t_out.sum(dim=0, keepdim=True)
            if dist.is_initialized():
                dist.all_reduce(batch_center)
            batch_center = batch_center / (len(t_out) * world)
            center = center * cfg["center_momentum"] + batch_center * (1 - cfg["center_momentum"])
        step += 1
        images_since += B
        epoch_done = step % niter == 0 or step == total_steps
        if step % cfg["log_every"] == 0 or epoch_done or step == start_step + 1:
            dt = time.perf_counter() - t0
            last = {"epoch": epoch, "step": step, "loss": value, "lr": lr, "wd": wd, "momentum": m, "teacher_temp": temp,
                    "img_per_s": images_since / dt}
            write({"event": "step", **last})
            t0, images_since = time.perf_counter(), 0
            if rank == 0 and not cfg["quiet"]:
                print(f"step {step}/{total_steps} epoch {epoch + 1} loss {value:.4f} {last['img_per_s']:.0f} img/s", file=sys.stderr)
        if epoch_done:
            done = epoch + 1 if step % niter == 0 else epoch
            save(step, done)
            if rank == 0 and cfg["eval_every_epoch"]:
                extra = diagnostics(epoch)
                write({"event": "epoch", "epoch": epoch + 1, "step": step, "loss": value, **extra})
                if not cfg["quiet"]:
                    print(f"epoch {epoch + 1}: unique {extra['unique_prototypes']} of {extra['prototypes']}"
                          + (f"; usage {extra['usage_used']} used; k-NN@{extra['knn_k']} top-1 {100 * extra['knn_top1']:.2f}%"
                             if "knn_top1" in extra else ""), file=sys.stderr)
        elif cfg["save_every"] > 0 and step % cfg["save_every"] == 0:
            save(step, epoch)
        if dist.is_initialized() and epoch_done:
            dist.barrier()  # the others wait while rank 0 saves and evaluates
    if rank == 0:
        print(f"trained {step - start_step} steps (to step {step}); final loss {value:.4f}; checkpoint {ckpt_path}")
    if log:
        log.close()
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def saved_config(path):
    """The config a checkpoint.pth keeps in args (this trainer's and `protodino export --to pth`'s);
    None when there is no such file or it keeps none (e.g. facebookresearch/dino's own Namespace)."""
    if not os.path.exists(path):
        return None
    import torch

    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # torch raises several kinds for a file that is not a checkpoint
        raise DDPError(f"{path}: cannot be read as a PyTorch checkpoint ({e})")
    args = obj.get("args") if isinstance(obj, dict) else None
    return args.get("config") if isinstance(args, dict) and isinstance(args.get("config"), dict) else None


def load_checkpoint(torch, path, student, teacher, cfg):
    """A DINO checkpoint.pth, its networks matched name by name and shape by shape against the ones this
    config builds: a file of another architecture fails here, naming what differs, before any step."""
    if not os.path.exists(path):
        raise DDPError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # torch raises several kinds for a file that is not a checkpoint
        raise DDPError(f"{path}: cannot be read as a PyTorch checkpoint ({e})")
    if not isinstance(obj, dict) or "student" not in obj or "teacher" not in obj:
        raise DDPError(f"{path}: not a DINO checkpoint (a dict with student and teacher)")
    for which, net in (("student", student), ("teacher", teacher)):
        sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj[which].items()}
        own = net.state_dict()
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        shapes = [f"{k} {list(sd[k].shape)} (this network: {list(own[k].shape)})" for k in own if k in sd and sd[k].shape != own[k].shape]
        if missing or unexpected or shapes:
            what = "; ".join(x for x in (f"missing {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}" if missing else "",
                                         f"unexpected {', '.join(unexpected[:5])}{' …' if len(unexpected) > 5 else ''}" if unexpected else "",
                                         f"shapes differ: {', '.join(shapes[:3])}" if shapes else "") if x)
            raise DDPError(f"{path}: its {which} is not the network --arch {cfg['arch']} --out_dim {cfg['out_dim']} builds "
                           f"(another architecture?): {what}")
        net.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()})
    c = obj.get("dino_loss", {}).get("center") if isinstance(obj.get("dino_loss"), dict) else None
    if c is not None and c.numel() != cfg["out_dim"]:
        raise DDPError(f"{path}: dino_loss.center has {c.numel()} values, --out_dim is {cfg['out_dim']}")
    return obj


def load_optimizer(opt, sd, path):
    groups = sd.get("param_groups", [])
    if len(groups) != len(opt.param_groups) or any(len(g["params"]) != len(o["params"]) for g, o in zip(groups, opt.param_groups)):
        raise DDPError(f"{path}: its optimizer holds groups of {[len(g['params']) for g in groups]} parameters, this run's "
                       f"AdamW {[len(g['params']) for g in opt.param_groups]}")
    for g, o in zip(groups, opt.param_groups):
        for pid, q in zip(g["params"], o["params"]):
            s = sd["state"].get(pid)
            if s is not None and s["exp_avg"].shape != q.shape:
                raise DDPError(f"{path}: optimizer state {pid} has shape {list(s['exp_avg'].shape)}, the parameter {list(q.shape)}")
    opt.load_state_dict(sd)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (DDPError, flagtable.FlagError, twin.TwinError) as e:
        print(f"train_ddp: {e}", file=sys.stderr)
        sys.exit(2)
