// protodino export --to onnx: onnxruntime runs the exported model on [0, 1] images and gets what the
// engine's embed (and, with the head, its logits) computes, for every backbone protodino trains.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { WasmBackend } from '../../src/backend/wasm/index.js';
import type { Backend } from '../../src/backend/backend.js';
import type { Dataset } from '../../src/data/index.js';
import { serializeSafetensors, type SafeTensorInput } from '../../src/io/safetensors.js';
import { exportCheckpointToOnnx, networkToOnnx, FEATURES, INPUT, LOGITS } from '../../src/io/onnx/export.js';
import { decodeModel } from '../../src/io/onnx/proto.js';
import { BatchNorm } from '../../src/nn/batchnorm.js';
import { DINOHead } from '../../src/nn/head.js';
import { LayerNorm, Linear } from '../../src/nn/layers.js';
import { PCAProjection } from '../../src/nn/pca.js';
import { ResNet } from '../../src/nn/resnet.js';
import { tensor } from '../../src/tensor/create.js';
import { Generator } from '../../src/tensor/ops/random.js';
import { noGrad, tidy, type Tensor } from '../../src/tensor/tensor.js';
import { DEFAULTS, type TrainConfig } from '../../src/train/config.js';
import { embedDataset } from '../../src/train/evaluate.js';
import { buildNetwork, DinoNetwork } from '../../src/train/network.js';
import { networkFromCheckpoint, readRunCheckpoint } from '../../src/train/run-data.js';
import { mulberry32 } from '../../src/util/mulberry32.js';

const dir = mkdtempSync(join(tmpdir(), 'protodino-onnx-'));
let be: Backend;
const backend = async () => (be ??= await WasmBackend.create({ threads: 2 }));
const STATS = { mean: [0.31], std: [0.37] };

/**
 * Moves every normalisation statistic and affine parameter away from its initial value (BatchNorm's
 * running mean 0 / var 1 and LayerNorm's 1 / 0 would hide a wrong eps, an ignored statistic or a
 * swapped scale and bias), and fills PCA's zero buffers.
 */
function perturb(net: DinoNetwork, seed: number): void {
  const rand = mulberry32(seed);
  const set = (t: Tensor, lo: number, hi: number) =>
    be.upload(
      t.storage,
      Float32Array.from({ length: t.size }, () => lo + (hi - lo) * rand()),
    );
  for (const m of net.modules()) {
    if (m instanceof BatchNorm) {
      set(m.running_mean, -0.5, 0.5);
      set(m.running_var, 0.3, 2.5);
    }
    if (m instanceof BatchNorm || m instanceof LayerNorm) {
      set(m.weight, 0.5, 1.5);
      set(m.bias, -0.2, 0.2);
    }
    if (m instanceof Linear && m.bias) set(m.bias, -0.2, 0.2);
    if (m instanceof PCAProjection) {
      set(m.mean, -0.1, 0.1);
      set(m.components, -0.1, 0.1);
    }
  }
}

/** A checkpoint of `cfg`'s networks (teacher = student, perturbed), as saveCheckpoint lays it out. */
async function writeCheckpoint(name: string, cfg: Partial<TrainConfig>, channels = 1): Promise<string> {
  const full = { ...DEFAULTS, ...cfg } as TrainConfig;
  const net = buildNetwork(full, await backend(), channels, 7);
  perturb(net, 11);
  const tensors: Record<string, SafeTensorInput> = {};
  for (const [n, t] of net.stateDict()) {
    const data = (await t.data()) as Float32Array;
    tensors[`teacher.${n}`] = tensors[`student.${n}`] = { dtype: 'F32', shape: [...t.shape], data };
  }
  net.dispose();
  const meta = {
    format: 'protodino-dino-v1',
    epoch: 1,
    step: 5,
    config: full,
    loader: {},
    normalization: { mean: STATS.mean.slice(0, channels), std: STATS.std.slice(0, channels) },
    optimizerSteps: {},
    optimizerStep: 5,
    optimizerGroups: [],
  };
  const path = join(dir, `${name}.safetensors`);
  writeFileSync(path, serializeSafetensors(tensors, { protodino: JSON.stringify(meta) }));
  return path;
}

/** `n` random images (bytes, as datasets hold them; /255 gives the [0, 1] images ONNX takes). */
function randomImages(n: number, C: number, S: number, seed: number): Dataset {
  const rand = mulberry32(seed);
  const images = Uint8Array.from({ length: n * C * S * S }, () => Math.floor(rand() * 256));
  return { images, labels: new Int32Array(n), n, channels: C, height: S, width: S, classes: ['x'] };
}

async function runOnnx(path: string, ds: Dataset): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(path);
  const x = Float32Array.from(ds.images, (b) => b / 255);
  return session.run({ [INPUT]: new ort.Tensor('float32', x, [ds.n, ds.channels, ds.height, ds.width]) });
}

/** max |a − b| / max |b|: the comparison the export promises to keep under 1e-4. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.is(a.length, b.length, 'sizes differ');
  let d = 0,
    m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  assert.ok(m > 0, 'reference is all zeros');
  return d / m;
}

/** The engine's embed features of `ds`, and its head's logits of them. */
async function engine(ckpt: string, ds: Dataset): Promise<{ features: Float32Array; logits: Float32Array }> {
  const run = readRunCheckpoint('test', ckpt);
  const net = networkFromCheckpoint(run, await backend(), ds.channels);
  if (run.cfg.vmf) net.head.last_layer.vmf = true;
  try {
    const e = await embedDataset(net, ds, {
      mean: run.ck.meta.normalization!.mean,
      std: run.ck.meta.normalization!.std,
    });
    net.eval();
    const logits = noGrad(() => tidy(() => net.head.forward(tensor(e.features.data, e.features.shape, be))));
    const l = (await logits.data()) as Float32Array;
    logits.dispose();
    return { features: e.features.data, logits: l };
  } finally {
    net.dispose();
  }
}

/** Exports `ckpt`, runs it on batches of 1 and 3 and compares features (and logits) with the engine. */
async function roundTrip(name: string, ckpt: string, C: number, S: number, withHead: boolean): Promise<void> {
  const out = join(dir, `${name}.onnx`);
  const info = await exportCheckpointToOnnx(ckpt, out, { withHead, backend: await backend() });
  assert.is(info.input.name, INPUT);
  assert.equal(
    info.outputs.map((o) => o.name),
    withHead ? [FEATURES, LOGITS] : [FEATURES],
  );
  const session = await ort.InferenceSession.create(out);
  assert.equal(session.inputNames, [INPUT]);
  assert.equal(session.outputNames, withHead ? [FEATURES, LOGITS] : [FEATURES]);
  for (const n of [1, 3]) {
    const ds = randomImages(n, C, S, 100 + n);
    const ref = await engine(ckpt, ds);
    const got = await runOnnx(out, ds);
    const f = got[FEATURES];
    assert.equal(f.dims, [n, info.outputs[0].shape[1]]);
    const df = relDiff(f.data as Float32Array, ref.features);
    assert.ok(df < 1e-4, `${name} features, batch ${n}: relative difference ${df}`);
    if (withHead) {
      const dl = relDiff(got[LOGITS].data as Float32Array, ref.logits);
      assert.ok(dl < 1e-4, `${name} logits, batch ${n}: relative difference ${dl}`);
    }
  }
}

test('resnet_cpu: features match embed (BatchNorm running statistics, residuals, pooling); batch 1 and 3', async () => {
  const ck = await writeCheckpoint('resnet', { arch: 'resnet_cpu', out_dim: 32, hidden_dim: 16, bottleneck_dim: 8 });
  await roundTrip('resnet', ck, 1, 28, false);
  // The ResNet pools any size: the same model runs on 20x20 images.
  const ref = await engine(ck, randomImages(2, 1, 20, 5));
  const got = await runOnnx(join(dir, 'resnet.onnx'), randomImages(2, 1, 20, 5));
  assert.ok(relDiff(got[FEATURES].data as Float32Array, ref.features) < 1e-4);
});

test('resnet_cpu --with_head: BatchNorm in the head, logits match', async () => {
  const ck = await writeCheckpoint('resnet-bnhead', {
    arch: 'resnet_cpu',
    use_bn_in_head: true,
    out_dim: 32,
    hidden_dim: 16,
    bottleneck_dim: 8,
  });
  await roundTrip('resnet-bnhead', ck, 1, 28, true);
});

test('vit_cpu: CLS features match embed (LayerNorm, attention, erf GELU), and vMF logits with --with_head', async () => {
  const ck = await writeCheckpoint('vit', {
    arch: 'vit_cpu',
    vmf: true,
    norm_last_layer: false,
    out_dim: 32,
    hidden_dim: 16,
    bottleneck_dim: 8,
  });
  await roundTrip('vit', ck, 1, 28, true);
});

test('pca with the prototypes-only head', async () => {
  const ck = await writeCheckpoint('pca', { arch: 'pca', pca_dim: 16, prototypes_only: true, out_dim: 32 });
  await roundTrip('pca', ck, 1, 28, true);
});

test('a Bottleneck ResNet with the ImageNet stem (max-pool, projection shortcuts) on RGB images', async () => {
  const b = await backend();
  const g = new Generator(3);
  const rn = new ResNet(b, { block: 'bottleneck', layers: [1, 2], widths: [4, 8], stem: 'imagenet', inChans: 3 }, g);
  const head = new DINOHead(b, { inDim: rn.embedDim, outDim: 16, hiddenDim: 8, bottleneckDim: 4 }, g);
  const net = new DinoNetwork(b, rn, head, false, g);
  try {
    perturb(net, 5);
    const stats = { mean: [0.4, 0.5, 0.45], std: [0.25, 0.2, 0.3] };
    const source = {
      arch: 'bottleneck',
      which: 'teacher' as const,
      dataset: 'rgb',
      path: 'mem',
      epoch: 0,
      step: 0,
      cropSize: 32,
    };
    const model = await networkToOnnx(net, source, stats, false);
    const out = join(dir, 'bottleneck.onnx');
    writeFileSync(out, model.bytes);
    const ds = randomImages(3, 3, 32, 9);
    const e = await embedDataset(net, ds, stats);
    const got = await runOnnx(out, ds);
    const d = relDiff(got[FEATURES].data as Float32Array, e.features.data);
    assert.ok(d < 1e-4, `relative difference ${d}`);
  } finally {
    net.dispose();
  }
});

test('the model declares opset 17, a dynamic batch, and the training mean/std in its metadata', async () => {
  const m = decodeModel(readFileSync(join(dir, 'vit.onnx')));
  assert.equal(m.opset_import, [{ domain: '', version: 17 }]);
  const dims = m.graph.input[0].type.tensor_type.shape.dim;
  assert.equal(dims, [{ dim_param: 'N' }, { dim_value: 1 }, { dim_value: 28 }, { dim_value: 28 }]);
  const meta = Object.fromEntries(m.metadata_props.map((p) => [p.key, p.value]));
  assert.equal(JSON.parse(meta.normalization_mean), STATS.mean);
  assert.equal(JSON.parse(meta.normalization_std), STATS.std);
  assert.is(meta.arch, 'vit_cpu');
});

test('a corrupt checkpoint, a missing weight and an unknown arch are refused with the reason', async () => {
  const good = readFileSync(join(dir, 'resnet.safetensors'));
  const bad = Uint8Array.from(good);
  bad[bad.length - 10] ^= 0xff;
  const corrupt = join(dir, 'corrupt.safetensors');
  writeFileSync(corrupt, bad);
  const b = await backend();
  const fails = async (path: string, re: RegExp) => {
    try {
      await exportCheckpointToOnnx(path, join(dir, 'never.onnx'), { backend: b });
    } catch (e) {
      assert.match((e as Error).message, re);
      return;
    }
    assert.unreachable(`${path} was exported`);
  };
  await fails(corrupt, /^export: .*checksum mismatch/);
  await fails(join(dir, 'absent.safetensors'), /^export: no such file/);
  // A checkpoint whose config names an arch protodino does not build (renamed by a later version, say).
  const run = readRunCheckpoint('test', join(dir, 'resnet.safetensors'));
  const rewrite = (name: string, meta: unknown, drop = '') => {
    const tensors: Record<string, SafeTensorInput> = {};
    for (const [k, v] of run.ck.tensors) if (k !== drop) tensors[k] = { dtype: 'F32', shape: v.shape, data: v.data };
    const p = join(dir, name);
    writeFileSync(p, serializeSafetensors(tensors, { protodino: JSON.stringify(meta) }));
    return p;
  };
  const config = { ...(run.ck.meta.config as object), arch: 'resnet_gpu' };
  await fails(
    rewrite('arch.safetensors', { ...run.ck.meta, config }),
    /^export: .*arch\.safetensors: the network cannot be rebuilt .*--arch: must be one of .*got 'resnet_gpu'/,
  );
  // A teacher without its first convolution.
  const missing = rewrite('missing.safetensors', run.ck.meta, 'teacher.backbone.conv1.weight');
  await fails(missing, /no teacher\.backbone\.conv1\.weight/);
});

test('CLI: export --to onnx writes the model; bad flag combinations are refused', () => {
  const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const ck = join(dir, 'resnet.safetensors');
  const out = join(dir, 'cli.onnx');
  const ok = spawnSync(process.execPath, [cli, 'export', ck, '--to', 'onnx', '--out', out, '--with_head'], {
    encoding: 'utf8',
  });
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /images \[N, 1, H, W\].*features \[N, 128\], logits \[N, 32\]/);
  assert.equal(
    decodeModel(readFileSync(out)).graph.output.map((o) => o.name),
    [FEATURES, LOGITS],
  );
  const pth = spawnSync(process.execPath, [cli, 'export', ck, '--to', 'pth', '--with_head'], { encoding: 'utf8' });
  assert.is(pth.status, 1);
  assert.match(pth.stderr, /--with_head and --student apply to --to onnx and backbone only/);
  const other = spawnSync(process.execPath, [cli, 'export', ck, '--to', 'tflite'], { encoding: 'utf8' });
  assert.match(other.stderr, /--to must be pth, onnx or backbone/);
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
  be?.destroy();
});

test.run();
