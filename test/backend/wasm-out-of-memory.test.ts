// The wasm heap's out-of-memory error names the tensor op that asked and the sizes involved, and
// leaves the backend usable.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WasmBackend } from '../../src/backend/wasm/index.js';
import { requestingOp, WasmOutOfMemoryError } from '../../src/backend/wasm/out-of-memory.js';
import { add, matmul, tensor } from '../../src/tensor/index.js';

test('an output beyond wasm32 memory: the op, the element count and the heap are named', async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    const a = tensor(new Float32Array(70000).fill(1), [70000, 1], be);
    const b = tensor(new Float32Array(70000).fill(1), [1, 70000], be);
    const before = be.memory();
    let err: unknown;
    try {
      matmul(a, b); // [70000, 70000] f32: 19.6 GB
    } catch (e) {
      err = e;
    }
    assert.instance(err, WasmOutOfMemoryError);
    const e = err as WasmOutOfMemoryError;
    assert.is(e.op, 'matmul (in product)');
    assert.is(e.bytes, 70000 * 70000 * 4);
    assert.match(
      e.message,
      /^wasm out of memory in matmul \(in product\): a tensor of 4900000000 f32 elements needs 18692\.0 MiB; \d+(\.\d)?( MiB| bytes) are live in \d+ buffers and .* pooled for reuse, and the heap \(.*\) cannot grow by that much within wasm32's 4096\.0 MiB limit — use a smaller batch or K, or --backend webgpu$/,
    );
    assert.equal(be.memory(), before, 'nothing was allocated by the failed op');
    const c = add(a, a);
    assert.is((await c.data())[0], 2, 'the backend still works');
    for (const t of [a, b, c]) t.dispose();
  } finally {
    be.destroy();
  }
});

test('requestingOp: the outermost tensor-op frame, and the innermost when they differ', () => {
  const stack = [
    'Error',
    '    at WasmRuntime.outOfMemory (file:///p/dist/src/backend/wasm/runtime.js:1:1)',
    '    at WasmBackend.alloc (file:///p/dist/src/backend/wasm/index.js:1:1)',
    '    at empty (file:///p/dist/src/tensor/create.js:1:1)',
    '    at unaryOp (file:///p/dist/src/tensor/ops/elementwise.js:1:1)',
    '    at Object.affine (file:///p/dist/src/tensor/ops/elementwise.js:1:1)',
    '    at layerNorm (file:///p/dist/src/tensor/ops/norm.js:1:1)',
    '    at VisionTransformer.forward (file:///p/dist/src/nn/vit.js:1:1)',
    '    at sum (file:///p/dist/src/tensor/ops/reduce.js:1:1)',
  ].join('\n');
  assert.equal(requestingOp(stack), { op: 'layerNorm', via: 'unaryOp' });
  assert.is(requestingOp('Error\n    at main (file:///p/x.js:1:1)'), null);
});

test.run();
