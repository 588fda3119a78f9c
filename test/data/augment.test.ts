import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  cropResize,
  gaussianBlur,
  grayscale,
  hflip,
  normalizeInto,
  randomResizedCropBox,
  solarize,
} from '../../src/data/transforms.js';
import { MultiCrop, resolveMultiCrop, type MultiCropOptions } from '../../src/data/multicrop.js';
import { BatchMaker } from '../../src/data/batch.js';
import { Rng } from '../../src/data/rng.js';
import { bytes, synthDataset } from './fixtures.js';
import type { Dataset } from '../../src/data/dataset.js';

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.is(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++)
    if (!(Math.abs(a[i] - b[i]) <= tol)) assert.unreachable(`${what}: [${i}] ${a[i]} vs ${b[i]}`);
}

const randImage = (n: number, seed: number): Float32Array => Float32Array.from(bytes(n, seed), (v) => v / 255);

test('bilinear crop: an identity-size crop returns its input; windows; torch align_corners=False upsampling', () => {
  const [C, H, W] = [2, 5, 7];
  const src = bytes(C * H * W, 5);
  const out = new Float32Array(C * 36);
  const sq = bytes(C * 6 * 6, 6);
  cropResize(sq, 0, C, 6, 6, { top: 0, left: 0, height: 6, width: 6 }, 6, out);
  close(
    out.subarray(0, C * 36),
    Array.from(sq, (v) => v / 255),
    1e-7,
    'identity',
  );
  cropResize(src, 0, C, H, W, { top: 1, left: 2, height: 3, width: 3 }, 3, out);
  const win: number[] = [];
  for (let c = 0; c < C; c++)
    for (let y = 1; y < 4; y++) for (let x = 2; x < 5; x++) win.push(src[c * 35 + y * 7 + x] / 255);
  close(out.subarray(0, C * 9), win, 1e-7, 'window');
  // Naive torch bilinear (align_corners=False) of a 2x3 box at (2, 1) up to 4x4.
  const S = 4;
  cropResize(src, 0, C, H, W, { top: 2, left: 1, height: 2, width: 3 }, S, out);
  const ref: number[] = [];
  const coord = (o: number, n: number): [number, number, number] => {
    const f = Math.max(0, ((o + 0.5) * n) / S - 0.5);
    const a = Math.min(Math.floor(f), n - 1);
    return [a, Math.min(a + 1, n - 1), f - a];
  };
  for (let c = 0; c < C; c++)
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++) {
        const [y0, y1, wy] = coord(y, 2);
        const [x0, x1, wx] = coord(x, 3);
        const p = (yy: number, xx: number): number => src[c * 35 + (2 + yy) * 7 + 1 + xx];
        ref.push(
          ((1 - wy) * ((1 - wx) * p(y0, x0) + wx * p(y0, x1)) + wy * ((1 - wx) * p(y1, x0) + wx * p(y1, x1))) / 255,
        );
      }
  close(out.subarray(0, C * 16), ref, 1e-6, 'upsample');
});

test('random resized crop boxes stay inside the image with area in the scale range', () => {
  const rng = new Rng([1]);
  for (let t = 0; t < 500; t++) {
    const b = randomResizedCropBox(() => rng.float(), 28, 20, [0.05, 0.4], [3 / 4, 4 / 3]);
    assert.ok(
      b.top >= 0 && b.left >= 0 && b.top + b.height <= 28 && b.left + b.width <= 20 && b.height > 0 && b.width > 0,
    );
    const frac = (b.height * b.width) / 560;
    assert.ok(frac > 0.02 && frac < 0.5, `area fraction ${frac}`);
  }
  // No draw fits: falls back to the largest centred crop of an allowed aspect ratio.
  assert.equal(
    randomResizedCropBox(() => 0.5, 10, 40, [1, 1], [1, 1]),
    { top: 0, left: 15, height: 10, width: 10 },
  );
});

test('flip, solarize, grayscale, normalise against naive versions', () => {
  const [C, H, W] = [3, 4, 5];
  const img = randImage(C * H * W, 2);
  const f = img.slice();
  hflip(f, C, H, W);
  for (let c = 0; c < C; c++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) assert.is(f[(c * H + y) * W + x], img[(c * H + y) * W + W - 1 - x]);
  const s = img.slice();
  solarize(s, s.length);
  close(
    s,
    Array.from(img, (v) => (v * 255 >= 128 ? 1 - v : v)),
    0,
    'solarize',
  );
  const g = img.slice();
  grayscale(g, C, H * W);
  const HW = H * W;
  for (let p = 0; p < HW; p++) {
    const l = 0.299 * img[p] + 0.587 * img[HW + p] + 0.114 * img[2 * HW + p];
    close([g[p], g[HW + p], g[2 * HW + p]], [l, l, l], 1e-6, 'grayscale');
  }
  const grey = randImage(HW, 3);
  const g1 = grey.slice();
  grayscale(g1, 1, HW);
  adjustSaturation(g1, 1, HW, 0.3);
  adjustHue(g1, 1, HW, 0.2);
  close(g1, grey, 0, 'grey images: grayscale/saturation/hue are no-ops');
  const out = new Float32Array(C * HW + 3);
  normalizeInto(img, C, HW, [0.1, 0.2, 0.3], [0.5, 0.25, 2], out, 3);
  close(
    out.subarray(3),
    Array.from(img, (v, i) => (v - [0.1, 0.2, 0.3][Math.floor(i / HW)]) / [0.5, 0.25, 2][Math.floor(i / HW)]),
    1e-6,
    'normalise',
  );
});

test('brightness, contrast, saturation, hue against naive versions', () => {
  const HW = 12;
  const img = randImage(3 * HW, 4);
  const cl = (v: number): number => Math.min(1, Math.max(0, v));
  const luma = (p: number): number => 0.299 * img[p] + 0.587 * img[HW + p] + 0.114 * img[2 * HW + p];
  const b = img.slice();
  adjustBrightness(b, b.length, 1.3);
  close(
    b,
    Array.from(img, (v) => cl(v * 1.3)),
    1e-6,
    'brightness',
  );
  const c = img.slice();
  adjustContrast(c, 3, HW, 0.7);
  let m = 0;
  for (let p = 0; p < HW; p++) m += luma(p) / HW;
  close(
    c,
    Array.from(img, (v) => cl(0.7 * v + 0.3 * m)),
    1e-6,
    'contrast',
  );
  const gc = img.subarray(0, HW).slice();
  adjustContrast(gc, 1, HW, 1.4);
  const gm = img.subarray(0, HW).reduce((a, v) => a + v, 0) / HW;
  close(
    gc,
    Array.from(img.subarray(0, HW), (v) => cl(1.4 * v - 0.4 * gm)),
    1e-6,
    'contrast on grey',
  );
  const s = img.slice();
  adjustSaturation(s, 3, HW, 1.2);
  close(
    s,
    Array.from(img, (v, i) => cl(1.2 * v - 0.2 * luma(i % HW))),
    1e-6,
    'saturation',
  );
  // Hue: pure red turns green at +1/3 turn and blue at −1/3; a naive HSV round trip for the rest.
  const red = new Float32Array([1, 0.5, 0, 0, 0, 0]);
  adjustHue(red, 3, 2, 1 / 3);
  close(red, [0, 0, 1, 0.5, 0, 0], 1e-6, 'red → green');
  const h = img.slice();
  adjustHue(h, 3, HW, 0.07);
  for (let p = 0; p < HW; p++) {
    const [r, g, bb] = [img[p], img[HW + p], img[2 * HW + p]];
    const mx = Math.max(r, g, bb),
      mn = Math.min(r, g, bb),
      d = mx - mn;
    let hh = d === 0 ? 0 : mx === r ? ((g - bb) / d + 6) % 6 : mx === g ? (bb - r) / d + 2 : (r - g) / d + 4;
    hh = (hh / 6 + 0.07) % 1;
    const sat = mx === 0 ? 0 : d / mx;
    const chan = (n: number): number => {
      const k = (n + hh * 6) % 6;
      return mx - mx * sat * Math.max(0, Math.min(k, 4 - k, 1));
    };
    close([h[p], h[HW + p], h[2 * HW + p]], [chan(5), chan(3), chan(1)], 1e-5, `hue pixel ${p}`);
  }
});

test('gaussian blur: naive 2-D convolution with extended edges; constants stay constant', () => {
  const [C, H, W] = [2, 6, 9];
  const img = randImage(C * H * W, 8);
  for (const sigma of [0.1, 0.7, 2]) {
    const out = img.slice();
    gaussianBlur(out, C, H, W, sigma);
    const r = Math.max(1, Math.ceil(3 * sigma));
    const w = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
    const z = w.reduce((a, b) => a + b, 0);
    const ref: number[] = [];
    const at = (c: number, y: number, x: number): number =>
      img[(c * H + Math.min(H - 1, Math.max(0, y))) * W + Math.min(W - 1, Math.max(0, x))];
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          let s = 0;
          for (let i = -r; i <= r; i++)
            for (let j = -r; j <= r; j++) s += (w[i + r] * w[j + r] * at(c, y + i, x + j)) / (z * z);
          ref.push(s);
        }
    close(out, ref, 1e-5, `blur sigma ${sigma}`);
  }
  const flat = new Float32Array(30).fill(0.25);
  gaussianBlur(flat, 1, 5, 6, 1.5);
  close(flat, new Float32Array(30).fill(0.25), 1e-6, 'constant');
});

const STATS = { mean: [0.5], std: [0.25] };
const crops = (o: Partial<MultiCropOptions> = {}): MultiCropOptions => ({
  globalSize: 12,
  localSize: 6,
  localCrops: 3,
  ...STATS,
  ...o,
});

function run(
  ds: Dataset,
  opts: MultiCropOptions,
  index: number,
  epoch = 0,
  seed: [number, number] = [42, 0],
): Float32Array[] {
  const r = resolveMultiCrop(opts, ds.channels, () => STATS);
  const mc = new MultiCrop(r, ds);
  const C = ds.channels;
  const outs = mc.cropSizes.map((S) => new Float32Array(C * S * S));
  mc.apply(ds.images, index * C * ds.height * ds.width, index, seed, epoch, outs, 0);
  return outs;
}

test('multi-crop with every random transform off and full crops is the normalised input (and flips, solarizes on demand)', () => {
  const ds = synthDataset(2, 1, 12, 12);
  const id = crops({
    globalScale: [1, 1],
    localScale: [1, 1],
    ratio: [1, 1],
    localSize: 12,
    flipP: 0,
    jitterP: 0,
    grayscaleP: 0,
    globalBlurP: [0, 0],
    localBlurP: 0,
    globalSolarizeP: [0, 0],
  });
  const want = Array.from(ds.images.subarray(144, 288), (v) => (v / 255 - 0.5) / 0.25);
  for (const o of run(ds, id, 1)) close(o, want, 1e-5, 'identity policy');
  const [, sol] = run(ds, { ...id, globalSolarizeP: [0, 1] }, 1);
  close(
    sol,
    Array.from(ds.images.subarray(144, 288), (v) => ((v >= 128 ? 1 - v / 255 : v / 255) - 0.5) / 0.25),
    1e-5,
    'solarized crop 2',
  );
  const [fl] = run(ds, { ...id, flipP: 1 }, 1);
  close(
    fl,
    want.map((_, i) => want[i - (i % 12) + 11 - (i % 12)]),
    1e-5,
    'flipped',
  );
});

test('multi-crop: deterministic per (seed, epoch, index), different otherwise; ranges; grey and RGB', () => {
  for (const C of [1, 3]) {
    const ds = synthDataset(4, C, 20, 16);
    const stats = { mean: Array(C).fill(0.5), std: Array(C).fill(0.25) };
    const o = crops(stats);
    const a = run(ds, o, 2);
    assert.equal(
      a.map((x) => x.length),
      [12, 12, 6, 6, 6].map((S) => C * S * S),
    );
    const same = run(ds, o, 2);
    a.forEach((x, k) => assert.equal(Buffer.from(x.buffer), Buffer.from(same[k].buffer), `crop ${k} repeatable`));
    const otherIndex = run(ds, o, 3);
    const otherEpoch = run(ds, o, 2, 1);
    const otherSeed = run(ds, o, 2, 0, [43, 0]);
    for (const other of [otherIndex, otherEpoch, otherSeed])
      a.forEach((x, k) => assert.not.equal(Buffer.from(x.buffer), Buffer.from(other[k].buffer)));
    // Each crop has its own stream: the locals differ, and adding locals leaves the earlier crops as they were.
    assert.not.equal(Buffer.from(a[2].buffer), Buffer.from(a[3].buffer));
    assert.not.equal(Buffer.from(a[3].buffer), Buffer.from(a[4].buffer));
    const more = run(ds, { ...o, localCrops: 5 }, 2);
    a.forEach((x, k) =>
      assert.equal(Buffer.from(x.buffer), Buffer.from(more[k].buffer), `crop ${k} unchanged by more locals`),
    );
    for (const x of a)
      for (const v of x) assert.ok(v >= -2 - 1e-6 && v <= 2 + 1e-6 && Number.isFinite(v), `normalised value ${v}`);
  }
});

test('batch maker: [B, C, S, S] per crop, labels and indices of a seeded permutation', () => {
  const ds = synthDataset(10, 3, 8, 8);
  const plan = {
    n: 10,
    channels: 3,
    height: 8,
    width: 8,
    batchSize: 4,
    dropLast: false,
    shuffle: true,
    seed: [5, 0] as [number, number],
    crops: resolveMultiCrop(crops({ mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] }), 3, () => STATS),
  };
  const bm = new BatchMaker(plan, ds.images, ds.labels);
  assert.is(bm.perEpoch, 3);
  const seen: number[] = [];
  for (let b = 0; b < 3; b++) {
    const { header, buffer } = bm.make(0, b);
    assert.is(header.size, b < 2 ? 4 : 2);
    assert.is(buffer.byteLength, 4 * (header.size * 3 * (2 * 144 + 3 * 36) + 2 * header.size));
    const labels = new Int32Array(buffer, buffer.byteLength - 8 * header.size, header.size);
    const idx = new Int32Array(buffer, buffer.byteLength - 4 * header.size, header.size);
    idx.forEach((i, j) => assert.is(labels[j], ds.labels[i]));
    seen.push(...idx);
  }
  assert.equal(
    seen.slice().sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  assert.not.equal(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.throws(() => resolveMultiCrop(crops({ mean: [0.5, 0.5] }), 3, () => STATS), /mean\/std need 3 values/);
  assert.throws(() => resolveMultiCrop(crops({ localScale: [0.5, 0.1] }), 1, () => STATS), /localScale/);
});

test.run();
