// `protodino bench gpu`: what the WebGPU backend does on this machine's adapter, in the units a
// GPU is judged by: square f32 matmul GFLOP/s at n = 1024, 2048, 4096; ViT attention forward and
// backward at T = 197 tokens, head size 64 (vit_small's 6 heads, DINO's 224-px crops with patch 16), the
// flash kernel and the per-row probs kernel it replaced;
// the DINO step in images/s at vit_cpu (batch 64) and vit_small at the largest batch that fits (up
// to 1024). On a software adapter the same measures run at reduced sizes (vit_small not at all),
// and every line says so: there they only show that each path works. Every line names the adapter.
import { WebGPUBackend } from '../src/backend/webgpu/index.js';
import { probsAttention } from '../src/backend/webgpu/attention.js';
import { matmulParams, type Storage } from '../src/backend/backend.js';
import { benchConfig, timeDinoStep } from './dino-step.js';
import { markdownTable, quickMode, type SuiteReport } from './harness.js';

interface Row {
  measure: string;
  size: string;
  value: number;
  unit: string;
  /** Seconds per call or step (median). */
  seconds: number;
  reduced: boolean;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Median seconds per call of `fn`, timed over `reps` calls between syncs, `samples` times, after one warm-up. */
async function timeKernel(gpu: WebGPUBackend, fn: () => void, reps: number, samples: number): Promise<number> {
  fn();
  await gpu.sync();
  const times: number[] = [];
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) fn();
    await gpu.sync();
    times.push((performance.now() - t0) / 1000 / reps);
  }
  return median(times);
}

function filled(gpu: WebGPUBackend, n: number, seed: number): Storage {
  const s = gpu.alloc(n, 'f32');
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = (((i * 2654435761 + seed * 40503) >>> 0) / 2 ** 32 - 0.5) * 0.1;
  gpu.upload(s, d);
  return s;
}

async function matmulRows(gpu: WebGPUBackend, reduced: boolean): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of reduced ? [128, 256] : [1024, 2048, 4096]) {
    const a = filled(gpu, n * n, 1),
      b = filled(gpu, n * n, 2),
      c = gpu.alloc(n * n, 'f32');
    const p = matmulParams({ batch: 1, m: n, n, k: n });
    try {
      const sec = await timeKernel(gpu, () => gpu.matmul(a, b, c, p), reduced ? 2 : 10, quickMode() ? 2 : 5);
      rows.push({
        measure: 'matmul',
        size: `n=${n}`,
        value: (2 * n ** 3) / sec / 1e9,
        unit: 'GFLOP/s',
        seconds: sec,
        reduced,
      });
    } finally {
      [a, b, c].forEach((s) => gpu.free(s));
    }
  }
  return rows;
}

async function attentionRows(gpu: WebGPUBackend, reduced: boolean): Promise<Row[]> {
  const T = 197,
    heads = 6,
    headDim = 64,
    B = reduced ? 2 : 64;
  const D = heads * headDim;
  const p = { batch: B, tokens: T, heads, headDim, scale: 1 / Math.sqrt(headDim) };
  const qkv = filled(gpu, B * T * 3 * D, 3),
    out = gpu.alloc(B * T * D, 'f32'),
    saved = gpu.alloc(gpu.attentionSavedLength(p), 'f32'),
    dout = filled(gpu, B * T * D, 4),
    dqkv = gpu.alloc(B * T * 3 * D, 'f32');
  // q·kᵀ and probs·v forward; backward adds dprobs = dout·vᵀ, dv = probsᵀ·dout, dq and dk: twice the work.
  const fwdFlops = 4 * B * heads * T * T * headDim;
  const size = `B=${B} T=${T} heads=${heads} dh=${headDim}`;
  const reps = reduced ? 1 : 10,
    samples = quickMode() ? 2 : 5;
  try {
    const fwd = await timeKernel(gpu, () => gpu.attention(qkv, out, saved, p), reps, samples);
    const bwd = await timeKernel(gpu, () => gpu.attentionGrad(qkv, out, saved, dout, dqkv, p), reps, samples);
    // The baseline: the per-row kernel that saves the softmax (wgsl/attention.wgsl).
    const base = probsAttention(gpu.rt);
    const probs = gpu.alloc(B * heads * T * T, 'f32');
    let baseFwd: number, baseBwd: number;
    try {
      baseFwd = await timeKernel(gpu, () => base.attention(qkv, out, probs, p), reps, samples);
      baseBwd = await timeKernel(gpu, () => base.attentionGrad(qkv, out, probs, dout, dqkv, p), reps, samples);
    } finally {
      gpu.free(probs);
    }
    const row = (measure: string, flops: number, seconds: number): Row => ({
      measure,
      size,
      value: flops / seconds / 1e9,
      unit: 'GFLOP/s',
      seconds,
      reduced,
    });
    return [
      row('attention forward', fwdFlops, fwd),
      row('attention backward', 2 * fwdFlops, bwd),
      row('attention forward (per-row probs kernel)', fwdFlops, baseFwd),
      row('attention backward (per-row probs kernel)', 2 * fwdFlops, baseBwd),
    ];
  } finally {
    [qkv, out, saved, dout, dqkv].forEach((s) => gpu.free(s));
  }
}

async function stepRow(
  gpu: WebGPUBackend,
  arch: 'vit_cpu' | 'vit_small',
  batch: number,
  reduced: boolean,
): Promise<Row> {
  const sampling =
    reduced || quickMode()
      ? { warmup: 1, minSteps: 2, maxSteps: 2, minSeconds: 0 }
      : { warmup: 1, minSteps: 3, maxSteps: 10, minSeconds: 5 };
  const t = await timeDinoStep(gpu, benchConfig(arch, batch), sampling);
  if (!Number.isFinite(t.loss)) throw new Error(`the ${arch} b${batch} step gave a loss of ${t.loss}`);
  return {
    measure: `dino step ${arch}`,
    size: `batch ${batch}`,
    value: t.imagesPerSecond,
    unit: 'images/s',
    seconds: t.medianSeconds,
    reduced,
  };
}

/** vit_small doubling from batch 64 while it fits (an allocation or device error ends the search). */
async function largestVitSmall(gpu: WebGPUBackend, notes: string[]): Promise<Row | null> {
  let best: Row | null = null;
  for (let batch = 64; batch <= (quickMode() ? 64 : 1024); batch *= 2) {
    try {
      best = await stepRow(gpu, 'vit_small', batch, false);
    } catch (e) {
      notes.push(`vit_small batch ${batch} did not fit: ${(e as Error).message}`);
      break;
    }
  }
  return best;
}

export async function gpuSuite(): Promise<SuiteReport> {
  const gpu = await WebGPUBackend.create({ adapter: 'any' });
  const adapter = gpu.description;
  const reduced = gpu.software;
  const notes: string[] = [];
  const rows: Row[] = [];
  const say = (r: Row) =>
    console.log(
      `bench gpu [${adapter}${r.reduced ? '; software adapter: reduced sizes' : ''}] ${r.measure} ${r.size}: ` +
        `${r.value.toFixed(r.value < 10 ? 2 : 1)} ${r.unit} (${(r.seconds * 1000).toFixed(2)} ms)`,
    );
  try {
    if (reduced) console.log(`bench gpu: ${adapter} is a software adapter; every measure runs at reduced sizes`);
    for (const r of await matmulRows(gpu, reduced)) (rows.push(r), say(r));
    for (const r of await attentionRows(gpu, reduced)) (rows.push(r), say(r));
    const cpu = await stepRow(gpu, 'vit_cpu', reduced ? 4 : 64, reduced);
    (rows.push(cpu), say(cpu));
    if (reduced) {
      // One vit_small step takes about a minute on llvmpipe: it would only show what the GPU run shows.
      notes.push('vit_small is not run on a software adapter (about a minute a step)');
    } else {
      const small = await largestVitSmall(gpu, notes);
      if (small) (rows.push(small), say(small));
      else notes.push('vit_small did not run at batch 64');
    }
  } finally {
    gpu.destroy();
  }
  for (const n of notes) console.log(`bench gpu: ${n}`);
  const table = markdownTable(
    ['measure', 'size', 'value', 'unit', 'ms', 'adapter'],
    rows.map((r) => [
      r.measure,
      r.size,
      r.value.toFixed(1),
      r.unit,
      (r.seconds * 1000).toFixed(2),
      adapter + (r.reduced ? ' (reduced)' : ''),
    ]),
  );
  return { summaries: [], table, details: { adapter, software: reduced, rows, notes } };
}
