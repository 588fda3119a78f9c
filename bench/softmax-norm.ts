// Benny suite for the softmax and norm kernel families at DINO-head and ViT sizes: softmax and
// log-softmax over K = 65536 prototypes, their gradients, and layer norm forward/backward over
// ViT-S tokens. Runs on wasm (all cores, best build) and, where there is one, a hardware WebGPU
// adapter (the software one is for correctness only, so it is not timed).
import b from 'benny';
import type { Summary } from 'benny/lib/internal/common-types.js';
import type { Backend, Storage } from '../src/backend/backend.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { WebGPUBackend } from '../src/backend/webgpu/index.js';

const SOFTMAX: [number, number] = [64, 65536]; // batch × prototypes (DINO out_dim)
const NORM: [number, number] = [64 * 197, 384]; // batch × ViT-S/16 tokens, embedding width

function filled(be: Backend, n: number, seed: number): Storage {
  const s = be.alloc(n, 'f32');
  const d = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    d[i] = (a / 4294967296) * 8 - 4;
  }
  be.upload(s, d);
  return s;
}

async function runOn(be: Backend, label: string): Promise<Summary> {
  const [sr, sc] = SOFTMAX;
  const [nr, nc] = NORM;
  const x = filled(be, sr * sc, 1),
    y = be.alloc(sr * sc, 'f32'),
    dy = filled(be, sr * sc, 2),
    dx = be.alloc(sr * sc, 'f32');
  const lx = filled(be, nr * nc, 3),
    ly = be.alloc(nr * nc, 'f32'),
    ldy = filled(be, nr * nc, 4),
    ldx = be.alloc(nr * nc, 'f32');
  const gamma = filled(be, nc, 5),
    beta = filled(be, nc, 6),
    dgamma = be.alloc(nc, 'f32'),
    dbeta = be.alloc(nc, 'f32');
  const mean = be.alloc(nr, 'f32'),
    rstd = be.alloc(nr, 'f32');
  be.softmax(x, y, sr, sc, false);
  be.layerNorm(lx, gamma, beta, ly, mean, rstd, nr, nc, 1e-5);
  await be.sync();
  // each case waits for the device, so WebGPU timings include the work and not only its encoding
  const timed = (fn: () => void) => async () => {
    fn();
    await be.sync();
  };
  try {
    return await b.suite(
      `softmax/norm kernels [${label}]`,
      b.add(
        `softmax ${sr}x${sc}`,
        timed(() => be.softmax(x, y, sr, sc, false)),
      ),
      b.add(
        `logSoftmax ${sr}x${sc}`,
        timed(() => be.softmax(x, y, sr, sc, true)),
      ),
      b.add(
        `softmaxGrad ${sr}x${sc}`,
        timed(() => be.softmaxGrad(y, dy, dx, sr, sc, false)),
      ),
      b.add(
        `layerNorm ${nr}x${nc}`,
        timed(() => be.layerNorm(lx, gamma, beta, ly, mean, rstd, nr, nc, 1e-5)),
      ),
      b.add(
        `layerNormGrad ${nr}x${nc} (dx, dgamma, dbeta)`,
        timed(() => be.layerNormGrad(lx, gamma, mean, rstd, ldy, ldx, dgamma, dbeta, nr, nc)),
      ),
      b.configure({ cases: { minTime: 0.5, maxTime: 2 } }),
      b.cycle(),
      b.complete(),
    );
  } finally {
    for (const s of [x, y, dy, dx, lx, ly, ldy, ldx, gamma, beta, dgamma, dbeta, mean, rstd]) be.free(s);
  }
}

/** Runs the suite on every available backend; one benny summary per backend. */
export async function softmaxNormSuite(): Promise<Summary[]> {
  const results: Summary[] = [];
  const wasm = await WasmBackend.create();
  try {
    results.push(await runOn(wasm, wasm.description));
  } finally {
    wasm.destroy();
  }
  let gpu: Backend | null = null;
  try {
    gpu = await WebGPUBackend.create({ adapter: 'hardware' });
  } catch (e) {
    console.log(`softmax/norm: WebGPU not timed (${(e as Error).message})`);
  }
  if (gpu) {
    try {
      results.push(await runOn(gpu, gpu.description));
    } finally {
      gpu.destroy();
    }
  }
  return results;
}
