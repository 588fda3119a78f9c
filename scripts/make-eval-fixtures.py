#!/usr/bin/env python3
"""Fixture for test/eval: frozen features, labels and the results of independent implementations.

  /usr/bin/python3 scripts/make-eval-fixtures.py    writes test/fixtures/eval/eval.safetensors

Needs torch and numpy (Debian: apt-get install python3-torch python3-numpy). Everything here is
written independently of the TypeScript code:
- k-NN: facebookresearch/dino eval_knn.py's knn_classifier, followed line by line in torch
  (float32), except that classes are ranked with a stable sort (ties: lower class index first,
  the documented rule on our side; DINO's torch sort leaves ties unspecified).
- linear probe: torch.nn.Linear trained full-batch (one batch per epoch, so no shuffle order
  enters) with torch.optim.SGD (momentum, weight decay) or torch.optim.AdamW under
  CosineAnnealingLR, from a stored initial weight.
- few-shot: nearest-centroid episodes in numpy float64 on L2-normalised features.
Data are drawn until every decision the tests compare is clear of float32 rounding (margins below).
"""
import hashlib
import json
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'eval')
DTYPES = {np.dtype('float32'): ('F32', 9), np.dtype('float64'): ('F64', 10), np.dtype('int32'): ('I32', 7)}


def write(path, tensors):
    """tensors: {name: numpy array}; laid out by descending dtype alignment then name."""
    order = sorted(tensors, key=lambda n: (-DTYPES[tensors[n].dtype][1], n))
    chunks = [np.ascontiguousarray(tensors[n]).astype(tensors[n].dtype.newbyteorder('<')).tobytes() for n in order]
    meta = {'payload_sha256': hashlib.sha256(b''.join(chunks)).hexdigest(),
            'source': 'scripts/make-eval-fixtures.py'}
    parts = ['"__metadata__":' + json.dumps(meta, separators=(',', ':'), sort_keys=True)]
    offset = 0
    for name, chunk in zip(order, chunks):
        shape = ','.join(str(d) for d in tensors[name].shape)
        parts.append(f'{json.dumps(name)}:{{"dtype":"{DTYPES[tensors[name].dtype][0]}","shape":[{shape}],'
                     f'"data_offsets":[{offset},{offset + len(chunk)}]}}')
        offset += len(chunk)
    header = ('{' + ','.join(parts) + '}').encode('utf-8')
    header += b' ' * (-len(header) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(header)) + header + b''.join(chunks))
    print(f'wrote {path}: {8 + len(header) + offset} bytes')


def clusters(rng, n, means, noise):
    c, d = means.shape
    y = np.arange(n) % c
    rng.shuffle(y)
    x = means[y] + rng.standard_normal((n, d)) * noise
    return x.astype(np.float32), y.astype(np.int32)


# ---- k-NN ------------------------------------------------------------------------------------

KS = [1, 5, 20, 50]
T = 0.07


def dino_knn(train_features, train_labels, test_features, test_labels, k, num_classes):
    """eval_knn.py's knn_classifier (features already normalised), with a stable class ranking."""
    train_features = train_features.t()
    num_test_images = test_labels.shape[0]
    imgs_per_chunk = 7
    retrieval_one_hot = torch.zeros(k, num_classes)
    top1, top5, preds = 0, 0, []
    for idx in range(0, num_test_images, imgs_per_chunk):
        features = test_features[idx: min((idx + imgs_per_chunk), num_test_images), :]
        targets = test_labels[idx: min((idx + imgs_per_chunk), num_test_images)]
        batch_size = targets.shape[0]
        similarity = torch.mm(features, train_features)
        distances, indices = similarity.topk(k + 1, largest=True, sorted=True)
        # the (k+1)-th similarity only serves the margin check: the k-th must clearly beat it
        if k < similarity.shape[1] and (distances[:, k - 1] - distances[:, k]).min() < 1e-5:
            return None
        distances, indices = distances[:, :k], indices[:, :k]
        candidates = train_labels.view(1, -1).expand(batch_size, -1)
        retrieved_neighbors = torch.gather(candidates, 1, indices)
        retrieval_one_hot.resize_(batch_size * k, num_classes).zero_()
        retrieval_one_hot.scatter_(1, retrieved_neighbors.view(-1, 1).long(), 1)
        distances_transform = distances.clone().div_(T).exp_()
        probs = torch.sum(torch.mul(retrieval_one_hot.view(batch_size, -1, num_classes),
                                    distances_transform.view(batch_size, -1, 1)), 1)
        p = probs.numpy().astype(np.float64)
        predictions = np.argsort(-p, axis=1, kind='stable')
        for r in range(batch_size):
            ranked = p[r][predictions[r]]
            # neighbouring ranks with votes must differ clearly (exact zeros tie by class index)
            for a in range(min(5, num_classes - 1)):
                if ranked[a] > 0 and ranked[a + 1] > 0 and ranked[a] - ranked[a + 1] < 1e-6 * ranked[a]:
                    return None
        correct = predictions == targets.numpy().reshape(-1, 1)
        top1 += int(correct[:, :1].sum())
        top5 += int(correct[:, :min(5, k)].sum())
        preds.append(predictions[:, 0])
    return top1, top5, np.concatenate(preds).astype(np.int32)


def knn_fixture(seed):
    rng = np.random.default_rng(seed)
    c = 8
    means = rng.standard_normal((c, 16))
    xtr, ytr = clusters(rng, 300, means, 1.3)
    xte, yte = clusters(rng, 120, means, 1.3)
    ftr = torch.nn.functional.normalize(torch.from_numpy(xtr), dim=1, p=2)
    fte = torch.nn.functional.normalize(torch.from_numpy(xte), dim=1, p=2)
    out = {'knn.train_x': xtr, 'knn.train_y': ytr, 'knn.test_x': xte, 'knn.test_y': yte,
           'knn.ks': np.array(KS, dtype=np.int32)}
    counts, preds = [], []
    for k in KS:
        r = dino_knn(ftr, torch.from_numpy(ytr).long(), fte, torch.from_numpy(yte).long(), k, c)
        if r is None:
            return None
        counts.append([r[0], r[1]])
        preds.append(r[2])
    out['knn.correct'] = np.array(counts, dtype=np.int32)  # [len(KS), 2]: top-1, top-5 counts
    out['knn.predictions'] = np.stack(preds)
    print('knn top-1/top-5 counts of 120:', counts)
    return out


# ---- linear probe ----------------------------------------------------------------------------

EPOCHS = 40
PROBES = {  # name: (optimizer, lr, momentum, weight decay)
    'sgd': ('sgd', 0.05, 0.9, 1e-3),
    'adamw': ('adamw', 0.02, 0.0, 0.05),
}


def train_probe(xtr, ytr, xte, w0, b0, kind, lr, momentum, wd):
    lin = torch.nn.Linear(xtr.shape[1], w0.shape[0])
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w0))
        lin.bias.copy_(torch.from_numpy(b0))
    if kind == 'sgd':
        opt = torch.optim.SGD(lin.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    else:
        opt = torch.optim.AdamW(lin.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS, eta_min=0)
    x, y = torch.from_numpy(xtr), torch.from_numpy(ytr).long()
    losses = []
    for _ in range(EPOCHS):
        loss = torch.nn.functional.cross_entropy(lin(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    with torch.no_grad():
        logits = lin(torch.from_numpy(xte)).numpy().astype(np.float64)
    top2 = np.sort(logits, axis=1)[:, -2:]
    if (top2[:, 1] - top2[:, 0]).min() < 2e-3:
        return None
    return (lin.weight.detach().numpy().copy(), lin.bias.detach().numpy().copy(),
            np.array(losses, dtype=np.float64), np.argmax(logits, axis=1).astype(np.int32))


def probe_fixture(seed):
    rng = np.random.default_rng(seed)
    c, d = 4, 12
    means = rng.standard_normal((c, d))
    xtr, ytr = clusters(rng, 200, means, 1.8)
    xte, yte = clusters(rng, 80, means, 1.8)
    torch.manual_seed(seed)
    w0 = (torch.randn(c, d) * 0.01).numpy()
    b0 = np.zeros(c, dtype=np.float32)
    out = {'lin.train_x': xtr, 'lin.train_y': ytr, 'lin.test_x': xte, 'lin.test_y': yte, 'lin.w0': w0, 'lin.b0': b0}
    for name, (kind, lr, momentum, wd) in PROBES.items():
        r = train_probe(xtr, ytr, xte, w0, b0, kind, lr, momentum, wd)
        if r is None:
            return None
        w, b, losses, preds = r
        out[f'lin.{name}.weight'], out[f'lin.{name}.bias'] = w, b
        out[f'lin.{name}.loss'], out[f'lin.{name}.predictions'] = losses, preds
        out[f'lin.{name}.hyper'] = np.array([lr, momentum, wd, EPOCHS], dtype=np.float64)
        print(f'probe {name}: loss {losses[0]:.4f} -> {losses[-1]:.4f}, test top-1 {np.mean(preds == yte):.3f}')
    return out


# ---- few-shot --------------------------------------------------------------------------------

def episode_scores(xn, support, query, n_way, k_shot, metric):
    cen = xn[support].reshape(n_way, k_shot, -1).mean(axis=1)
    q = xn[query]
    if metric == 'cosine':
        return q @ (cen / np.linalg.norm(cen, axis=1, keepdims=True)).T
    return -((q[:, None, :] - cen[None, :, :]) ** 2).sum(axis=2)  # higher is closer


def fewshot_fixture(seed, rng_x):
    n_cls, per = 12, 20
    x, y = clusters(rng_x, n_cls * per, rng_x.standard_normal((n_cls, 20)) * 0.8, 1.0)
    xn = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    by_class = [np.flatnonzero(y == c) for c in range(n_cls)]
    out = {'fs.x': x, 'fs.y': y}
    rng = np.random.default_rng(seed)
    for name, n_way, k_shot, n_query in [('a', 5, 1, 15), ('b', 5, 5, 10)]:
        classes, supports, queries, acc = [], [], [], {'euclidean': [], 'cosine': []}
        while len(classes) < 100:
            cls = rng.choice(n_cls, n_way, replace=False)
            rows = [rng.choice(by_class[c], k_shot + n_query, replace=False) for c in cls]
            support = np.concatenate([r[:k_shot] for r in rows])
            query = np.concatenate([r[k_shot:] for r in rows])
            truth = np.repeat(np.arange(n_way), n_query)
            ok, a = True, {}
            for metric in acc:
                s = episode_scores(xn, support, query, n_way, k_shot, metric)
                top2 = np.sort(s, axis=1)[:, -2:]
                if (top2[:, 1] - top2[:, 0]).min() < 1e-4:
                    ok = False  # a near tie: draw this episode again
                a[metric] = np.mean(np.argmax(s, axis=1) == truth)
            if not ok:
                continue
            classes.append(cls)
            supports.append(support)
            queries.append(query)
            for metric in acc:
                acc[metric].append(a[metric])
        out[f'fs.{name}.classes'] = np.array(classes, dtype=np.int32)
        out[f'fs.{name}.support'] = np.array(supports, dtype=np.int32)
        out[f'fs.{name}.query'] = np.array(queries, dtype=np.int32)
        for metric, v in acc.items():
            v = np.array(v, dtype=np.float64)
            out[f'fs.{name}.{metric}.acc'] = v
            out[f'fs.{name}.{metric}.summary'] = np.array([v.mean(), 1.96 * v.std() / np.sqrt(len(v))])
            print(f'few-shot {name} {n_way}-way {k_shot}-shot {metric}: {v.mean():.4f} ± {1.96 * v.std() / np.sqrt(len(v)):.4f}')
    return out


def first(make, seed):
    for s in range(seed, seed + 50):
        r = make(s)
        if r is not None:
            return r
    raise RuntimeError(f'{make.__name__}: no seed with clear margins')


def main():
    torch.set_num_threads(1)
    tensors = {}
    tensors.update(first(knn_fixture, 100))
    tensors.update(first(probe_fixture, 200))
    tensors.update(fewshot_fixture(300, np.random.default_rng(301)))
    write(os.path.join(OUT, 'eval.safetensors'), tensors)


if __name__ == '__main__':
    main()
