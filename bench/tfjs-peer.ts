// The peer the wasm kernels are measured against: @tensorflow/tfjs-backend-wasm (XNNPACK) on one
// thread, loading its SIMD build from node_modules (tfjs cannot use threads under Node).
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

export interface Peer {
  label: string;
  /** Random operands for one product shape; run() computes it once (synchronously, as tfjs-wasm does). */
  operands(
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    random: (n: number, seed: number) => Float32Array,
  ): { run: () => void; dispose: () => void };
  destroy(): void;
}

export async function createTfjsPeer(): Promise<Peer> {
  const tf = await import('@tensorflow/tfjs-core');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'))}/`);
  wasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs could not initialise its wasm backend');
  await tf.ready();
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  return {
    label: `tfjs-wasm${simd ? '' : ' (no SIMD)'} 1t`,
    operands(batch, m, n, k, transA, transB, random) {
      const shapeA = transA ? [k, m] : [m, k],
        shapeB = transB ? [n, k] : [k, n];
      const lead = batch > 1 ? [batch] : [];
      const a = tf.tensor(random(batch * m * k, 1), [...lead, ...shapeA]);
      const b = tf.tensor(random(batch * k * n, 2), [...lead, ...shapeB]);
      return {
        run: () => tf.matMul(a, b, transA, transB).dispose(),
        dispose: () => {
          a.dispose();
          b.dispose();
        },
      };
    },
    destroy: () => tf.engine().reset(),
  };
}
