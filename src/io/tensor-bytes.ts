// A tensor's elements as the little-endian bytes both file formats store (safetensors and PyTorch's
// .pth zip), with the checks both share: shape against data length, half floats given as values or
// as bits, I64 given as Int32Array, and the typed array each dtype needs. Each format names its own
// error (`fail`).
import { encodeBf16, encodeF16 } from '../util/half.js';

// Only `instanceof` and `name` are used: any typed-array class fits.
type TypedArrayClass = { readonly name: string } & (abstract new (...args: never[]) => ArrayBufferView);

export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * `data` (of `shape`, already known to be a typed array) as the bytes of `dtype`, where `raw` is the
 * array type that dtype's elements are stored as; no copy where the data already is that.
 */
export function tensorBytes(
  dtype: string,
  shape: readonly number[],
  data: ArrayBufferView & { length: number },
  raw: TypedArrayClass,
  fail: (msg: string) => never,
): Uint8Array {
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0))
    fail(`shape [${shape}] is not a list of non-negative integers`);
  const numel = shape.reduce((a, d) => a * d, 1);
  if (data.length !== numel) fail(`shape [${shape}] has ${numel} elements but the data has ${data.length}`);
  if (dtype === 'F16' || dtype === 'BF16') {
    if (data instanceof Float32Array) return bytesOf(dtype === 'F16' ? encodeF16(data) : encodeBf16(data));
    if (data instanceof Uint16Array) return bytesOf(data);
    return fail(`${dtype} data must be a Float32Array (values) or a Uint16Array (bits)`);
  }
  if (dtype === 'I64' && data instanceof Int32Array) return bytesOf(BigInt64Array.from(data, (v) => BigInt(v)));
  if (!(data instanceof raw))
    fail(`${dtype} data must be a ${raw.name}, not a ${(data as ArrayBufferView).constructor.name}`);
  if (dtype === 'BOOL' && (data as Uint8Array).some((v) => v > 1)) fail('BOOL data must hold only 0 and 1');
  return bytesOf(data);
}
