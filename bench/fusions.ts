// The fused kernels of issues 14 and 15 against the kernels they replaced, at the vit_cpu training
// step's shapes (batch 64: 128 global crops × 50 tokens, D = 64, MLP 256): each pair runs
// interleaved in one process, best of several rounds (wall time and this process's CPU time, which a
// machine busy with other jobs inflates less), on wasm (relaxed build, 1 and 2 threads) and
// WebGPU (whatever adapter there is; on llvmpipe a dispatch's fixed cost is most of these kernels).
//   fc1 + GELU, autograd's forward: the product keeping z and writing gelu(z) / the product, then GELU
//   residual add + norm: addLayerNorm / binary add, then layerNorm
//   norm backward with a pending gradient: layerNormGrad adding it / layerNormGrad, then binary add
import type { Backend, Storage } from '../src/backend/backend.js';
import { matmulParams } from '../src/backend/backend.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { WebGPUBackend } from '../src/backend/webgpu/index.js';
import { markdownTable, quickMode, type SuiteReport } from './harness.js';

const ROWS = 128 * 50;
const D = 64;
const H = 4 * D;

function filled(be: Backend, n: number, seed: number): Storage {
  const s = be.alloc(n, 'f32');
  const d = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    d[i] = (a / 4294967296) * 2 - 1;
  }
  be.upload(s, d);
  return s;
}

interface Pair {
  name: string;
  fused: () => void;
  separate: () => void;
}

/** Per side, the best wall ms and best CPU ms (this process, all threads) per call over interleaved rounds. */
async function timePair(be: Backend, p: Pair, rounds: number, reps: number): Promise<number[][]> {
  const best = [
    [Infinity, Infinity],
    [Infinity, Infinity],
  ];
  for (let r = 0; r < rounds; r++) {
    for (const [i, fn] of [p.fused, p.separate].entries()) {
      await be.sync();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let k = 0; k < reps; k++) fn();
      await be.sync();
      const wall = (performance.now() - t0) / reps;
      const c = process.cpuUsage(c0);
      best[i][0] = Math.min(best[i][0], wall);
      best[i][1] = Math.min(best[i][1], (c.user + c.system) / 1000 / reps);
    }
  }
  return best;
}

async function runOn(be: Backend, label: string, rows: (string | number)[][]): Promise<void> {
  const x = filled(be, ROWS * D, 1),
    w = filled(be, H * D, 2),
    b = filled(be, H, 3),
    a = filled(be, ROWS * D, 4),
    dy = filled(be, ROWS * D, 5),
    res = filled(be, ROWS * D, 6),
    gamma = filled(be, D, 7),
    beta = filled(be, D, 8);
  const h = be.alloc(ROWS * H, 'f32'),
    z = be.alloc(ROWS * H, 'f32'),
    sum = be.alloc(ROWS * D, 'f32'),
    out = be.alloc(ROWS * D, 'f32'),
    dx = be.alloc(ROWS * D, 'f32'),
    dx2 = be.alloc(ROWS * D, 'f32'),
    mean = be.alloc(ROWS, 'f32'),
    rstd = be.alloc(ROWS, 'f32');
  const fc1 = matmulParams({ batch: 1, m: ROWS, n: H, k: D, transB: true, bias: b });
  const shape = [ROWS, D],
    strides = [D, 1];
  be.layerNorm(x, gamma, beta, out, mean, rstd, ROWS, D, 1e-6);
  const pairs: Pair[] = [
    {
      name: `fc1 + GELU keeping z, ${ROWS}x${H}x${D}`,
      fused: () => be.matmul(x, w, h, { ...fc1, activation: 'gelu', preActivation: z }),
      separate: () => {
        be.matmul(x, w, z, fc1);
        be.unary('gelu', z, h, ROWS * H, 0, 0);
      },
    },
    {
      name: `residual add + layerNorm, ${ROWS}x${D}`,
      fused: () => be.addLayerNorm(x, a, ROWS, sum, gamma, beta, out, mean, rstd, ROWS, D, 1e-6),
      separate: () => {
        be.binary('add', x, a, sum, shape, strides, strides);
        be.layerNorm(sum, gamma, beta, out, mean, rstd, ROWS, D, 1e-6);
      },
    },
    {
      name: `layerNormGrad + pending gradient, ${ROWS}x${D}`,
      fused: () => be.layerNormGrad(x, gamma, mean, rstd, dy, dx, null, null, ROWS, D, res),
      separate: () => {
        be.layerNormGrad(x, gamma, mean, rstd, dy, dx2, null, null, ROWS, D);
        be.binary('add', res, dx2, dx, shape, strides, strides);
      },
    },
  ];
  try {
    for (const p of pairs) {
      const gpu = be.kind === 'webgpu';
      const [[f, fc], [s, sc]] = await timePair(be, p, quickMode() ? 3 : 15, gpu ? 3 : 10);
      const cells = [f, s].map((v) => v.toFixed(3));
      const cpu = [fc, sc].map((v) => v.toFixed(3));
      rows.push([label, p.name, ...cells, `${(s / f).toFixed(2)}x`, ...cpu, `${(sc / fc).toFixed(2)}x`]);
      console.log(`${label}: ${p.name}: fused ${cells[0]} ms (CPU ${cpu[0]}), separate ${cells[1]} ms (CPU ${cpu[1]})`);
    }
  } finally {
    for (const st of [x, w, b, a, dy, res, gamma, beta, h, z, sum, out, dx, dx2, mean, rstd]) be.free(st);
  }
}

export async function fusionsSuite(): Promise<SuiteReport> {
  const rows: (string | number)[][] = [];
  for (const threads of [1, 2]) {
    const be = await WasmBackend.create({ build: 'relaxed', threads });
    try {
      await runOn(be, `wasm relaxed ${threads}t`, rows);
    } finally {
      be.destroy();
    }
  }
  let gpu: WebGPUBackend | null = null;
  try {
    gpu = await WebGPUBackend.create();
  } catch (e) {
    console.log(`fusions: WebGPU not timed (${(e as Error).message})`);
  }
  if (gpu) {
    try {
      await runOn(gpu, `webgpu${gpu.software ? ' (software)' : ''}`, rows);
    } finally {
      gpu.destroy();
    }
  }
  const table = markdownTable(
    ['backend', 'case', 'fused ms', 'separate ms', 'separate ÷ fused', 'fused CPU ms', 'separate CPU ms', 'CPU ratio'],
    rows,
  );
  return { summaries: [], table, details: rows };
}
