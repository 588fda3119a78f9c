// The wasm convolutions' span route (src/backend/wasm/convgemm.ts conv2dBySpans, gradInputBySpans):
// on small maps the forward and the input gradient skip the taps that read padding, which must
// leave every output bit as the full-window route computes it, on 1 and 2 threads, with the exact
// zeros a ReLU leaves in the input and negative weights (whose products with zero are −0).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ConvParams, Storage } from '../../src/backend/backend.js';
import { WasmBackend } from '../../src/backend/wasm/index.js';
import { convRoutes } from '../../src/backend/wasm/convgemm.js';

function data(n: number, seed: number, zeros: boolean): Float32Array {
  const d = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    const v = (a / 4294967296) * 2 - 1;
    d[i] = zeros && v < 0 ? 0 : v;
  }
  return d;
}

// [batch, channels, size h, size w, out channels, kernel, stride, padding]: resnet_cpu's and
// resnet18's last stages on 12² and 28² crops, odd sizes, reductions past one 256-entry block.
const CASES: [number, number, number, number, number, number, number, number][] = [
  [5, 128, 2, 2, 128, 3, 1, 1],
  [3, 64, 3, 3, 128, 3, 2, 1],
  [2, 70, 3, 3, 9, 3, 2, 1],
  [3, 20, 4, 4, 11, 3, 1, 1],
  [2, 6, 2, 3, 5, 3, 1, 1],
  [4, 3, 1, 2, 7, 3, 1, 1],
  [2, 5, 3, 3, 4, 5, 1, 2],
  [2, 9, 7, 7, 12, 3, 2, 1],
  [1, 4, 5, 6, 3, 3, 1, 2],
];

async function run(be: WasmBackend, share: number, p: ConvParams, x: Float32Array, w: Float32Array, dy: Float32Array) {
  const up = (d: Float32Array): Storage => {
    const s = be.alloc(d.length, 'f32');
    be.upload(s, d);
    return s;
  };
  const xs = up(x),
    ws = up(w),
    dys = up(dy),
    out = be.alloc(dy.length, 'f32'),
    dx = be.alloc(x.length, 'f32');
  const before = convRoutes.borderShare;
  convRoutes.borderShare = share;
  convRoutes.borderPositions = share > 1 ? Infinity : 9;
  try {
    be.conv2d(xs, ws, out, p);
    be.conv2dGradInput(dys, ws, dx, p);
  } finally {
    convRoutes.borderShare = before;
    convRoutes.borderPositions = 9;
  }
  const got = [new Uint32Array((await be.download(out)).buffer), new Uint32Array((await be.download(dx)).buffer)];
  for (const s of [xs, ws, dys, out, dx]) be.free(s);
  return got;
}

for (const threads of [1, 2]) {
  test(`span route: the full-window route's bits (${threads} thread${threads > 1 ? 's' : ''})`, async () => {
    const be = await WasmBackend.create({ threads });
    try {
      for (const [i, [B, C, H, W, O, k, s, pad]] of CASES.entries()) {
        const outH = Math.floor((H + 2 * pad - k) / s) + 1,
          outW = Math.floor((W + 2 * pad - k) / s) + 1;
        const p: ConvParams = {
          batch: B,
          channels: C,
          height: H,
          width: W,
          kernelH: k,
          kernelW: k,
          strideH: s,
          strideW: s,
          padH: pad,
          padW: pad,
          outH,
          outW,
          outChannels: O,
        };
        const x = data(B * C * H * W, 10 + i, true),
          w = data(O * C * k * k, 20 + i, false),
          dy = data(B * O * outH * outW, 30 + i, true);
        const [fullOut, fullDx] = await run(be, 0, p, x, w, dy);
        const [spanOut, spanDx] = await run(be, 2, p, x, w, dy);
        const what = `[${B},${C},${H},${W}] O${O} k${k} s${s} p${pad}`;
        assert.ok(
          fullOut.some((v) => v !== 0),
          `${what}: the forward is not all zeros`,
        );
        assert.equal(Array.from(spanOut), Array.from(fullOut), `${what}: forward`);
        assert.equal(Array.from(spanDx), Array.from(fullDx), `${what}: input gradient`);
      }
    } finally {
      be.destroy();
    }
  });
}

test.run();
