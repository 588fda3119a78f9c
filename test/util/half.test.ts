import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  bf16BitsToF32,
  decodeBf16,
  decodeF16,
  encodeBf16,
  encodeF16,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from '../../src/util/half.js';

const test = suite('half precision');

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fromBits = (w: number): number => ((u32[0] = w), f32[0]);
const bitsOf = (x: number): number => ((f32[0] = x), u32[0]);

function fail(msg: string): never {
  assert.unreachable(msg);
  throw new Error(msg);
}

test('F16: every finite pattern and infinity survives decode → encode', () => {
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaNs
    if (f32ToF16Bits(f16BitsToF32(h)) !== h) fail(`0x${h.toString(16)}`);
  }
  assert.is(f16BitsToF32(0x3c00), 1);
  assert.is(f16BitsToF32(0x0001), 2 ** -24);
  assert.is(f16BitsToF32(0x7bff), 65504);
  assert.ok(Object.is(f16BitsToF32(0x8000), -0));
});

test('F16: ties go to even, anything past a tie goes to the nearer value, at every step', () => {
  for (let h = 0; h < 0x7bff; h++) {
    const lo = f16BitsToF32(h);
    const mid = (lo + f16BitsToF32(h + 1)) / 2; // exact in f32: one bit more than a half has
    assert.is(Math.fround(mid), mid);
    const even = h % 2 === 0 ? h : h + 1;
    if (f32ToF16Bits(mid) !== even) fail(`tie above 0x${h.toString(16)}`);
    if (f32ToF16Bits(fromBits(bitsOf(mid) + 1)) !== h + 1) fail(`just above the tie above 0x${h.toString(16)}`);
    if (f32ToF16Bits(fromBits(bitsOf(mid) - 1)) !== h) fail(`just below the tie above 0x${h.toString(16)}`);
    if (f32ToF16Bits(-mid) !== (even | 0x8000)) fail(`negative tie above 0x${h.toString(16)}`);
  }
  assert.is(f32ToF16Bits(2 ** -25), 0); // half of the smallest subnormal: tie to even (zero)
  assert.is(f32ToF16Bits(1e-30), 0);
  assert.is(f32ToF16Bits(-1e-30), 0x8000);
  assert.is(f32ToF16Bits(1e6), 0x7c00);
  assert.is(f32ToF16Bits(65520), 0x7c00); // the tie between 65504 and the next step (65536) is odd → up
  assert.is(f32ToF16Bits(fromBits(bitsOf(65520) - 1)), 0x7bff);
});

test('BF16: every finite pattern survives, ties go to even', () => {
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0) continue;
    if (f32ToBf16Bits(bf16BitsToF32(h)) !== h) fail(`0x${h.toString(16)}`);
    if ((h & 0x7f80) === 0x7f80 || h === 0x7f7f || h === 0xff7f) continue; // no finite value above
    const tie = (h << 16) | 0x8000;
    const even = h % 2 === 0 ? h : h + 1;
    if (f32ToBf16Bits(fromBits(tie)) !== even) fail(`tie above 0x${h.toString(16)}`);
    if (f32ToBf16Bits(fromBits(tie + 1)) !== h + 1) fail(`above the tie above 0x${h.toString(16)}`);
    if (f32ToBf16Bits(fromBits(tie - 1)) !== h) fail(`below the tie above 0x${h.toString(16)}`);
  }
  assert.is(f32ToBf16Bits(3.4e38), 0x7f80); // rounds past the largest finite BF16 to infinity
});

test('NaN becomes the canonical quiet NaN; bulk helpers match the scalar ones', () => {
  assert.is(f32ToF16Bits(NaN), 0x7e00);
  assert.is(f32ToF16Bits(fromBits(0xffc00001)), 0xfe00);
  assert.is(f32ToBf16Bits(fromBits(0xffc00001)), 0x7fc0);
  assert.ok(Number.isNaN(f16BitsToF32(0x7c01)) && Number.isNaN(bf16BitsToF32(0xff81)));
  const values = Float32Array.of(0, -0, 1, -2.5, 1 / 3, 65519, 65520, 2 ** -24, NaN, -Infinity, 1e-40);
  assert.equal([...encodeF16(values)], [...values].map(f32ToF16Bits));
  assert.equal([...encodeBf16(values)], [...values].map(f32ToBf16Bits));
  const bits = Uint16Array.from({ length: 4096 }, (_, i) => (i * 16 + 7) & 0xffff);
  assert.equal([...decodeF16(bits)], [...bits].map(f16BitsToF32));
  assert.equal([...decodeBf16(bits)], [...bits].map(bf16BitsToF32));
});

test.run();
