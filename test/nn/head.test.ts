// The DINO head (facebookresearch/dino's DINOHead: MLP with GELU, L2 normalisation, weight-normalised
// prototypes) forward and backward, with and without norm_last_layer, and KoLeo-proto on its
// prototypes, against an independent float64 PyTorch implementation
// (test/fixtures/ssl/head.safetensors, scripts/make-ssl-fixtures.py).
import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import type { Backend } from '../../src/backend/backend.js';
import {
  add,
  backward,
  crossEntropy,
  Generator,
  mean,
  mul,
  noGrad,
  tidy,
  zeroGrad,
  type Tensor,
} from '../../src/tensor/index.js';
import { DINOHead, type DINOHeadConfig } from '../../src/nn/head.js';
import type { HostTensor } from '../../src/nn/module.js';
import { koleoProtoLoss } from '../../src/ssl/regularizers.js';
import { agree, agreeTensor, disposeAll, Fixture, leakFree } from '../ssl/fixtures.js';

const f = new Fixture('head.safetensors');
const K = f.num('out_dim');

/**
 * A head with the fixture's parameters under PyTorch's state-dict names (`prefix` 'head.' or 'one.'),
 * loaded strictly, so our names must be exactly torch's; weight_g is filled with 1 as DINO does.
 */
function loadHead(be: Backend, cfg: DINOHeadConfig, prefix: string): DINOHead {
  const head = new DINOHead(be, cfg, new Generator(7));
  const names = f.meta(prefix === 'head.' ? 'state_dict' : 'one.state_dict').split(',');
  const state = new Map<string, HostTensor>();
  for (const name of names) {
    if (name === 'last_layer.weight_g') {
      state.set(name, { shape: [cfg.outDim, 1], data: new Float32Array(cfg.outDim).fill(1) });
    } else {
      state.set(name, { shape: f.shape(prefix + name), data: f.values(prefix + name) });
    }
  }
  head.loadStateDict(state);
  return head;
}

/** The DINO cross-entropy shape the fixture differentiates: mean_i −Σ_k t_ik log_softmax(out_i / T)_k. */
function headLoss(out: Tensor, targets: Tensor): Tensor {
  return mean(crossEntropy(targets, mul(out, 1 / f.num('loss_temp')), -1));
}

const CFG: DINOHeadConfig = {
  inDim: f.num('in_dim'),
  outDim: K,
  hiddenDim: f.num('hidden_dim'),
  bottleneckDim: f.num('bottleneck_dim'),
  nlayers: 3,
  normLastLayer: true,
};

conformance('ssl: DINO head and KoLeo-proto vs PyTorch', (test, be) => {
  test(
    "state-dict names are PyTorch's (nlayers 3, and 1 where the mlp is a bare Linear)",
    leakFree(() => {
      const head = new DINOHead(be(), CFG, new Generator(1));
      assert.equal([...head.stateDict().keys()], f.meta('state_dict').split(','));
      head.dispose();
      const one = new DINOHead(be(), { inDim: 6, outDim: 5, bottleneckDim: 4, nlayers: 1 }, new Generator(1));
      assert.equal([...one.stateDict().keys()], f.meta('one.state_dict').split(','));
      one.dispose();
    }),
  );

  test(
    'forward and backward, norm_last_layer: in 48, hidden 64, bottleneck 32, K = 256, B = 8',
    leakFree(async () => {
      const head = loadHead(be(), CFG, 'head.');
      assert.not.ok(head.last_layer.weight_g.requiresGrad, 'norm_last_layer freezes weight_g');
      assert.not.ok(head.trainableParameters().includes(head.last_layer.weight_g));
      const x = f.tensor('x', be());
      const targets = f.tensor('targets', be());
      const { out, loss } = tidy(() => {
        const o = head.forward(x);
        const l = headLoss(o, targets);
        backward(l);
        return { out: o, loss: l };
      });
      await agreeTensor(out, f.values('out'), 'head output');
      agree([await loss.item()], [f.scalar('loss')], 'loss');
      assert.is(head.last_layer.weight_g.grad, null, 'the frozen weight_g gets no gradient');
      for (const [name, p] of head.namedParameters()) {
        if (!p.requiresGrad) continue;
        await agreeTensor(p.grad, f.values(`grad.head.${name}`), `gradient of ${name}`);
      }
      disposeAll(x, targets, out, loss);
      head.dispose();
    }),
  );

  test(
    'KoLeo-proto value on the 256 prototypes',
    leakFree(async () => {
      const head = loadHead(be(), CFG, 'head.');
      const l = tidy(() => noGrad(() => koleoProtoLoss(head.last_layer.weight_v)));
      agree([await l.item()], [f.scalar('koleo_proto.loss')], 'KoLeo-proto');
      disposeAll(l);
      head.dispose();
    }),
  );

  test(
    'without norm_last_layer (trained weight_g): loss + λ·KoLeo-proto, gradients of weight_v and weight_g',
    leakFree(async () => {
      const head = loadHead(be(), { ...CFG, normLastLayer: false }, 'head.');
      const g = head.last_layer.weight_g;
      assert.ok(g.requiresGrad, 'weight_g is trained');
      const gValues = f.values('free.weight_g');
      be().upload(g.storage, gValues);
      const x = f.tensor('x', be());
      const targets = f.tensor('targets', be());
      const { out, loss, total } = tidy(() => {
        const o = head.forward(x);
        const l = headLoss(o, targets);
        const t = add(l, mul(koleoProtoLoss(head.last_layer.weight_v), f.num('koleo_proto_weight')));
        backward(t);
        return { out: o, loss: l, total: t };
      });
      // With unit-norm bottleneck features and prototypes, the output is weight_g times the one above.
      const base = f.values('out');
      const expectedOut = Float64Array.from(base, (v, i) => v * gValues[i % K]);
      await agreeTensor(out, expectedOut, 'head output with weight_g');
      agree([await loss.item()], [f.scalar('free.loss')], 'loss');
      agree([await total.item()], [f.scalar('free.total')], 'loss + λ·KoLeo-proto');
      await agreeTensor(
        head.last_layer.weight_v.grad,
        f.values('free.grad.head.last_layer.weight_v'),
        'gradient of weight_v',
      );
      await agreeTensor(g.grad, f.values('free.grad.head.last_layer.weight_g'), 'gradient of weight_g');
      zeroGrad(head.parameters());
      disposeAll(x, targets, out, loss, total);
      head.dispose();
    }),
  );

  test(
    "nlayers = 1 forward (mlp.weight / mlp.bias loaded by PyTorch's names)",
    leakFree(async () => {
      const head = loadHead(be(), { inDim: 6, outDim: 5, bottleneckDim: 4, nlayers: 1 }, 'one.');
      const x = f.tensor('one.x', be());
      const out = tidy(() => noGrad(() => head.forward(x)));
      await agreeTensor(out, f.values('one.out'), 'nlayers = 1 output');
      disposeAll(x, out);
      head.dispose();
    }),
  );
});
