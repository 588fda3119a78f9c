// IEEE binary16 (F16) and bfloat16 (BF16) conversions for checkpoints. Encoding rounds to nearest,
// ties to even, bit-for-bit like PyTorch's CPU casts (c10::Half and c10::BFloat16), so a tensor
// saved here as F16/BF16 has the same bytes as one PyTorch would save; NaN becomes the canonical
// quiet NaN each of those casts produces (0x7e00 with the sign kept for F16, 0x7fc0 for BF16;
// PyTorch's vectorised CPU kernel writes 0xffff for a BF16 NaN instead, equally a NaN).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0];
}

export function f32ToF16Bits(x: number): number {
  const w = bitsOf(x);
  const sign = (w >>> 16) & 0x8000;
  const exp = (w >>> 23) & 0xff;
  const mant = w & 0x7fffff;
  if (exp === 0xff) return sign | (mant !== 0 ? 0x7e00 : 0x7c00);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Below 2^-25 even the largest value rounds to zero; exactly 2^-25 is a tie that goes to even (0).
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) !== 0)) h++;
    return sign | h; // a carry out of the subnormal range lands exactly on the smallest normal
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry into the exponent is right, up to ±inf
  return sign | h;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

export function f32ToBf16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  const w = bitsOf(x);
  // Cannot overflow 32 bits: the largest non-NaN pattern (−inf, 0xff800000) plus 0x8000 stays below 2^32.
  return ((w + 0x7fff + ((w >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

let f16Table: Float32Array | undefined;

/** Decodes F16 bit patterns through a 64 Ki-entry table: checkpoints hold millions of values. */
export function decodeF16(bits: Uint16Array): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  const t = f16Table;
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]];
  return out;
}

export function encodeF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]);
  return out;
}

export function decodeBf16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const w = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) w[i] = bits[i] << 16;
  return out;
}

export function encodeBf16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToBf16Bits(values[i]);
  return out;
}
