// ResNet against PyTorch: torchvision's state-dict names and shapes, and forward outputs, running
// statistics and gradients of small networks computed by torch in float64 from the same weights
// (scripts/make-resnet-fixtures.py writes test/fixtures/resnet/).
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { conformance } from '../helpers/backends.js';
import { assertClose } from '../helpers/check.js';
import type { Backend } from '../../src/backend/backend.js';
import * as pd from '../../src/tensor/index.js';
import { Generator } from '../../src/tensor/ops/random.js';
import { AdamW } from '../../src/tensor/ops/optim.js';
import { defaultConvAlgorithm, ResNet, RESNET_PRESETS, type ResNetConfig } from '../../src/nn/resnet.js';
import { BatchNorm } from '../../src/nn/batchnorm.js';
import type { HostTensor } from '../../src/nn/module.js';
import { PthTensor, readPth } from '../../src/io/pth/index.js';
import { int64ToInt32 } from '../../src/io/safetensors.js';
import { packagePath } from '../../src/util/paths.js';

const fixture = (name: string) => packagePath('test', 'fixtures', 'resnet', name);

interface Case {
  config: {
    block: 'basic' | 'bottleneck';
    layers: number[];
    widths: number[];
    stem: 'imagenet' | 'cifar';
    in_chans: number;
  };
  state_dict: Record<string, PthTensor>;
  input: PthTensor;
  eval_out: PthTensor;
  train_out: PthTensor;
  train_state: Record<string, PthTensor>;
  weight?: PthTensor;
  grads?: Record<string, PthTensor>;
  input_grad?: PthTensor;
}

const cases = new Map<string, Case>();
function load(name: string): Case {
  let c = cases.get(name);
  if (!c) cases.set(name, (c = readPth(fixture(`${name}.pth`)) as Case));
  return c;
}

function numbers(t: PthTensor): Float32Array | Int32Array | Float64Array {
  if (t.data instanceof BigInt64Array) return int64ToInt32(t.data);
  if (t.data instanceof Float32Array || t.data instanceof Float64Array || t.data instanceof Int32Array) return t.data;
  throw new Error(`fixture tensor of dtype ${t.dtype}`);
}

function hostState(sd: Record<string, PthTensor>): Map<string, HostTensor> {
  return new Map(
    Object.entries(sd).map(([k, t]) => {
      const d = numbers(t);
      return [k, { shape: t.shape, data: d instanceof Float64Array ? Float32Array.from(d) : d }];
    }),
  );
}

function build(be: Backend, c: Case): ResNet {
  const { block, layers, widths, stem, in_chans } = c.config;
  const net = new ResNet(be, { block, layers, widths, stem, inChans: in_chans }, new Generator(5));
  net.loadStateDict(hostState(c.state_dict));
  return net;
}

async function stateOf(net: ResNet, filter: (k: string) => boolean): Promise<Map<string, Float32Array | Int32Array>> {
  const out = new Map<string, Float32Array | Int32Array>();
  for (const [k, t] of net.stateDict()) if (filter(k)) out.set(k, await t.data());
  return out;
}

const TOL = { rtol: 1e-4, atol: 1e-4 };

conformance('resnet', (test, be) => {
  test('state-dict names and shapes equal torchvision resnet18/resnet50 without fc', () => {
    const expected = JSON.parse(readFileSync(fixture('names.json'), 'utf8')) as Record<string, [string, number[]][]>;
    for (const arch of ['resnet18', 'resnet50']) {
      const net = new ResNet(be(), { arch }, new Generator(0));
      const ours = [...net.stateDict()].map(([k, t]) => [k, [...t.shape]] as [string, number[]]);
      const sort = (l: [string, number[]][]) => [...l].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      assert.equal(sort(ours), sort(expected[arch]), arch);
      assert.is(net.embedDim, arch === 'resnet50' ? 2048 : 512);
      net.dispose();
    }
  });

  test('resnet50: torchvision init, parameter count, eval forward to [B, 2048]', async () => {
    const net = new ResNet(be(), { arch: 'resnet50' }, new Generator(1));
    assert.is(net.parameterCount(), 23_508_032); // torchvision's 25,557,032 less fc's 2,049,000
    const sd = net.stateDict();
    // kaiming_normal_(fan_out, relu): std √(2 / (512·3·3)) over 2.4 M values
    const w = await sd.get('layer4.0.conv2.weight')!.data();
    let s = 0,
      s2 = 0;
    for (const v of w) {
      s += v;
      s2 += v * v;
    }
    const m = s / w.length,
      std = Math.sqrt(s2 / w.length - m * m);
    assert.ok(Math.abs(m) < 1e-4 && Math.abs(std / Math.sqrt(2 / (512 * 9)) - 1) < 0.01, `mean ${m}, std ${std}`);
    const ds = await sd.get('layer1.0.downsample.0.weight')!.data(); // 1x1, fan_out 256
    let d2 = 0;
    for (const v of ds) d2 += v * v;
    assert.ok(Math.abs(Math.sqrt(d2 / ds.length) / Math.sqrt(2 / 256) - 1) < 0.05);
    for (const [k, v] of [
      ['weight', 1],
      ['bias', 0],
      ['running_mean', 0],
      ['running_var', 1],
      ['num_batches_tracked', 0],
    ] as const) {
      assert.ok(
        (await sd.get(`layer3.5.bn3.${k}`)!.data()).every((x) => x === v),
        k,
      );
    }
    net.eval();
    const x = pd.tidy(() => net.forward(pd.randn([1, 3, 32, 32], be(), { generator: new Generator(2) })));
    assert.equal(x.shape, [1, 2048]);
    const out = await x.data();
    assert.ok(out.every(Number.isFinite) && out.some((v) => v > 0) && out.every((v) => v >= 0));
    x.dispose();
    net.dispose();
  });

  for (const name of ['basic-cifar', 'bottleneck-imagenet']) {
    test(`${name}: eval and training forward equal torch (float64) within 1e-4`, async () => {
      const c = load(name);
      const net = build(be(), c);
      const x = pd.tensor(numbers(c.input), c.input.shape, be());
      const before = await stateOf(net, (k) => /running|num_batches/.test(k));

      net.eval();
      assert.not.ok(net.training);
      const ev = pd.tidy(() => net.forward(x));
      assert.equal(ev.shape, c.eval_out.shape);
      assertClose(await ev.data(), numbers(c.eval_out), TOL, `${name} eval output`);
      for (const [k, v] of await stateOf(net, (k) => before.has(k)))
        assert.equal(v, before.get(k), `${k} unchanged in eval mode`);

      net.train();
      const tr = pd.tidy(() => net.forward(x));
      assertClose(await tr.data(), numbers(c.train_out), TOL, `${name} training output`);
      for (const [k, t] of Object.entries(c.train_state)) {
        assertClose(
          await net.stateDict().get(k)!.data(),
          numbers(t),
          { rtol: 1e-4, atol: 1e-5 },
          `${k} after one training step`,
        );
      }
      for (const t of [x, ev, tr]) t.dispose();
      net.dispose();
    });
  }

  test('tiny-grad: gradients of every parameter and the input equal torch (training mode)', async () => {
    const c = load('tiny-grad');
    const net = build(be(), c);
    const x = pd.param(pd.tensor(numbers(c.input), c.input.shape, be()));
    const w = pd.tensor(numbers(c.weight!), c.weight!.shape, be());
    const out = pd.tidy(() => {
      const o = net.forward(x);
      pd.backward(pd.sum(pd.mul(o, w)));
      return o;
    });
    assertClose(await out.data(), numbers(c.train_out), TOL, 'tiny forward');
    const params = new Map(net.namedParameters());
    assert.equal([...params.keys()].sort(), Object.keys(c.grads!).sort());
    const check = async (what: string, g: pd.Tensor | null, ref: PthTensor) => {
      assert.ok(g, `${what} received no gradient`);
      const r = numbers(ref);
      const scale = Math.max(1e-3, ...Array.from(r, Math.abs));
      assertClose(await g!.data(), r, { rtol: 1e-3, atol: 1e-4 * scale }, `gradient of ${what}`);
    };
    for (const [k, ref] of Object.entries(c.grads!)) await check(k, params.get(k)!.grad, ref);
    await check('input', x.grad, c.input_grad!);
    for (const t of [x, w, out]) t.dispose();
    net.dispose();
  });

  test('resnet_cpu on 28x28 greyscale: 128 features, train/eval switch all BatchNorms', async () => {
    const net = new ResNet(be(), { arch: 'resnet_cpu', inChans: 1 }, new Generator(3));
    assert.is(net.embedDim, 128);
    assert.equal(net.config, { ...RESNET_PRESETS.resnet_cpu, inChans: 1 } as Required<ResNetConfig>);
    const x = pd.randn([2, 1, 28, 28], be(), { generator: new Generator(4) });
    const map = pd.tidy(() => net.forwardMap(x));
    assert.equal(map.shape, [2, 128, 4, 4]);
    const y = pd.tidy(() => net.forward(x));
    assert.equal(y.shape, [2, 128]);
    assert.is(await net.stateDict().get('layer4.0.bn2.num_batches_tracked')!.item(), 2);
    net.eval();
    assert.ok(net.stages.flat().every((b) => !b.training) && !net.bn1.training);
    pd.tidy(() => net.forward(x));
    assert.is(await net.stateDict().get('layer4.0.bn2.num_batches_tracked')!.item(), 2);
    for (const t of [x, map, y]) t.dispose();
    net.dispose();
  });

  test('resnet_cpu forward and backward: the direct conv kernels, the im2col route and auto (Winograd) agree', async () => {
    const run = async (algorithm: 'direct' | 'im2col' | 'auto') => {
      const net = new ResNet(be(), { arch: 'resnet_cpu', inChans: 1 }, new Generator(7));
      net.setConvAlgorithm(algorithm);
      const x = pd.param(pd.randn([3, 1, 28, 28], be(), { generator: new Generator(8) }));
      const w = pd.randn([3, 128], be(), { generator: new Generator(9) });
      const out = pd.tidy(() => {
        const o = net.forward(x);
        pd.backward(pd.sum(pd.mul(o, w)));
        return o;
      });
      const res = {
        out: await out.data(),
        dx: await x.grad!.data(),
        grads: new Map<string, Float32Array | Int32Array>(),
      };
      for (const [k, p] of net.namedParameters()) res.grads.set(k, await p.grad!.data());
      for (const t of [x, w, out]) t.dispose();
      net.dispose();
      return res;
    };
    const a = await run('direct');
    const close = (g: ArrayLike<number>, r: ArrayLike<number>, what: string) => {
      let scale = 1e-6;
      for (let i = 0; i < r.length; i++) scale = Math.max(scale, Math.abs(r[i]));
      assertClose(g, r, { rtol: 1e-3, atol: 1e-4 * scale }, what);
    };
    // auto runs layer1-4's 3x3 stride-1 convolutions (16-128 channels) as Winograd F(4x4, 3x3)
    for (const other of ['im2col', 'auto'] as const) {
      const b = await run(other);
      assertClose(a.out, b.out, { rtol: 1e-4, atol: 1e-5 }, `features (${other})`);
      close(a.dx, b.dx, `input gradient (${other})`);
      for (const [k, g] of a.grads) close(g, b.grads.get(k)!, `gradient of ${k} (${other})`);
    }
  });

  test('PROTODINO_CONV_ALGORITHM sets the conv default and is checked', () => {
    const saved = process.env.PROTODINO_CONV_ALGORITHM;
    try {
      process.env.PROTODINO_CONV_ALGORITHM = 'direct';
      assert.is(defaultConvAlgorithm(), 'direct');
      delete process.env.PROTODINO_CONV_ALGORITHM;
      assert.is(defaultConvAlgorithm(), 'auto');
      process.env.PROTODINO_CONV_ALGORITHM = 'fast';
      assert.throws(
        () => defaultConvAlgorithm(),
        /PROTODINO_CONV_ALGORITHM must be one of auto, direct, winograd, im2col, got 'fast'/,
      );
    } finally {
      if (saved === undefined) delete process.env.PROTODINO_CONV_ALGORITHM;
      else process.env.PROTODINO_CONV_ALGORITHM = saved;
    }
  });

  test('shape and config errors', () => {
    const g = new Generator(0);
    assert.throws(() => new ResNet(be(), { arch: 'resnet7' }, g), /unknown arch/);
    assert.throws(() => new ResNet(be(), { block: 'basic', layers: [1, 1, 1, 1, 1] }, g), /layers/);
    assert.throws(() => new ResNet(be(), { block: 'basic', layers: [1, 0] }, g), /layers/);
    assert.throws(() => new ResNet(be(), { block: 'basic', layers: [1, 1], widths: [4] }, g), /widths/);
    const net = new ResNet(be(), { block: 'basic', layers: [1], widths: [2], stem: 'cifar', inChans: 1 }, g);
    const x = pd.zeros([1, 3, 4, 4], be());
    assert.throws(() => net.forward(x), /expects \[B, 1, H, W\]/);
    x.dispose();
    net.dispose();
  });

  test('BatchNorm module on [N, C] matches the batchNorm op and counts batches', async () => {
    const bn = new BatchNorm(be(), 3);
    const x = pd.tensor(
      Float32Array.from({ length: 12 }, (_, i) => Math.sin(i * 1.7)),
      [4, 3],
      be(),
    );
    const y = pd.tidy(() => bn.forward(x));
    const ref = pd.batchNorm(x, { training: true });
    assertClose(await y.data(), await ref.data(), { rtol: 1e-5, atol: 1e-6 });
    assert.is(await bn.num_batches_tracked.item(), 1);
    for (const t of [x, y, ref]) t.dispose();
    bn.dispose();
  });

  test('training smoke: AdamW steps lower a regression loss, no leaked tensors', async () => {
    const g = new Generator(11);
    const net = new ResNet(be(), { block: 'basic', layers: [1, 1], widths: [4, 8], stem: 'cifar', inChans: 1 }, g);
    const x = pd.randn([8, 1, 8, 8], be(), { generator: g });
    const target = pd.randn([8, 8], be(), { generator: g, std: 0.5 });
    const opt = new AdamW(net.parameters(), { lr: 0.02, weightDecay: 0 });
    const losses: number[] = [];
    let live = 0;
    for (let step = 0; step < 12; step++) {
      const loss = pd.tidy(() => {
        const l = pd.mean(pd.square(pd.sub(net.forward(x), target)));
        pd.backward(l);
        return l;
      });
      opt.step();
      opt.zeroGrad();
      losses.push(await loss.item());
      loss.dispose();
      if (step === 1) live = pd.liveTensors();
      if (step > 1) assert.is(pd.liveTensors(), live, `live tensors at step ${step}`);
    }
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    assert.ok(losses[losses.length - 1] < 0.5 * losses[0], `losses ${losses.map((l) => l.toFixed(4)).join(' ')}`);
    opt.dispose();
    for (const t of [x, target]) t.dispose();
    net.dispose();
  });
});
