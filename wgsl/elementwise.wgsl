// Elementwise kernels: fill, unary ops and their gradients, strided binary ops and where.
// Op codes are override constants (see UNARY_CODES / BINARY_CODES in src/backend/backend.ts), so
// each op is its own specialised pipeline. Grids are 2-D so n may exceed 65535 workgroups.

override OP: u32 = 0u;
// The strided kernels walk only the last DIMS of the 6 collapsed dimensions (the caller passes the
// count collapseDims left, so the others are 1), and the outermost of those needs no division.
// llvmpipe runs an integer division lane by lane (no SIMD divide), so the walk over all 6 was the
// cost of a binary op: a contiguous add of 204800 (DIMS 1) went from 5443 to 1152 us. In the
// vit_cpu batch-8 DINO step (each kernel submitted on its own, with PER below): the add of 51200
// 1351 -> 508 us, a broadcast mul of 65536 1575 -> 613 us.
override DIMS: u32 = 6u;
// Consecutive elements per invocation. Software adapters take 4 (src/backend/webgpu/elementwise.ts):
// llvmpipe pays per invocation, and a fill of 204800 went from 482 to 264 us with 4, 1 Mi floats
// from 3076 to 1629 us (8 and 16 gained little more); ops whose arithmetic dominates gain little
// (gelu of 51200: 1284 -> 1197 us). A GPU keeps 1, so neighbouring invocations read neighbouring
// addresses.
override PER: u32 = 1u;
const WG: u32 = 256u;

struct Flat { n: u32, a: f32, b: f32, _pad: u32 };
struct Strided { shape: array<vec4<u32>, 2>, s0: array<vec4<u32>, 2>, s1: array<vec4<u32>, 2>, s2: array<vec4<u32>, 2>, n: u32 };

fn flatIndex(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.y * nwg.x * WG + gid.x;
}

fn at(v: array<vec4<u32>, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26), the formula of erfVec in assembly/common.ts.
fn erf(x: f32) -> f32 {
  let s = select(1.0, -1.0, x < 0.0);
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let y = 1.0 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-z * z);
  return s * y;
}

fn unaryOp(x: f32, a: f32, b: f32) -> f32 {
  switch OP {
    case 0u: { return -x; }
    case 1u: { return exp(x); }
    case 2u: { return log(x); }
    case 3u: { return sqrt(x); }
    case 4u: { return inverseSqrt(x); }
    case 5u: { return abs(x); }
    case 6u: { return max(x, 0.0); }
    case 7u: { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752)); }
    case 8u: { return tanh(clamp(x, -15.0, 15.0)); }
    case 9u: { return 1.0 / (1.0 + exp(-x)); }
    case 10u: { return powf(x, a); }
    case 11u: { return a * x + b; }
    case 12u: { return min(max(x, a), b); }
    case 13u: { return x * x; }
    case 14u: { return 1.0 / x; }
    default: { return 0.0; }
  }
}

fn unaryDeriv(x: f32, y: f32, a: f32, b: f32) -> f32 {
  switch OP {
    case 0u: { return -1.0; }
    case 1u: { return y; }
    case 2u: { return 1.0 / x; }
    case 3u: { return 0.5 / y; }
    case 4u: { return -0.5 * y * y * y; }
    case 5u: { return sign(x); }
    case 6u: { return select(0.0, 1.0, x > 0.0); }
    case 7u: {
      let cdf = 0.5 * (1.0 + erf(x * 0.70710678118654752));
      return cdf + x * 0.3989422804014327 * exp(-0.5 * x * x);
    }
    case 8u: { return 1.0 - y * y; }
    case 9u: { return y * (1.0 - y); }
    case 10u: { return a * powf(x, a - 1.0); }
    case 11u: { return a; }
    case 12u: { return select(0.0, 1.0, x >= a && x <= b); }
    case 13u: { return 2.0 * x; }
    case 14u: { return -y * y; }
    default: { return 0.0; }
  }
}

// pow with the C semantics the CPU side has for negative bases and integer exponents.
fn powf(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x >= 0.0) { return pow(x, y); }
  if (y == floor(y)) {
    let m = pow(-x, y);
    return select(m, -m, (i32(y) & 1) == 1);
  }
  var nanBits = 0x7fc00000u; // a var, so it is not constant-folded (a NaN constant is an error)
  return bitcast<f32>(nanBits);
}

fn binaryOp(a: f32, b: f32) -> f32 {
  switch OP {
    case 0u: { return a + b; }
    case 1u: { return a - b; }
    case 2u: { return a * b; }
    case 3u: { return a / b; }
    case 4u: { return max(a, b); }
    case 5u: { return min(a, b); }
    case 6u: { return powf(a, b); }
    case 7u: { return select(0.0, 1.0, a > b); }
    case 8u: { return select(0.0, 1.0, a >= b); }
    case 9u: { return select(0.0, 1.0, a < b); }
    case 10u: { return select(0.0, 1.0, a <= b); }
    case 11u: { return select(0.0, 1.0, a == b); }
    default: { return 0.0; }
  }
}

@group(0) @binding(0) var<storage, read_write> fOut: array<f32>;
@group(0) @binding(1) var<uniform> fP: Flat;

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i0 = flatIndex(gid, nwg) * PER;
  for (var i = i0; i < min(i0 + PER, fP.n); i++) { fOut[i] = fP.a; }
}

@group(0) @binding(0) var<storage, read> uX: array<f32>;
@group(0) @binding(1) var<storage, read_write> uOut: array<f32>;
@group(0) @binding(2) var<uniform> uP: Flat;

@compute @workgroup_size(256)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i0 = flatIndex(gid, nwg) * PER;
  for (var i = i0; i < min(i0 + PER, uP.n); i++) { uOut[i] = unaryOp(uX[i], uP.a, uP.b); }
}

@group(0) @binding(0) var<storage, read> gX: array<f32>;
@group(0) @binding(1) var<storage, read> gY: array<f32>;
@group(0) @binding(2) var<storage, read> gDy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gDx: array<f32>;
@group(0) @binding(4) var<uniform> gP: Flat;

@compute @workgroup_size(256)
fn unaryGrad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i0 = flatIndex(gid, nwg) * PER;
  for (var i = i0; i < min(i0 + PER, gP.n); i++) { gDx[i] = gDy[i] * unaryDeriv(gX[i], gY[i], gP.a, gP.b); }
}

@group(0) @binding(0) var<storage, read> bA: array<f32>;
@group(0) @binding(1) var<storage, read> bB: array<f32>;
@group(0) @binding(2) var<storage, read_write> bOut: array<f32>;
@group(0) @binding(3) var<uniform> bP: Strided;

@compute @workgroup_size(256)
fn binary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i0 = flatIndex(gid, nwg) * PER;
  for (var i = i0; i < min(i0 + PER, bP.n); i++) {
    var r = i;
    var oa = 0u;
    var ob = 0u;
    for (var d = 5u; d > 6u - DIMS; d--) {
      let n = at(bP.shape, d);
      let c = r % n;
      r = r / n;
      oa += c * at(bP.s0, d);
      ob += c * at(bP.s1, d);
    }
    oa += r * at(bP.s0, 6u - DIMS);
    ob += r * at(bP.s1, 6u - DIMS);
    bOut[i] = binaryOp(bA[oa], bB[ob]);
  }
}

@group(0) @binding(0) var<storage, read> wC: array<f32>;
@group(0) @binding(1) var<storage, read> wA: array<f32>;
@group(0) @binding(2) var<storage, read> wB: array<f32>;
@group(0) @binding(3) var<storage, read_write> wOut: array<f32>;
@group(0) @binding(4) var<uniform> wP: Strided;

@compute @workgroup_size(256)
fn where_(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i0 = flatIndex(gid, nwg) * PER;
  for (var i = i0; i < min(i0 + PER, wP.n); i++) {
    var r = i;
    var oc = 0u;
    var oa = 0u;
    var ob = 0u;
    for (var d = 5u; d > 6u - DIMS; d--) {
      let n = at(wP.shape, d);
      let c = r % n;
      r = r / n;
      oc += c * at(wP.s0, d);
      oa += c * at(wP.s1, d);
      ob += c * at(wP.s2, d);
    }
    oc += r * at(wP.s0, 6u - DIMS);
    oa += r * at(wP.s1, 6u - DIMS);
    ob += r * at(wP.s2, 6u - DIMS);
    wOut[i] = select(wB[ob], wA[oa], wC[oc] != 0.0);
  }
}
