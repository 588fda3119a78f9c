// Counter-based seeding: every random stream is keyed by integers (seed, epoch, sample, crop, ...), so
// a sample's augmentation never depends on which worker made it, on prefetch depth or on what was
// drawn before it. That is what makes batches reproducible and a resumed run bit-identical.

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3-style combination of 32-bit words (salted so the three state words differ). */
export function hashWords(salt: number, words: readonly number[]): number {
  let h = salt >>> 0;
  for (const w of words) {
    let k = Math.imul(w | 0, 0xcc9e2d51);
    k = rotl(k, 15);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = rotl(h, 13);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return fmix32(h ^ words.length);
}

/** A seed must survive the round trip through a checkpoint exactly, hence safe non-negative integers. */
export function checkSeed(seed: number, what = 'seed'): number {
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new RangeError(`${what} must be a non-negative safe integer, got ${seed}`);
  return seed;
}

/** The seed as two 32-bit words, so seeds above 2^32 still give distinct streams. */
export function seedWords(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / 0x100000000) >>> 0];
}

/** sfc32: small, fast, passes PractRand far beyond what one augmentation stream draws. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  /** `key` is any list of integers; equal keys give equal streams. */
  constructor(key: readonly number[]) {
    this.a = hashWords(0x9e3779b9, key);
    this.b = hashWords(0x7f4a7c15, key);
    this.c = hashWords(0x243f6a88, key);
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = rotl(this.c, 21);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 0x100000000;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** Uniform integer in [0, n). The bias of floor(float*n) is below 2^-32 * n: irrelevant here. */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  chance(p: number): boolean {
    return p >= 1 || (p > 0 && this.float() < p);
  }
}

/** A seeded Fisher–Yates permutation of [0, n). */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
