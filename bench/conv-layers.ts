// The convolution routes side by side on resnet_cpu's 3×3 stride-1 layers (128 global crops of 28²,
// 256 local ones of 12², padding 1), wasm on 1 and 2 threads: the implicit GEMM (conv2d,
// conv2dGradWeight), Winograd as three kernels over all tiles in one chunk (winogradInput, the
// batched matmul, winogradOutput; for the weight gradient winogradInput, winogradOutputGrad and the
// transposed matmul), and Winograd fused per block of tiles (winogradConv, winogradConvGrad). These
// are the measurements behind fusedFits, fusedGradFits and winogradFits in src/tensor/ops/conv.ts.
import b from 'benny';
import type { Summary } from 'benny/lib/internal/common-types.js';
import type { Backend, ConvParams, Storage } from '../src/backend/backend.js';
import { WINOGRAD_VALUES, winogradColumns, winogradTiles } from '../src/backend/backend.js';
import { composedWinogradConv, composedWinogradConvGrad } from '../src/backend/winograd-compose.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { caseOptions, markdownTable, type SuiteReport } from './harness.js';

/** [label, batch, channels, map side, output channels]. */
const LAYERS: [string, number, number, number, number][] = [
  ['16x28²', 128, 16, 28, 16],
  ['16x12²', 256, 16, 12, 16],
  ['32x14²', 128, 32, 14, 32],
  ['32x6²', 256, 32, 6, 32],
  ['64x7²', 128, 64, 7, 64],
  ['64x3²', 256, 64, 3, 64],
  ['128x4²', 128, 128, 4, 128],
];
const ROUTES = ['implicit GEMM', 'Winograd, 3 kernels', 'Winograd, fused'] as const;

function random(be: Backend, n: number, seed: number): Storage {
  const s = be.alloc(n, 'f32');
  const d = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    d[i] = a / 4294967296 - 0.5;
  }
  be.upload(s, d);
  return s;
}

/** One layer's six cases (forward and weight gradient by each route) on one backend. */
async function layer(be: Backend, label: string, [name, N, C, H, O]: (typeof LAYERS)[number]): Promise<Summary> {
  const p: ConvParams = {
    batch: N,
    channels: C,
    height: H,
    width: H,
    kernelH: 3,
    kernelW: 3,
    strideH: 1,
    strideW: 1,
    padH: 1,
    padW: 1,
    outH: H,
    outW: H,
    outChannels: O,
  };
  const { n } = winogradTiles(p);
  const np = winogradColumns(n);
  const x = random(be, N * C * H * H, 1),
    w = random(be, O * C * 9, 2),
    dy = random(be, N * O * H * H, 3),
    y = be.alloc(N * O * H * H, 'f32'),
    dw = be.alloc(O * C * 9, 'f32'),
    u = be.alloc(WINOGRAD_VALUES * O * C, 'f32'),
    v = be.alloc(WINOGRAD_VALUES * C * np, 'f32'),
    m = be.alloc(WINOGRAD_VALUES * O * np, 'f32');
  be.winogradWeights(w, u, O, C, false);
  const forward = [
    () => be.conv2d(x, w, y, p),
    () => composedWinogradConv(be, x, u, y, p, 0, n, v, m),
    () => be.winogradConv(x, u, y, p, 0, n),
  ];
  const gradWeight = [
    () => be.conv2dGradWeight(x, dy, dw, p),
    () => composedWinogradConvGrad(be, x, dy, u, p, 0, n, false, v, m),
    () => be.winogradConvGrad(x, dy, u, p, 0, n, false),
  ];
  try {
    return await b.suite(
      `conv layer ${name} [${label}]`,
      ...ROUTES.map((r, i) => b.add(`forward, ${r}`, forward[i])),
      ...ROUTES.map((r, i) => b.add(`weight gradient, ${r}`, gradWeight[i])),
      b.configure({ cases: caseOptions() }),
      b.cycle(),
      b.complete(),
    );
  } finally {
    for (const s of [x, w, dy, y, dw, u, v, m]) be.free(s);
  }
}

/** Every layer on wasm with 1 and 2 threads; a table of ms per call and the implicit GEMM's time over each Winograd route's. */
export async function convLayersSuite(): Promise<SuiteReport> {
  const summaries: Summary[] = [];
  const rows: (string | number)[][] = [];
  for (const threads of [1, 2]) {
    const be = await WasmBackend.create({ threads });
    try {
      for (const l of LAYERS) {
        const s = await layer(be, be.description, l);
        summaries.push(s);
        const ms = s.results.map((r) => 1000 / r.ops);
        const cells = (o: number) => [
          ...ms.slice(o, o + 3).map((t) => t.toFixed(2)),
          `${(ms[o] / ms[o + 1]).toFixed(2)}× / ${(ms[o] / ms[o + 2]).toFixed(2)}×`,
        ];
        rows.push([l[0], threads, ...cells(0), ...cells(3)]);
      }
    } finally {
      be.destroy();
    }
  }
  const header = ['layer', 'threads'];
  for (const pass of ['forward', 'dW']) {
    header.push(...ROUTES.map((r) => `${pass} ${r} ms`), `${pass} GEMM ÷ 3 kernels / ÷ fused`);
  }
  return { summaries, table: markdownTable(header, rows) };
}
