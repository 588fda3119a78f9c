#!/usr/bin/env python3
"""How far two runs of the same recipe are apart: protodino and the twin from identical init and batches.

  /usr/bin/python3 scripts/torch-twin/diff.py --logs A/log.jsonl B/log.jsonl \
      [--ckpts A/checkpoint.safetensors B/checkpoint-step20.safetensors] [--top 5]

Prints one JSON object: the steps both logs record, the largest loss difference (absolute and
relative) and whether lr, wd, momentum and teacher temperature are equal at every such step; with
--ckpts, the largest absolute difference per group of tensors (student / teacher parameters, the
teacher's BatchNorm running statistics, the center) and the tensors that differ most. Groups are
reported apart because they drift differently: a running variance is not on the parameters' scale.
Needs numpy only.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import read_safetensors  # noqa: E402


def steps(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r.get("event") == "step":
                    out[r["step"]] = r
    return out


def group(name):
    net, _, rest = name.partition(".")
    if name == "dino_loss.center":
        return "center"
    if rest.endswith("num_batches_tracked"):
        return f"{net}.num_batches_tracked"
    if rest.endswith("running_mean") or rest.endswith("running_var"):
        return f"{net}.running_stats"
    return f"{net}.parameters"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", nargs=2, required=True)
    ap.add_argument("--ckpts", nargs=2)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--per_step", action="store_true", help="also list [step, loss A, loss B] for every common step")
    a = ap.parse_args()
    la, lb = (steps(p) for p in a.logs)
    common = sorted(set(la) & set(lb))
    rep = {"steps": [common[0], common[-1]] if common else None, "n_steps": len(common)}
    if common:
        d = [abs(la[s]["loss"] - lb[s]["loss"]) for s in common]
        worst = max(range(len(common)), key=lambda i: d[i])
        rep["loss_max_abs_diff"] = d[worst]
        rep["loss_at_worst"] = [la[common[worst]]["loss"], lb[common[worst]]["loss"], common[worst]]
        rep["loss_max_rel_diff"] = max(x / max(abs(la[s]["loss"]), 1e-30) for x, s in zip(d, common))
        rep["schedules_equal"] = all(la[s][k] == lb[s][k] for s in common for k in ("lr", "wd", "momentum", "teacher_temp"))
        if a.per_step:
            rep["loss_per_step"] = [[s, la[s]["loss"], lb[s]["loss"]] for s in common]
    if a.ckpts:
        # The networks and the center; protodino's checkpoints also hold its optimizer state, the twin's do not.
        keep = ("student.", "teacher.", "dino_loss.")
        ta, tb = ({k: v for k, v in read_safetensors(p)[0].items() if k.startswith(keep)} for p in a.ckpts)
        only = sorted(set(ta) ^ set(tb))
        if only:
            rep["only_in_one"] = only
        groups, per = {}, []
        for name in sorted(set(ta) & set(tb)):
            x, y = ta[name].astype(np.float64), tb[name].astype(np.float64).reshape(ta[name].shape)
            diff = float(np.abs(x - y).max()) if x.size else 0.0
            scale = float(np.abs(x).max()) if x.size else 0.0
            g = group(name)
            groups[g] = max(groups.get(g, 0.0), diff)
            per.append((diff, name, scale))
        rep["max_abs_diff"] = groups
        rep["worst_tensors"] = [{"name": n, "max_abs_diff": d, "max_abs_value": s} for d, n, s in sorted(per, reverse=True)[:a.top]]
    print(json.dumps(rep))


if __name__ == "__main__":
    main()
