// copyStrided on copies large enough that the wasm backend splits their rows across threads at
// arbitrary points: permutes like attention's head split, slices with an offset, rows of 1 to 70
// contiguous words (the short-row vector path and memory.copy) and a strided last dim. Checked
// word for word against a direct index computation.
import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { contiguousStrides, numel } from '../../src/backend/strided.js';

interface Case {
  name: string;
  /** The source tensor's shape (contiguous). */
  src: number[];
  /** Output dims as source dims (a permutation), with per-dim start offsets and sizes. */
  perm: number[];
  start?: number[];
  size?: number[];
}

const CASES: Case[] = [
  { name: 'attention qkv split [B,T,3,H,Dh] → [3,B,H,T,Dh], Dh 16', src: [37, 50, 3, 4, 16], perm: [2, 0, 3, 1, 4] },
  { name: 'heads merged back [B,H,T,Dh] → [B,T,H,Dh], Dh 64', src: [29, 3, 50, 64], perm: [0, 2, 1, 3] },
  { name: 'odd rows of 7 words, rank 6', src: [3, 5, 7, 11, 13, 7], perm: [4, 2, 3, 0, 1, 5] },
  { name: 'rows of 70 words (memory.copy) under a permute', src: [41, 23, 70], perm: [1, 0, 2] },
  { name: 'strided last dim (2-D transpose)', src: [257, 301], perm: [1, 0] },
  {
    name: 'slice with offsets, rows of 5 words',
    src: [64, 50, 3, 9],
    perm: [0, 1, 2, 3],
    start: [3, 1, 1, 2],
    size: [60, 49, 2, 5],
  },
  {
    name: 'single-word rows (transpose of a column slice)',
    src: [3000, 40],
    perm: [1, 0],
    start: [0, 3],
    size: [3000, 1],
  },
];

function run(c: Case): {
  shape: number[];
  srcOffset: number;
  srcStrides: number[];
  expected: (src: Int32Array) => Int32Array;
} {
  const cs = contiguousStrides(c.src);
  const start = c.start ?? c.src.map(() => 0);
  const size = c.size ?? c.src;
  const shape = c.perm.map((p) => size[p]);
  const srcStrides = c.perm.map((p) => cs[p]);
  const srcOffset = start.reduce((s, x, d) => s + x * cs[d], 0);
  const expected = (src: Int32Array) => {
    const n = numel(shape);
    const out = new Int32Array(n);
    for (let k = 0; k < n; k++) {
      let r = k,
        off = srcOffset;
      for (let d = shape.length - 1; d >= 0; d--) {
        off += (r % shape[d]) * srcStrides[d];
        r = Math.floor(r / shape[d]);
      }
      out[k] = src[off];
    }
    return out;
  };
  return { shape, srcOffset, srcStrides, expected };
}

conformance('copyStrided, thread-split sizes', (test, be) => {
  for (const c of CASES) {
    test(c.name, async () => {
      const { shape, srcOffset, srcStrides, expected } = run(c);
      const n = numel(c.src),
        m = numel(shape);
      const src = be().alloc(n, 'i32'),
        dst = be().alloc(m + 8, 'i32');
      try {
        const data = Int32Array.from({ length: n }, (_, i) => i * 7 + 3);
        be().upload(src, data);
        be().upload(dst, new Int32Array(m + 8).fill(-1));
        // A destination offset of 3 with contiguous strides, so rows start off 16-byte alignment.
        be().copyStrided(src, dst, shape, srcOffset, srcStrides, 3, contiguousStrides(shape));
        const got = (await be().download(dst)) as Int32Array;
        const want = expected(data);
        assert.equal(Array.from(got.subarray(0, 3)), [-1, -1, -1], 'words before the destination offset');
        assert.equal(Array.from(got.subarray(3 + m)), [-1, -1, -1, -1, -1], 'words after the copy');
        for (let k = 0; k < m; k++) {
          if (got[3 + k] !== want[k])
            assert.unreachable(`${c.name}: element ${k} of [${shape}] is ${got[3 + k]}, expected ${want[k]}`);
        }
      } finally {
        be().free(src);
        be().free(dst);
      }
    });
  }
});
