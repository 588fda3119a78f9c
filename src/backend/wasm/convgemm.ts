// Implicit-GEMM convolutions (assembly/convgemm.ts): this side pads the source, builds the gather
// tables (one offset per reduction entry) and splits the input gradient into stride phases; on small
// maps both run one block of positions at a time with only the taps that read the image (convRoutes).
import type { ConvKernels, ConvParams, Storage } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

// rt.tuning.conv (tuning.ts): forkFlops, multiply-adds per thread below which a fork-join costs
// more than it saves, and chunksPerThread for the panel chunks of gemm(); neither changes a result.

interface Blocking {
  mr: number;
  nr: number;
  kc: number;
  gemmSlot: number;
}
const blockings = new WeakMap<WasmRuntime, Blocking>();

function blocking(rt: WasmRuntime): Blocking {
  let b = blockings.get(rt);
  if (!b) {
    const f = rt.exports.convBlocking;
    b = { mr: f(0), nr: f(1), kc: f(2), gemmSlot: f(3) };
    blockings.set(rt, b);
  }
  return b;
}

/** Scratch taken from the pool for one call and handed back at the end, so kernels never allocate. */
export class Scratch {
  private readonly held: [number, number][] = [];
  constructor(private readonly rt: WasmRuntime) {}
  bytes(n: number, purpose?: string): number {
    const p = this.rt.allocBytes(Math.max(64, n), purpose);
    this.held.push([p, Math.max(64, n)]);
    return p;
  }
  i32(values: Int32Array): number {
    const p = this.bytes(values.length * 4);
    this.rt.i32(p, values.length).set(values);
    return p;
  }
  release(): void {
    for (const [p, n] of this.held) this.rt.freeBytes(p, n);
  }
}

interface Padded {
  ptr: number;
  Hp: number;
  Wp: number;
}

/** The planes of src [planes][H][W] with the given margins; the source itself when there are none. */
function pad(
  rt: WasmRuntime,
  sc: Scratch,
  src: Storage,
  planes: number,
  H: number,
  W: number,
  top: number,
  left: number,
  bottom: number,
  right: number,
): Padded {
  const Hp = H + top + bottom,
    Wp = W + left + right;
  if (Hp === H && Wp === W) return { ptr: ptr(src), Hp, Wp };
  return { ptr: padPlanes(rt, sc, ptr(src), planes, H, W, top, left, Hp, Wp), Hp, Wp };
}

/**
 * A new scratch buffer [planes][Hp][Wp] holding the planes at src [planes][H][W] placed at (top,
 * left), zero elsewhere, followed by `zeros` floats of zeros (slack past the last plane, or whole
 * planes of zeros for reads that must see nothing).
 */
export function padPlanes(
  rt: WasmRuntime,
  sc: Scratch,
  src: number,
  planes: number,
  H: number,
  W: number,
  top: number,
  left: number,
  Hp: number,
  Wp: number,
  zeros = 0,
  purpose?: string,
): number {
  const dst = sc.bytes((planes * Hp * Wp + zeros) * 4, purpose);
  if (zeros > 0) rt.f32(dst + planes * Hp * Wp * 4, zeros).fill(0);
  rt.run('convPad', [src, dst, H, W, top, left, Hp, Wp], planes, Math.ceil(16384 / Math.max(1, Hp * Wp)));
  return dst;
}

/** Margins of the forward source: the padding, and past the far edge only what a window reaches. */
function forwardMargins(p: ConvParams): [number, number, number, number] {
  return [
    p.padH,
    p.padW,
    Math.max(0, (p.outH - 1) * p.strideH + p.kernelH - p.padH - p.height),
    Math.max(0, (p.outW - 1) * p.strideW + p.kernelW - p.padW - p.width),
  ];
}

/**
 * Taps k of one axis that read inside the image for at least one output position. The others read
 * only padding (a 3x3 window on a 1x1 map uses its centre alone): dropping them saves their
 * multiply-adds, 8/9 of them in resnet18's last stage on 28x28 crops.
 */
function liveTaps(k: number, outSize: number, stride: number, padding: number, size: number): number[] {
  const taps: number[] = [];
  for (let t = 0; t < k; t++) {
    // positions o·stride − padding + t for o in [0, outSize): an increasing run
    const first = t - padding,
      last = (outSize - 1) * stride - padding + t;
    if (last >= 0 && first < size && Math.ceil(Math.max(0, -first) / stride) * stride + first < size) taps.push(t);
  }
  return taps;
}

/** The forward's reduction entries (c, ky, kx) over live taps: offsets in the padded source image and in a weight row. */
function forwardTables(p: ConvParams, Hp: number, Wp: number): { tab: Int32Array; wtab: Int32Array } {
  const ky = liveTaps(p.kernelH, p.outH, p.strideH, p.padH, p.height),
    kx = liveTaps(p.kernelW, p.outW, p.strideW, p.padW, p.width);
  const K = p.channels * ky.length * kx.length;
  const tab = new Int32Array(K),
    wtab = new Int32Array(K);
  let e = 0;
  for (let c = 0; c < p.channels; c++) {
    for (const y of ky) {
      for (const x of kx) {
        tab[e] = (c * Hp + y) * Wp + x;
        wtab[e++] = (c * p.kernelH + y) * p.kernelW + x;
      }
    }
  }
  return { tab, wtab };
}

/** A run of output positions along one axis whose windows read the same taps inside the image. */
interface Span {
  o0: number;
  n: number;
  taps: number[];
}

/** Positions 0..n-1 grouped into runs of equal tap lists (taps(pos) gives a position's list). */
function groupSpans(n: number, taps: (pos: number) => number[]): Span[] {
  const out: Span[] = [];
  for (let pos = 0; pos < n; pos++) {
    const t = taps(pos);
    const last = out[out.length - 1];
    if (last && last.taps.length === t.length && last.taps.every((v, j) => v === t[j])) last.n++;
    else out.push({ o0: pos, n: 1, taps: t });
  }
  return out;
}

/** Output positions of one axis grouped into spans by the taps that read inside the image. */
function spans(outSize: number, k: number, stride: number, padding: number, size: number): Span[] {
  return groupSpans(outSize, (o) => {
    const taps: number[] = [];
    for (let t = 0; t < k; t++) {
      const i = o * stride - padding + t;
      if (i >= 0 && i < size) taps.push(t);
    }
    return taps;
  });
}

/** Multiply-adds per output pair along one axis: in-image taps summed over the spans. */
const liveReads = (sp: Span[]) => sp.reduce((a, s) => a + s.n * s.taps.length, 0);

/**
 * When the forward and the input gradient run span by span (conv2dBySpans, gradInputBySpans): on
 * maps of at most borderPositions pixels (the output map for the forward, the input map for the
 * gradient) where less than borderShare of the window's multiply-adds read inside the image.
 * Measured on the Intel Xeon host (2026-12-05, 1 thread, CPU ms per call, full route → spans, the
 * two builds alternated twice): a 3×3 window on 2×2 maps (128 channels, 256 local crops, 4 of 9
 * taps read the image) forward 8.3 → 3.4–3.6, input gradient 8.3 → 4.1–4.3; 64×3² → 2² stride 2
 * forward 4.3 → 2.2, input gradient 2.9 → 2.1–2.6; 32×6² → 3² stride 2 forward 2.7 → 1.9. Larger
 * maps lost, so borderPositions stops at 9: 64×7² → 4² stride 2 (share 0.69) forward 7.2–7.4 →
 * 10.1–10.4 and input gradient 5.3–5.5 → 7.1–7.4; the input gradient of 32×6² stride 1 5.0 → 6.7–7.1
 * (nine blocks of few columns each, gathered lane by lane, against one pass). The resnet18 step
 * (batch 64, 2 global 28² + 4 local 12² crops, where layer3 runs on 2×2 maps): 1 thread 62.1 / 63.1
 * → 69.8 / 69.8 img/s, 2 threads 109.0 / 111.3 → 116.7 / 119.1; resnet_cpu 116.8 / 121.4 → 123.4 /
 * 122.9 and 206.9 / 209.5 → 214.6 / 205.8 (level); the losses identical. Tests move both limits to
 * compare the two routes bit for bit (test/backend/conv-border.test.ts). The weight gradient stays
 * on the full route: tap by tap over each tap's sub-rectangle of positions (dy's sub-rectangle
 * copied out and packed per tap, the same bits) took the resnet18 step from 70.0 / 68.2 to 59.0 /
 * 58.2 img/s on 1 thread; nine copies and packs per call cost more than the zero products.
 */
export const convRoutes = { borderShare: 0.8, borderPositions: 9 };

interface Gemm {
  apk: number;
  tab: number;
  src: number;
  dst: number;
  rows: number;
  K: number;
  Q: number;
  nx: number;
  nxy: number;
  srcImg: number;
  srcRow: number;
  srcCol: number;
  dstImg: number;
  dstBase: number;
  dstRow: number;
  dstCol: number;
  dstPlane: number;
}

function gemm(rt: WasmRuntime, sc: Scratch, g: Gemm): void {
  const { nr, gemmSlot } = blocking(rt);
  const scratch = sc.bytes(64 + rt.threads * gemmSlot);
  rt.i32(scratch, 4).fill(0);
  const { chunksPerThread, forkFlops } = rt.tuning.conv;
  const panels = Math.ceil(g.Q / nr);
  // chunksPerThread (16 by default) chunks a thread: enough for the faster core to take over the
  // slower one's share (the panels go to whoever claims them, assembly/convgemm.ts claimChunk), few
  // enough that claiming costs nothing
  const chunkPanels = Math.max(1, Math.ceil(panels / (chunksPerThread * rt.threads)));
  const chunks = Math.ceil(panels / chunkPanels);
  rt.run(
    'convGemm',
    [
      g.apk,
      g.tab,
      g.src,
      g.dst,
      g.rows,
      g.K,
      g.Q,
      g.nx,
      g.nxy,
      g.srcImg,
      g.srcRow,
      g.srcCol,
      g.dstImg,
      g.dstBase,
      g.dstRow,
      g.dstCol,
      g.dstPlane,
      scratch,
      chunkPanels,
      chunks,
    ],
    panels,
    Math.ceil(forkFlops / Math.max(1, nr * g.K * g.rows)),
  );
}

/** A [rows][K] from w: entry (r, e) = w[r·wRow + wtab[e]], packed for the micro-kernel. */
function packA(rt: WasmRuntime, sc: Scratch, w: Storage, wtab: Int32Array, rows: number, wRow: number): number {
  const { mr } = blocking(rt);
  const K = wtab.length;
  const panels = Math.ceil(rows / mr);
  const apk = sc.bytes(panels * mr * K * 4);
  rt.run('convPackA', [ptr(w), sc.i32(wtab), apk, rows, K, wRow], panels, Math.ceil(16384 / Math.max(1, mr * K)));
  return apk;
}

/** One stride phase of the input grid: its pixels and the taps that reach them, with their dy offsets. */
interface Phase {
  r: number;
  n: number;
  taps: number[];
  offs: number[];
}

/**
 * Phases along one axis: input index i = r + s·j reads dy at (r + pad − k)/s + j through tap k;
 * taps whose reads all fall outside dy's outSize positions are left out.
 */
function phases(size: number, k: number, s: number, padding: number, outSize: number): Phase[] {
  const out: Phase[] = [];
  for (let r = 0; r < s; r++) {
    const n = Math.ceil((size - r) / s);
    if (n <= 0) continue;
    const taps: number[] = [],
      offs: number[] = [];
    for (let t = 0; t < k; t++) {
      const d = r + padding - t;
      if (((d % s) + s) % s === 0 && d / s <= outSize - 1 && d / s + n - 1 >= 0) {
        taps.push(t);
        offs.push(d / s);
      }
    }
    out.push({ r, n, taps, offs });
  }
  return out;
}

/** Margins that keep every phase's reads inside padded dy along one axis: [before, after]. */
function phaseMargins(ph: Phase[], outSize: number): [number, number] {
  let before = 0,
    after = 0;
  for (const f of ph) {
    for (const o of f.offs) {
      before = Math.max(before, -o);
      after = Math.max(after, f.n - 1 + o - (outSize - 1));
    }
  }
  return [before, after];
}

/**
 * The forward pass one block of output positions at a time (a span of rows × a span of columns),
 * each with only the taps that read inside the image, straight from the unpadded source: on small
 * maps most of a window is padding (a 3×3 window on a 2×2 map reads 4 of its 9 taps in the image).
 * Each output sums the same entries in the same order as the full route minus the padding's zero
 * products, which cannot change an f32 sum that starts at +0, so the results are the same bits.
 */
function conv2dBySpans(
  rt: WasmRuntime,
  sc: Scratch,
  x: Storage,
  w: Storage,
  out: Storage,
  p: ConvParams,
  ys: Span[],
  xs: Span[],
): void {
  const C = p.channels,
    O = p.outChannels,
    P = p.outH * p.outW;
  for (const sy of ys) {
    for (const sx of xs) {
      const K = C * sy.taps.length * sx.taps.length;
      const tab = new Int32Array(K),
        wtab = new Int32Array(K);
      const iy0 = sy.o0 * p.strideH - p.padH,
        ix0 = sx.o0 * p.strideW - p.padW;
      let e = 0;
      for (let c = 0; c < C; c++) {
        for (const ty of sy.taps) {
          for (const tx of sx.taps) {
            tab[e] = (c * p.height + iy0 + ty) * p.width + ix0 + tx;
            wtab[e++] = (c * p.kernelH + ty) * p.kernelW + tx;
          }
        }
      }
      const apk = K > 0 ? packA(rt, sc, w, wtab, O, C * p.kernelH * p.kernelW) : 0;
      gemm(rt, sc, {
        apk,
        tab: sc.i32(tab),
        src: ptr(x),
        dst: ptr(out),
        rows: O,
        K,
        Q: p.batch * sy.n * sx.n,
        nx: sx.n,
        nxy: sy.n * sx.n,
        srcImg: C * p.height * p.width,
        srcRow: p.strideH * p.width,
        srcCol: p.strideW,
        dstImg: O * P,
        dstBase: sy.o0 * p.outW + sx.o0,
        dstRow: p.outW,
        dstCol: 1,
        dstPlane: P,
      });
    }
  }
}

/**
 * The positions j of one stride phase (input index r + s·j) grouped into spans by the taps whose
 * dy read offs[a] + j falls inside dy; Span.taps holds indices into the phase's taps.
 */
function phaseSpans(f: Phase, outSize: number): Span[] {
  return groupSpans(f.n, (j) => {
    const taps: number[] = [];
    f.offs.forEach((o, a) => {
      if (o + j >= 0 && o + j < outSize) taps.push(a);
    });
    return taps;
  });
}

/**
 * One stride phase of the input gradient span by span, like conv2dBySpans: each block of input
 * positions gathers only the taps that read inside dy, from dy itself (no padded copy needed for
 * them), in the phase's entry order, so the sums are the same bits.
 */
function gradInputBySpans(
  rt: WasmRuntime,
  sc: Scratch,
  dy: Storage,
  w: Storage,
  dx: Storage,
  p: ConvParams,
  fy: Phase,
  fx: Phase,
  ys: Span[],
  xs: Span[],
): void {
  const C = p.channels,
    O = p.outChannels,
    khw = p.kernelH * p.kernelW,
    plane = p.outH * p.outW;
  for (const sy of ys) {
    for (const sx of xs) {
      const K = O * sy.taps.length * sx.taps.length;
      const tab = new Int32Array(K),
        wtab = new Int32Array(K);
      let e = 0;
      for (let o = 0; o < O; o++) {
        for (const a of sy.taps) {
          for (const b of sx.taps) {
            tab[e] = o * plane + (fy.offs[a] + sy.o0) * p.outW + fx.offs[b] + sx.o0;
            wtab[e++] = o * C * khw + fy.taps[a] * p.kernelW + fx.taps[b];
          }
        }
      }
      const apk = K > 0 ? packA(rt, sc, w, wtab, C, khw) : 0;
      gemm(rt, sc, {
        apk,
        tab: sc.i32(tab),
        src: ptr(dy),
        dst: ptr(dx),
        rows: C,
        K,
        Q: p.batch * sy.n * sx.n,
        nx: sx.n,
        nxy: sy.n * sx.n,
        srcImg: O * plane,
        srcRow: p.outW,
        srcCol: 1,
        dstImg: C * p.height * p.width,
        dstBase: (fy.r + p.strideH * sy.o0) * p.width + fx.r + p.strideW * sx.o0,
        dstRow: p.strideH * p.width,
        dstCol: p.strideW,
        dstPlane: p.height * p.width,
      });
    }
  }
}

export function convGemmKernels(rt: WasmRuntime): Pick<ConvKernels, 'conv2d' | 'conv2dGradInput' | 'conv2dGradWeight'> {
  return {
    conv2d(x, w, out, p) {
      const B = p.batch,
        O = p.outChannels,
        P = p.outH * p.outW;
      if (B * O * P === 0) return;
      const sc = new Scratch(rt);
      try {
        if (P <= convRoutes.borderPositions) {
          // the span tables are only worth building on maps small enough to take that route
          const ys = spans(p.outH, p.kernelH, p.strideH, p.padH, p.height),
            xs = spans(p.outW, p.kernelW, p.strideW, p.padW, p.width);
          const all =
            p.outH *
            liveTaps(p.kernelH, p.outH, p.strideH, p.padH, p.height).length *
            p.outW *
            liveTaps(p.kernelW, p.outW, p.strideW, p.padW, p.width).length;
          if (liveReads(ys) * liveReads(xs) < convRoutes.borderShare * all) {
            conv2dBySpans(rt, sc, x, w, out, p, ys, xs);
            return;
          }
        }
        const src = pad(rt, sc, x, B * p.channels, p.height, p.width, ...forwardMargins(p));
        const { tab, wtab } = forwardTables(p, src.Hp, src.Wp);
        const K = tab.length;
        const apk = K > 0 ? packA(rt, sc, w, wtab, O, p.channels * p.kernelH * p.kernelW) : 0;
        gemm(rt, sc, {
          apk,
          tab: sc.i32(tab),
          src: src.ptr,
          dst: ptr(out),
          rows: O,
          K,
          Q: B * P,
          nx: p.outW,
          nxy: P,
          srcImg: p.channels * src.Hp * src.Wp,
          srcRow: p.strideH * src.Wp,
          srcCol: p.strideW,
          dstImg: O * P,
          dstBase: 0,
          dstRow: p.outW,
          dstCol: 1,
          dstPlane: P,
        });
      } finally {
        sc.release();
      }
    },
    /**
     * dx by phases (iy mod strideH, ix mod strideW): each is a stride-1 correlation of padded dy with the
     * taps that reach it, rows c and entries (o, ky, kx), so every multiply-add is a real one.
     */
    conv2dGradInput(dy, w, dx, p) {
      const B = p.batch,
        C = p.channels,
        O = p.outChannels,
        H = p.height,
        W = p.width;
      if (B * C * H * W === 0) return;
      const sc = new Scratch(rt);
      try {
        const py = phases(H, p.kernelH, p.strideH, p.padH, p.outH),
          px = phases(W, p.kernelW, p.strideW, p.padW, p.outW);
        const [top, bottom] = phaseMargins(py, p.outH),
          [left, right] = phaseMargins(px, p.outW);
        const src = pad(rt, sc, dy, B * O, p.outH, p.outW, top, left, bottom, right);
        const plane = src.Hp * src.Wp,
          khw = p.kernelH * p.kernelW;
        // phases no tap reaches (3 of 4 under a 1x1 stride-2 shortcut) are zero: one parallel fill of
        // dx instead of each phase's zeros stored element by element through the GEMM (resnet_cpu's
        // 16x28² → 32 shortcut at batch 128: 2.3 → 1.4 ms, 32x14² → 64 1.6 → 1.0; 1 thread CPU, Intel Xeon)
        const untouched = py.some((f) => f.taps.length === 0) || px.some((f) => f.taps.length === 0);
        if (untouched) rt.run('fill', [ptr(dx), 0], B * C * H * W, 1 << 14);
        for (const fy of py) {
          for (const fx of px) {
            if (untouched && (fy.taps.length === 0 || fx.taps.length === 0)) continue;
            if (H * W <= convRoutes.borderPositions) {
              const sy = phaseSpans(fy, p.outH),
                sx = phaseSpans(fx, p.outW);
              if (
                liveReads(sy) * liveReads(sx) <
                convRoutes.borderShare * fy.n * fy.taps.length * fx.n * fx.taps.length
              ) {
                gradInputBySpans(rt, sc, dy, w, dx, p, fy, fx, sy, sx);
                continue;
              }
            }
            const K = O * fy.taps.length * fx.taps.length;
            const tab = new Int32Array(K),
              wtab = new Int32Array(K);
            let e = 0;
            for (let o = 0; o < O; o++) {
              for (let a = 0; a < fy.taps.length; a++) {
                for (let b = 0; b < fx.taps.length; b++) {
                  tab[e] = o * plane + (fy.offs[a] + top) * src.Wp + fx.offs[b] + left;
                  wtab[e++] = o * C * khw + fy.taps[a] * p.kernelW + fx.taps[b];
                }
              }
            }
            const apk = K > 0 ? packA(rt, sc, w, wtab, C, khw) : 0;
            gemm(rt, sc, {
              apk,
              tab: sc.i32(tab),
              src: src.ptr,
              dst: ptr(dx),
              rows: C,
              K,
              Q: B * fy.n * fx.n,
              nx: fx.n,
              nxy: fy.n * fx.n,
              srcImg: O * plane,
              srcRow: src.Wp,
              srcCol: 1,
              dstImg: C * H * W,
              dstBase: fy.r * W + fx.r,
              dstRow: p.strideH * W,
              dstCol: p.strideW,
              dstPlane: H * W,
            });
          }
        }
      } finally {
        sc.release();
      }
    },
    conv2dGradWeight(x, dy, dw, p) {
      const O = p.outChannels,
        Kfull = p.channels * p.kernelH * p.kernelW,
        P = p.outH * p.outW,
        Q = p.batch * P;
      if (O * Kfull === 0) return;
      const { mr } = blocking(rt);
      const sc = new Scratch(rt);
      try {
        const src = pad(rt, sc, x, p.batch * p.channels, p.height, p.width, ...forwardMargins(p));
        const { tab, wtab } = forwardTables(p, src.Hp, src.Wp);
        const K = tab.length;
        // taps that only ever read padding, and every tap of an empty batch, have a zero gradient
        if (K < Kfull || Q === 0) rt.run('fill', [ptr(dw), 0], O * Kfull, 1 << 20);
        if (K === 0 || Q === 0) return;
        const { nr, kc } = blocking(rt);
        const oPadded = Math.ceil(O / nr) * nr;
        const pdy = sc.bytes(oPadded * Q * 4);
        rt.run('convPackDy', [ptr(dy), pdy, O, Q, P], Math.ceil(Q / kc), Math.ceil(16384 / (kc * oPadded)));
        const acc = sc.bytes(K * O * 4);
        const slotBytes = rt.exports.convGradWeightSlot();
        const scratch = sc.bytes(64 + rt.threads * slotBytes);
        rt.i32(scratch, 1)[0] = 0;
        rt.run(
          'convGradWeight',
          [
            src.ptr,
            sc.i32(tab),
            sc.i32(wtab),
            pdy,
            acc,
            ptr(dw),
            K,
            Kfull,
            O,
            Q,
            p.outW,
            P,
            p.channels * src.Hp * src.Wp,
            p.strideH * src.Wp,
            p.strideW,
            slotBytes,
            scratch,
          ],
          Math.ceil(K / mr),
          Math.ceil(rt.tuning.conv.forkFlops / Math.max(1, mr * O * Q)),
        );
      } finally {
        sc.release();
      }
    },
  };
}
