// Child process of test/webgpu-faults.test.ts: loses the WebGPU device in the middle of use
// (GPUDevice.destroy(), the one loss a program can cause; the runtime treats it like any other)
// and records how each kind of call fails afterwards. It deliberately never calls be.destroy(), so
// the parent also sees whether a process with a lost device exits by itself. Prints one JSON line.
import { WebGPUBackend } from '../../src/backend/webgpu/index.js';
import { BackendError } from '../../src/backend/backend.js';
import { tensor } from '../../src/tensor/create.js';
import { add } from '../../src/tensor/ops/elementwise.js';
import { matmul } from '../../src/tensor/ops/matmul.js';
import type { Tensor } from '../../src/tensor/tensor.js';

interface Outcome {
  ok: boolean;
  name?: string;
  kernel?: string;
  message?: string;
}

const HANG_MS = 10_000;

/** Runs fn and reports how it ended; a promise that neither settles within HANG_MS counts as a hang. */
async function outcome(fn: () => unknown): Promise<Outcome | 'hang'> {
  try {
    const r = fn();
    if (r instanceof Promise) {
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<'hang'>((resolve) => {
        timer = setTimeout(() => resolve('hang'), HANG_MS);
      });
      const v = await Promise.race([r, hang]);
      clearTimeout(timer);
      if (v === 'hang') return 'hang';
    }
    return { ok: true };
  } catch (e) {
    return {
      ok: false,
      name: (e as Error).name,
      kernel: e instanceof BackendError ? e.kernel : undefined,
      message: (e as Error).message,
    };
  }
}

const be = await WebGPUBackend.create({ adapter: 'any' });
const a = tensor(
  Float32Array.from({ length: 64 * 64 }, (_, i) => (i % 7) / 7),
  [64, 64],
  be,
);
const b = matmul(a, a);
const before = (await b.data())[0];

// Work is queued and a read is in flight when the device goes.
const c = matmul(a, b);
const pendingRead = c.data();
be.rt.device.destroy();
// Until the loss is noticed, ops may still encode into the dead device; reading them must fail too.
let late: Tensor | null = null;
let lateEncode: Outcome;
try {
  late = add(b, b);
  lateEncode = { ok: true };
} catch (e) {
  lateEncode = { ok: false, name: (e as Error).name, message: (e as Error).message };
}
const read = await outcome(() => pendingRead);
const lateRead = late ? await outcome(() => late!.data()) : null;
// Every later call fails at once, naming itself.
const op = await outcome(() => add(a, a));
const upload = await outcome(() => tensor([1, 2, 3], [3], be));
const sync = await outcome(() => be.sync());
const readOld = await outcome(() => b.data());
// Freeing still works (tensors are disposed on the way out of a failed step).
const dispose = await outcome(() => {
  for (const t of [a, b, c, late]) t?.dispose();
});
console.log(
  JSON.stringify({ before, lateEncode, read, lateRead, op, upload, sync, readOld, dispose, memory: be.memory() }),
);
