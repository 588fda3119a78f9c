// Child process of test/webgpu-faults.test.ts: provokes a real buffer-creation failure on the WebGPU
// device by capping this process's address space (prlimit) a little above what it uses, then
// allocates 32 MiB tensors until the device refuses one. Prints one JSON line with what it saw:
// the error, the backend's buffer statistics, and whether the backend still computes after the
// tensors are disposed. A separate process, because a capped address space is no place for the
// test runner (and Dawn aborts the process if its own bookkeeping cannot allocate).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { WebGPUBackend } from '../../src/backend/webgpu/index.js';
import { BackendError } from '../../src/backend/backend.js';
import { empty, full } from '../../src/tensor/create.js';
import { mul } from '../../src/tensor/ops/elementwise.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const ELEMENTS = 8 * 2 ** 20; // 32 MiB of f32
const HEADROOM = 320 * 2 ** 20;
const MAX_TENSORS = 40;

function addressSpace(): number {
  const m = /VmSize:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('no VmSize in /proc/self/status');
  return Number(m[1]) * 1024;
}

async function squareSum(be: WebGPUBackend, n: number, value: number): Promise<number> {
  const x = full([n], value, be);
  const sq = mul(x, x);
  const s = sum(sq);
  try {
    return await s.item();
  } finally {
    for (const t of [x, sq, s]) t.dispose();
  }
}

const be = await WebGPUBackend.create({ adapter: 'any' });
// Compile the kernels used after the failure now: the JIT needs memory that the cap would refuse.
await squareSum(be, 1024, 3);
const baseline = be.memory();
const limit = addressSpace() + HEADROOM;
try {
  execFileSync('prlimit', ['--pid', String(process.pid), `--as=${limit}`]);
} catch (e) {
  throw new Error(`prlimit (util-linux) is needed to cap the address space: ${(e as Error).message}`);
}

const held: Tensor[] = [];
let error: { name: string; kernel?: string; message: string } | null = null;
let atError = be.memory();
for (let i = 0; i < MAX_TENSORS && !error; i++) {
  try {
    held.push(empty([ELEMENTS], be));
    await be.sync();
  } catch (e) {
    error = {
      name: (e as Error).name,
      kernel: e instanceof BackendError ? e.kernel : undefined,
      message: (e as Error).message,
    };
    atError = be.memory();
  }
}
const allocated = held.length;
for (const t of held) t.dispose();
const afterDispose = be.memory();
const value = await squareSum(be, ELEMENTS, 3);
console.log(
  JSON.stringify({
    limit,
    allocated,
    error,
    baseline,
    atError,
    afterDispose,
    value,
    expected: 9 * ELEMENTS,
    afterCompute: be.memory(),
  }),
);
be.destroy();
