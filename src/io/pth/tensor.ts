// Tensors as they come out of (and go into) a .pth file, and the dtypes both sides know.
//
// dtype names and element types are those of src/io/safetensors.ts, so a loaded checkpoint can be
// re-saved as safetensors without conversion: F32 → Float32Array, F64 → Float64Array, F16 and BF16
// → Float32Array (decoded exactly), I64 → BigInt64Array (always: lossless whatever the values),
// I32/I16/I8/U8 → their typed arrays, BOOL → Uint8Array of 0/1.
import type { SafetensorsDtype, TensorData } from '../safetensors.js';

export type PthDtype = Extract<
  SafetensorsDtype,
  'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL'
>;

/** A tensor of a checkpoint: contiguous, row-major data. */
export class PthTensor {
  constructor(
    public dtype: PthDtype,
    public shape: number[],
    public data: TensorData,
    /** Saved as an nn.Parameter / with requires_grad (writePth saves such a tensor as a Parameter). */
    public requiresGrad = false,
  ) {}
}

/** Anything writePth accepts as a tensor: a PthTensor, or a plain object with these fields. */
export interface PthTensorLike {
  dtype: PthDtype;
  shape: readonly number[];
  data: TensorData;
  requiresGrad?: boolean;
}

type RawCtor = {
  new (length: number): RawArray;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): RawArray;
};
export type RawArray =
  Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface DtypeInfo {
  /** torch's legacy storage class name, used in persistent ids: torch.<storage>. */
  storage: string;
  size: number;
  /** The typed array over the raw stored elements (bits for F16/BF16). */
  raw: RawCtor;
}

export const PTH_DTYPES: Record<PthDtype, DtypeInfo> = {
  F32: { storage: 'FloatStorage', size: 4, raw: Float32Array },
  F64: { storage: 'DoubleStorage', size: 8, raw: Float64Array },
  F16: { storage: 'HalfStorage', size: 2, raw: Uint16Array },
  BF16: { storage: 'BFloat16Storage', size: 2, raw: Uint16Array },
  I64: { storage: 'LongStorage', size: 8, raw: BigInt64Array },
  I32: { storage: 'IntStorage', size: 4, raw: Int32Array },
  I16: { storage: 'ShortStorage', size: 2, raw: Int16Array },
  I8: { storage: 'CharStorage', size: 1, raw: Int8Array },
  U8: { storage: 'ByteStorage', size: 1, raw: Uint8Array },
  BOOL: { storage: 'BoolStorage', size: 1, raw: Uint8Array },
};

export const DTYPE_OF_STORAGE: ReadonlyMap<string, PthDtype> = new Map(
  (Object.keys(PTH_DTYPES) as PthDtype[]).map((d) => [PTH_DTYPES[d].storage, d]),
);

/**
 * Copies the elements a strided view selects (torch's as_strided: element i_0..i_{n-1} is
 * src[offset + Σ i_k·stride_k]) into a new contiguous row-major array. The caller has checked that
 * every index is in range.
 */
export function gather(src: RawArray, offset: number, shape: readonly number[], stride: readonly number[]): RawArray {
  const numel = shape.reduce((a, d) => a * d, 1);
  const Ctor = src.constructor as RawCtor;
  const out = new Ctor(numel);
  if (numel === 0) return out;
  const rank = shape.length;
  if (rank === 0) {
    (out as Float64Array)[0] = (src as Float64Array)[offset];
    return out;
  }
  let contiguous = true;
  for (let k = rank - 1, expect = 1; k >= 0; k--) {
    if (shape[k] !== 1 && stride[k] !== expect) contiguous = false;
    expect *= shape[k];
  }
  if (contiguous) {
    (out as Float64Array).set((src as Float64Array).subarray(offset, offset + numel));
    return out;
  }
  const inner = shape[rank - 1];
  const innerStride = stride[rank - 1];
  const idx = new Array<number>(rank - 1).fill(0);
  let base = offset;
  const o = out as Float64Array;
  const s = src as Float64Array;
  for (let pos = 0; pos < numel; pos += inner) {
    for (let j = 0, p = base; j < inner; j++, p += innerStride) o[pos + j] = s[p];
    // Odometer over the outer dimensions, last one fastest.
    for (let k = rank - 2; k >= 0; k--) {
      if (++idx[k] < shape[k]) {
        base += stride[k];
        break;
      }
      base -= stride[k] * (shape[k] - 1);
      idx[k] = 0;
    }
  }
  return out;
}
