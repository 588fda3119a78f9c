// Shared by the eval tests: which backends they run on, and the fixture made by
// scripts/make-eval-fixtures.py (torch / numpy results on fixed features).
import * as assert from 'uvu/assert';
import { ALL_BACKENDS, selectedBackends, type BackendCase } from '../helpers/backends.js';
import { readSafetensors, type SafetensorsFile } from '../../src/io/safetensors.js';
import { packagePath } from '../../src/util/paths.js';

/**
 * The evaluation code has no kernels of its own, so one multi-threaded wasm build and WebGPU
 * cover it; PROTODINO_TEST_BACKENDS still picks others.
 */
export function evalBackends(): BackendCase[] {
  if (process.env.PROTODINO_TEST_BACKENDS) return selectedBackends();
  return ALL_BACKENDS.filter((b) => b.name === 'wasm-simd-2t' || b.name === 'webgpu');
}

let file: SafetensorsFile | undefined;

export function fixture(): SafetensorsFile {
  return (file ??= readSafetensors(packagePath('test', 'fixtures', 'eval', 'eval.safetensors'), { verify: true }));
}

/** A fixture tensor's values and shape (F32 → Float32Array, I32 → Int32Array, F64 → Float64Array). */
export function fx<T extends Float32Array | Int32Array | Float64Array>(name: string): { data: T; shape: number[] } {
  const t = fixture().tensors.get(name);
  if (!t) throw new Error(`eval fixture has no tensor '${name}' (rerun scripts/make-eval-fixtures.py)`);
  return { data: t.data as T, shape: t.shape };
}

/** Awaits p and checks that it rejects with a message matching re. */
export async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}
