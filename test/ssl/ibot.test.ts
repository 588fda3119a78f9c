// iBOT's masked patch loss: the block masks, the loss and its gradient against a naive float64
// reference of iBOT's formula, the ViT's mask token, and --ibot training steps on wasm and webgpu
// (with an exact resume on wasm).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_BACKENDS, conformance, getBackend } from '../helpers/backends.js';
import { assertClose, gradCheck } from '../helpers/check.js';
import { backward, mul, sum, tensor, tidy } from '../../src/tensor/index.js';
import { Generator } from '../../src/tensor/ops/random.js';
import { blockMask, cropMasks, ibotPatchLoss, maskRng } from '../../src/ssl/ibot.js';
import { VisionTransformer } from '../../src/nn/vit.js';
import { parseTrainArgs, type TrainConfig } from '../../src/train/config.js';
import { train } from '../../src/train/trainer.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { leakFree } from './fixtures.js';

test('block masks: within the target fraction, blockwise, seeded', () => {
  for (let seed = 0; seed < 20; seed++) {
    const rng = maskRng(seed, 3, 1);
    const ratio = 0.1 + 0.04 * seed;
    const m = blockMask(rng, 7, 7, ratio);
    const n = m.reduce((a, b) => a + b, 0);
    assert.ok(n <= Math.round(ratio * 49), `seed ${seed}: ${n} masked > target ${Math.round(ratio * 49)}`);
    assert.ok(n >= 1, `seed ${seed}: nothing masked at ratio ${ratio}`);
    // Blocks: most masked patches have a masked 4-neighbour.
    let paired = 0;
    for (let i = 0; i < 7; i++)
      for (let j = 0; j < 7; j++) {
        if (!m[i * 7 + j]) continue;
        if (
          (i > 0 && m[(i - 1) * 7 + j]) ||
          (i < 6 && m[(i + 1) * 7 + j]) ||
          (j > 0 && m[i * 7 + j - 1]) ||
          (j < 6 && m[i * 7 + j + 1])
        )
          paired++;
      }
    if (n >= 4) assert.ok(paired >= n / 2, `seed ${seed}: ${paired} of ${n} masked patches touch another`);
  }
  assert.equal(
    Array.from(cropMasks(maskRng(1, 2, 3), 8, 4, 4, { prob: 0.5, ratio: [0.1, 0.5] })),
    Array.from(cropMasks(maskRng(1, 2, 3), 8, 4, 4, { prob: 0.5, ratio: [0.1, 0.5] })),
    'same seed, same masks',
  );
  assert.not.equal(
    Array.from(cropMasks(maskRng(1, 2, 3), 8, 4, 4, { prob: 1, ratio: [0.3, 0.5] })),
    Array.from(cropMasks(maskRng(1, 3, 3), 8, 4, 4, { prob: 1, ratio: [0.3, 0.5] })),
    'another step, other masks',
  );
  assert.ok(
    cropMasks(maskRng(0, 0, 0), 6, 4, 4, { prob: 0, ratio: [0.1, 0.5] }).every((v) => v === 0),
    'prob 0 masks nothing',
  );
  const all = cropMasks(maskRng(0, 0, 0), 6, 4, 4, { prob: 1, ratio: [0.2, 0.5] });
  for (let c = 0; c < 6; c++)
    assert.ok(
      all.subarray(c * 16, (c + 1) * 16).some((v) => v === 1),
      `prob 1: crop ${c} masked`,
    );
});

/** iBOT's loss written out: per view v and image b, Σ_masked CE / max(1, #masked); mean over b, then v. */
function refLoss(
  s: Float64Array,
  t: Float64Array,
  c: Float64Array,
  masks: number[],
  B: number,
  N: number,
  K: number,
  ts: number,
  tt: number,
): number {
  let total = 0;
  for (let v = 0; v < 2; v++) {
    let perView = 0;
    for (let b = 0; b < B; b++) {
      let ce = 0,
        n = 0;
      for (let i = 0; i < N; i++) {
        const r = (v * B + b) * N + i;
        if (!masks[r]) continue;
        n++;
        const tl = Array.from({ length: K }, (_, k) => (t[r * K + k] - c[k]) / tt);
        const sl = Array.from({ length: K }, (_, k) => s[r * K + k] / ts);
        const tm = Math.max(...tl),
          sm = Math.max(...sl);
        const tz = tl.reduce((a, x) => a + Math.exp(x - tm), 0);
        const sz = Math.log(sl.reduce((a, x) => a + Math.exp(x - sm), 0)) + sm;
        for (let k = 0; k < K; k++) ce -= (Math.exp(tl[k] - tm) / tz) * (sl[k] - sz);
      }
      perView += ce / Math.max(1, n);
    }
    total += perView / B;
  }
  return total / 2;
}

conformance('ssl: iBOT', (t, be) => {
  t(
    'patch loss value and gradient vs the naive float64 reference (a crop with no masked patch)',
    leakFree(async () => {
      const B = 2,
        N = 4,
        K = 5;
      const masks = [1, 0, 1, 1, /**/ 0, 0, 0, 0, /**/ 0, 1, 0, 0, /**/ 1, 1, 1, 1];
      const R = 2 * B * N;
      const teacher = Float64Array.from({ length: R * K }, (_, i) => Math.sin(0.37 * i) * 2);
      const center = Float64Array.from({ length: K }, (_, k) => 0.1 * k - 0.2);
      const m = Uint8Array.from(masks);
      await gradCheck(
        be(),
        (s, tp, c) => ibotPatchLoss(s, tp, c, m, N, { studentTemp: 0.1, teacherTemp: 0.07 }),
        (s, tp, c) => Float64Array.of(refLoss(s, tp, c, masks, B, N, K, 0.1, 0.07)),
        [
          { shape: [R, K] },
          { shape: [R, K], data: teacher, noGrad: true },
          { shape: [1, K], data: center, noGrad: true },
        ],
        { what: 'iBOT patch loss' },
      );
    }),
  );

  t(
    'the ViT mask token replaces masked patches: their pixels no longer matter, the token gets the gradient',
    leakFree(async () => {
      const vit = new VisionTransformer(
        be(),
        { imgSize: 8, patchSize: 4, inChans: 1, embedDim: 16, depth: 1, numHeads: 2 },
        new Generator(4),
      );
      vit.enableMaskToken();
      const img = Float32Array.from({ length: 2 * 64 }, (_, i) => Math.cos(0.3 * i));
      const changed = img.slice();
      for (let r = 0; r < 4; r++) for (let c = 4; c < 8; c++) changed[64 + r * 8 + c] += 1; // image 1, patch 1
      const mask = tensor([0, 0, 0, 0, /**/ 0, 1, 0, 0], [2, 4], be());
      const run = (x: Float32Array) =>
        tidy(() => {
          const out = vit.forwardTokens(tensor(x, [2, 1, 8, 8], be()), mask);
          // A weighted sum: the plain sum of LayerNorm outputs is constant in its input.
          backward(
            sum(
              mul(
                out,
                tensor(
                  Float32Array.from({ length: out.size }, (_, i) => Math.sin(0.7 * i)),
                  out.shape,
                  be(),
                ),
              ),
            ),
          );
          return out;
        });
      const a = run(img);
      const grad = await vit.masked_embed!.grad!.data();
      assert.ok(
        Array.from(grad).some((v) => Math.abs(v) > 1e-6),
        'masked_embed received a gradient',
      );
      const b = run(changed);
      assertClose(await b.data(), await a.data(), { rtol: 1e-5, atol: 1e-6 }, 'tokens with the masked patch changed');
      const unmasked = tidy(() => vit.forwardTokens(tensor(img, [2, 1, 8, 8], be())));
      const d = await unmasked.data(),
        ad = await a.data();
      assertClose(
        d.subarray(0, 5 * 16),
        ad.subarray(0, 5 * 16),
        { rtol: 1e-5, atol: 1e-6 },
        'image 0 (nothing masked) is unchanged',
      );
      for (const x of [a, b, unmasked, mask]) x.dispose();
      vit.dispose();
    }),
  );
});

const tinyVit: Partial<TrainConfig> = {
  arch: 'vit_cpu',
  batch_size: 4,
  subset: 8,
  local_crops_number: 2,
  out_dim: 64,
  hidden_dim: 32,
  bottleneck_dim: 16,
  log_every: 1,
  quiet: true,
  freeze_last_layer: 0,
  ibot: true,
  ibot_mask_prob: 1,
};

test('--ibot is refused for non-ViT archs and frozen backbones, naming the flag', () => {
  assert.throws(
    () => parseTrainArgs(['--ibot', '--arch', 'resnet_cpu']),
    /--ibot: masks patch tokens and needs a ViT --arch/,
  );
  assert.throws(() => parseTrainArgs(['--ibot', '--arch', 'pca']), /--ibot: .*ViT/);
  assert.throws(() => parseTrainArgs(['--ibot', '--freeze_backbone']), /--ibot: .*--freeze_backbone/);
  assert.throws(() => parseTrainArgs(['--ibot_mask_ratio', '0.5', '0.2']), /--ibot_mask_ratio: must be two numbers/);
  const c = parseTrainArgs(['--ibot', '--ibot_loss_weight', '0.5', '--ibot_mask_ratio', '0.1', '0.3']);
  assert.is(c.ibot_loss_weight, 0.5);
  assert.equal(c.ibot_mask_ratio, [0.1, 0.3]);
});

for (const name of ['wasm-relaxed-2t', 'webgpu']) {
  test(`--ibot training steps run on ${name}: finite loss, mask token and center2 trained and saved`, async () => {
    const be = await getBackend(ALL_BACKENDS.find((b) => b.name === name)!);
    const dir = mkdtempSync(join(tmpdir(), 'protodino-ibot-'));
    const r = await train({ ...tinyVit, max_steps: 2, output_dir: dir }, { backend: be });
    assert.is(r.steps, 2);
    for (const h of r.history) assert.ok(Number.isFinite(h.loss) && h.loss > 0, `loss ${h.loss}`);
    const ck = readCheckpoint(r.checkpoint);
    const c2 = ck.tensors.get('ibot_loss.center2');
    assert.ok(c2 && c2.data.some((v) => v !== 0), 'center2 saved and updated');
    const me = ck.tensors.get('student.backbone.masked_embed');
    assert.ok(me && me.data.some((v) => v !== 0), 'masked_embed saved and trained');
    assert.ok(ck.tensors.has('teacher.backbone.masked_embed'), 'teacher holds the mask token too');
    rmSync(dir, { recursive: true, force: true });
  });
}

test('an --ibot --vmf --accum_steps 2 run resumed mid-way ends bit-identical (wasm)', async () => {
  const be = await getBackend(ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!);
  const base: Partial<TrainConfig> = {
    ...tinyVit,
    batch_size: 2,
    accum_steps: 2,
    ibot_mask_prob: 0.5,
    vmf: true,
    norm_last_layer: false,
    epochs: 2,
  };
  const a = mkdtempSync(join(tmpdir(), 'protodino-ibot-')),
    b = mkdtempSync(join(tmpdir(), 'protodino-ibot-'));
  await train({ ...base, output_dir: a }, { backend: be });
  await train({ ...base, output_dir: b, max_steps: 3 }, { backend: be });
  await train({ ...base, output_dir: b, resume: true }, { backend: be });
  const x = readCheckpoint(join(a, 'checkpoint.safetensors')),
    y = readCheckpoint(join(b, 'checkpoint.safetensors'));
  assert.is(x.meta.step, 4);
  assert.is(y.meta.step, 4);
  for (const [name, t] of x.tensors)
    assert.equal(Array.from(y.tensors.get(name)!.data), Array.from(t.data), `${name} differs after resume`);
  rmSync(a, { recursive: true, force: true });
  rmSync(b, { recursive: true, force: true });
});

test.run();
