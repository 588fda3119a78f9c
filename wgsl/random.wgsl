// Counter-based random numbers: Philox-4x32-10, the same stream as assembly/random.ts. Stream
// position j is word j % 4 of the block for counter floor(j / 4) under key (seed lo, seed hi); one
// thread per block. Uniforms and Bernoulli draws use integer ops and exact conversions only, so
// they match the CPU bit for bit; normals use Box-Muller with polynomial log/sin/cos (the built-in
// sin/cos are only bounded to 2^-11 absolute error), so backends agree to a few ulp.
// DIST: 0 uniform [a, b), 1 normal (mean a, std b), 2 bernoulli (1 with probability a).

override DIST: u32 = 0u;
const WG: u32 = 256u;
const TWO_PI_2M24: f32 = 3.7450702e-7; // 2π / 2^24
const LN2: f32 = 0.6931471805599453;

struct P { n: u32, k0: u32, k1: u32, baseLo: u32, baseHi: u32, phase: u32, a: f32, b: f32 };

@group(0) @binding(0) var<storage, read_write> rOut: array<f32>;
@group(0) @binding(1) var<uniform> rP: P;

/** High 32 bits of a 32x32-bit product, from 16-bit halves (WGSL has no 64-bit integers). */
fn mulhi(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}

fn philox(c0In: u32, c1In: u32, k0In: u32, k1In: u32) -> vec4<u32> {
  var c = vec4<u32>(c0In, c1In, 0u, 0u);
  var k0 = k0In;
  var k1 = k1In;
  for (var r = 0; r < 10; r++) {
    let hi0 = mulhi(0xD2511F53u, c.x);
    let lo0 = 0xD2511F53u * c.x;
    let hi1 = mulhi(0xCD9E8D57u, c.z);
    let lo1 = 0xCD9E8D57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

fn unit(v: u32) -> f32 {
  return f32(v >> 8u) * 5.9604645e-8;
}

// ln u for u in (0, 1]: u = m·2^e, m in (√½, √2], ln m = 2·atanh((m−1)/(m+1)).
fn lnUnit(u: f32) -> f32 {
  let bits = bitcast<u32>(u);
  var e = i32(bits >> 23u) - 127;
  var m = bitcast<f32>((bits & 0x7fffffu) | 0x3f800000u);
  if (m > 1.4142135) {
    m = m * 0.5;
    e += 1;
  }
  let s = (m - 1.0) / (m + 1.0);
  let s2 = s * s;
  let series = 1.0 + s2 * (0.33333334 + s2 * (0.2 + s2 * (0.14285715 + s2 * 0.11111111)));
  return f32(e) * LN2 + 2.0 * s * series;
}

// Box-Muller lane of the pair (wu, wa): radius from (top24(wu) + 1)·2^-24 in (0, 1], angle
// 2π·top24(wa)/2^24 reduced exactly with integer ops to [0, π/4].
fn normalPair(wu: u32, wa: u32, odd: bool) -> f32 {
  let u = f32((wu >> 8u) + 1u) * 5.9604645e-8;
  let rad = sqrt(-2.0 * lnUnit(u));
  let j = wa >> 8u;
  let q = j >> 22u;
  let g = j & 0x3fffffu;
  let flip = g > 0x200000u;
  let a = f32(select(g, 0x400000u - g, flip)) * TWO_PI_2M24;
  let a2 = a * a;
  let sa = a * (1.0 + a2 * (-0.16666667 + a2 * (0.008333333 + a2 * (-0.0001984127 + a2 * 2.7557319e-6))));
  let ca = 1.0 + a2 * (-0.5 + a2 * (0.041666668 + a2 * (-0.0013888889 + a2 * (2.4801588e-5 - a2 * 2.7557319e-7))));
  let sp = select(sa, ca, flip);
  let cp = select(ca, sa, flip);
  var c = sp;
  var s = -cp;
  if (q == 0u) { c = cp; s = sp; }
  else if (q == 1u) { c = -sp; s = cp; }
  else if (q == 2u) { c = -cp; s = -sp; }
  return rad * select(c, s, odd);
}

// The largest f32 below b (rounding can carry a + (b − a)·u up to b itself).
fn below(b: f32) -> f32 {
  let bits = bitcast<i32>(b);
  if (b > 0.0) { return bitcast<f32>(bits - 1); }
  if (b == 0.0) { return -1.4e-45; }
  return bitcast<f32>(bits + 1);
}

@compute @workgroup_size(256)
fn random(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.y * nwg.x * WG + gid.x;
  if (t * 4u >= rP.n + rP.phase) { return; }
  let lo = rP.baseLo + t;
  let x = philox(lo, rP.baseHi + select(0u, 1u, lo < rP.baseLo), rP.k0, rP.k1);
  let width = rP.b - rP.a;
  for (var w = 0u; w < 4u; w++) {
    let i = i32(t * 4u + w) - i32(rP.phase);
    if (i < 0 || u32(i) >= rP.n) { continue; }
    var v: f32;
    if (DIST == 0u) {
      v = rP.a + width * unit(x[w]);
      if (v >= rP.b && rP.b > rP.a) { v = below(rP.b); }
    } else if (DIST == 1u) {
      v = rP.a + rP.b * normalPair(x[w & 2u], x[w | 1u], (w & 1u) != 0u);
    } else {
      v = select(0.0, 1.0, unit(x[w]) < rP.a);
    }
    rOut[u32(i)] = v;
  }
}
