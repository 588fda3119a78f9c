// The PyTorch fixtures of test/fixtures/ssl (made by scripts/make-ssl-fixtures.py): inputs stored as
// F16 (exactly the numbers torch used), expected values computed in float64 and stored as F32.
import * as assert from 'uvu/assert';
import type { Backend } from '../../src/backend/backend.js';
import { liveTensors, param, tensor, type Tensor } from '../../src/tensor/index.js';
import { getF32, readSafetensors, type SafetensorsFile } from '../../src/io/safetensors.js';
import { packagePath } from '../../src/util/paths.js';
import { assertClose } from '../helpers/check.js';

export class Fixture {
  readonly file: SafetensorsFile;
  constructor(readonly name: string) {
    this.file = readSafetensors(packagePath('test', 'fixtures', 'ssl', name));
  }

  shape(key: string): number[] {
    const t = this.file.tensors.get(key);
    if (!t) throw new Error(`${this.name}: no tensor '${key}'`);
    return [...t.shape];
  }

  values(key: string): Float32Array {
    return getF32(this.file, key);
  }

  /** A scalar expected value. */
  scalar(key: string): number {
    const v = this.values(key);
    assert.is(v.length, 1, `${this.name}: '${key}' is a scalar`);
    return v[0];
  }

  meta(key: string): string {
    const v = this.file.metadata[key];
    if (v === undefined) throw new Error(`${this.name}: no metadata '${key}'`);
    return v;
  }

  num(key: string): number {
    return Number(this.meta(key));
  }

  tensor(key: string, be: Backend): Tensor {
    return tensor(this.values(key), this.shape(key), be);
  }

  param(key: string, be: Backend): Tensor {
    return param(this.tensor(key, be));
  }

  /** The first `n` rows of a 2-D tensor, as a parameter. */
  paramRows(key: string, n: number, be: Backend): Tensor {
    const [rows, cols] = this.shape(key);
    assert.ok(n <= rows, `${this.name}: '${key}' has ${rows} rows, not ${n}`);
    return param(tensor(this.values(key).subarray(0, n * cols), [n, cols], be));
  }
}

/**
 * The acceptance criterion: agreement with torch's float64 values within 1e-4 relative, plus an
 * absolute floor of `atolScale` × the largest |expected| for elements near zero (where a relative
 * bound would ask float32 for more than it holds).
 */
export function agree(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, atolScale = 1e-6): void {
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  assertClose(actual, expected, { rtol: 1e-4, atol: atolScale * scale }, what);
}

export async function agreeTensor(
  t: Tensor | null,
  expected: ArrayLike<number>,
  what: string,
  atolScale = 1e-6,
): Promise<void> {
  assert.ok(t, `${what}: missing (no gradient reached it?)`);
  agree(await t!.data(), expected, what, atolScale);
}

export function disposeAll(...ts: (Tensor | null | undefined)[]): void {
  for (const t of ts) t?.dispose();
}

/** Runs a test body and asserts it left no tensor alive (every input, output and grad disposed). */
export function leakFree(body: () => Promise<void> | void): () => Promise<void> {
  return async () => {
    const before = liveTensors();
    await body();
    assert.is(liveTensors(), before, 'tensors left alive');
  };
}
