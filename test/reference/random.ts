// Reference for the random family (tests only): Philox-4x32-10 written with BigInt straight from
// Salmon et al. (SC'11), the stream layout of the kernels (position j = word j % 4 of the block for
// counter floor(j / 4), key = seed as two 32-bit words), and the ideal f64 Box-Muller transform.
const MASK = 0xffffffffn;

export function philox4x32(ctr: number[], key: number[]): number[] {
  let c = ctr.map(BigInt);
  let k0 = BigInt(key[0]),
    k1 = BigInt(key[1]);
  for (let r = 0; r < 10; r++) {
    const p0 = 0xd2511f53n * c[0];
    const p1 = 0xcd9e8d57n * c[2];
    c = [((p1 >> 32n) ^ c[1] ^ k0) & MASK, p1 & MASK, ((p0 >> 32n) ^ c[3] ^ k1) & MASK, p0 & MASK];
    k0 = (k0 + 0x9e3779b9n) & MASK;
    k1 = (k1 + 0xbb67ae85n) & MASK;
  }
  return c.map(Number);
}

/** The four words of the block holding stream position j. */
function block(seed: number, j: number): number[] {
  const b = BigInt(Math.floor(j / 4));
  const s = BigInt(seed);
  return philox4x32([Number(b & MASK), Number(b >> 32n), 0, 0], [Number(s & MASK), Number(s >> 32n)]);
}

export function words(n: number, seed: number, offset: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(block(seed, offset + i)[(offset + i) % 4]);
  return out;
}

/** Uniform in [a, b) with the kernels' f32 arithmetic: a + (b − a)·top24·2^-24. */
export function uniformRef(n: number, seed: number, offset: number, a: number, b: number): Float32Array {
  const fa = Math.fround(a),
    fb = Math.fround(b),
    width = Math.fround(fb - fa);
  return Float32Array.from(words(n, seed, offset), (w) => Math.fround(fa + Math.fround(width * ((w >>> 8) / 2 ** 24))));
}

export function bernoulliRef(n: number, seed: number, offset: number, p: number): Float32Array {
  return Float32Array.from(words(n, seed, offset), (w) => ((w >>> 8) / 2 ** 24 < Math.fround(p) ? 1 : 0));
}

/**
 * mean + std·z with z = sqrt(−2 ln u)·(cos | sin)(2π v) in f64: u = (top24(w0) + 1)·2^-24 and
 * v = top24(w1)·2^-24 from words 0,1 (lanes 0, 1) or 2,3 (lanes 2, 3) of the block.
 */
export function normalRef(n: number, seed: number, offset: number, mean: number, std: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const j = offset + i;
    const w = block(seed, j);
    const lane = j % 4;
    const u = ((w[lane & 2] >>> 8) + 1) / 2 ** 24;
    const v = (w[lane | 1] >>> 8) / 2 ** 24;
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = mean + std * r * ((lane & 1) === 0 ? Math.cos(2 * Math.PI * v) : Math.sin(2 * Math.PI * v));
  }
  return out;
}

/** Φ(x) by Abramowitz & Stegun 26.2.17 (|error| < 7.5e-8), for distribution checks. */
export function normalCdfRef(x: number): number {
  const t = 1 / (1 + 0.2316419 * Math.abs(x));
  const poly = t * (0.31938153 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
  const upper = (Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI)) * poly;
  return x >= 0 ? 1 - upper : upper;
}
