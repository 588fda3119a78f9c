// The kernel module's exports as the TypeScript side calls them: one line per exported function of
// assembly/ (see assembly/index.ts), with AssemblyScript's parameter names and types. The types are
// aliases of number, so they do not change what a call accepts; they say which numbers the kernel
// reads as an address, an integer or an f32. test/abi/wasm-exports.test.ts parses assembly/ and this
// interface and fails on any difference, so this stays a copy of the AssemblyScript declarations.
// WasmRuntime.run takes its argument list as a tuple of the kernel's parameters, so a call with a
// wrong argument count does not compile.

/** A byte address in the shared memory (0 stands for an absent optional buffer). */
export type usize = number;
export type i32 = number;
export type u32 = number;
export type f32 = number;

export interface KernelExports {
  // assembly/common.ts
  heapBase(): usize;
  // assembly/elementwise.ts
  fill(out: usize, value: f32, start: i32, end: i32): void;
  unary(x: usize, out: usize, op: i32, a: f32, b: f32, start: i32, end: i32): void;
  unaryGrad(x: usize, y: usize, dy: usize, dx: usize, op: i32, a: f32, b: f32, start: i32, end: i32): void;
  binary(
    a: usize,
    b: usize,
    out: usize,
    op: i32,
    shape: usize,
    aStrides: usize,
    bStrides: usize,
    start: i32,
    end: i32,
  ): void;
  where(
    c: usize,
    a: usize,
    b: usize,
    out: usize,
    shape: usize,
    cStrides: usize,
    aStrides: usize,
    bStrides: usize,
    start: i32,
    end: i32,
  ): void;
  // assembly/reduce.ts
  reduceUnits(outer: i32, inner: i32): i32;
  reduce(x: usize, out: usize, op: i32, outer: i32, len: i32, inner: i32, start: i32, end: i32): void;
  argReduce(x: usize, out: usize, op: i32, outer: i32, len: i32, inner: i32, start: i32, end: i32): void;
  // assembly/optim.ts
  adamw(
    param: usize,
    grad: usize,
    m: usize,
    v: usize,
    decay: f32,
    beta1: f32,
    omb1: f32,
    beta2: f32,
    omb2: f32,
    stepSize: f32,
    bc2Sqrt: f32,
    eps: f32,
    start: i32,
    end: i32,
  ): void;
  ema(target: usize, source: usize, momentum: f32, oneMinus: f32, start: i32, end: i32): void;
  clipScale(
    grad: usize,
    ss: usize,
    out: usize,
    norm: usize,
    clip: f32,
    eps: f32,
    lo: f32,
    hi: f32,
    start: i32,
    end: i32,
  ): void;
  // assembly/softmax.ts
  softmax(x: usize, out: usize, cols: i32, log: i32, start: i32, end: i32): void;
  softmaxGrad(y: usize, dy: usize, dx: usize, cols: i32, log: i32, start: i32, end: i32): void;
  // assembly/norm.ts
  layerNorm(
    x: usize,
    gamma: usize,
    beta: usize,
    out: usize,
    mean: usize,
    rstd: usize,
    cols: i32,
    eps: f32,
    start: i32,
    end: i32,
  ): void;
  addLayerNorm(
    x: usize,
    a: usize,
    aRows: i32,
    sum: usize,
    gamma: usize,
    beta: usize,
    out: usize,
    mean: usize,
    rstd: usize,
    cols: i32,
    eps: f32,
    start: i32,
    end: i32,
  ): void;
  layerNormGrad(
    x: usize,
    gamma: usize,
    mean: usize,
    rstd: usize,
    dy: usize,
    dx: usize,
    dres: usize,
    cols: i32,
    start: i32,
    end: i32,
  ): void;
  layerNormParamUnits(cols: i32): i32;
  layerNormGradParams(
    x: usize,
    mean: usize,
    rstd: usize,
    dy: usize,
    dgamma: usize,
    dbeta: usize,
    rows: i32,
    cols: i32,
    start: i32,
    end: i32,
  ): void;
  batchNormPlaneSums(x: usize, partial: usize, hw: i32, start: i32, end: i32): void;
  batchNormPlaneSqDevs(x: usize, mean: usize, partial: usize, C: i32, hw: i32, start: i32, end: i32): void;
  batchNormCombine(partial: usize, out: usize, n: i32, C: i32, divisor: f32, start: i32, end: i32): void;
  batchNormApply(
    x: usize,
    mean: usize,
    rstd: usize,
    gamma: usize,
    beta: usize,
    residual: usize,
    out: usize,
    n: i32,
    C: i32,
    hw: i32,
    relu: i32,
    start: i32,
    end: i32,
  ): void;
  batchNormGradPlaneSums(
    x: usize,
    y: usize,
    mean: usize,
    rstd: usize,
    dy: usize,
    partial: usize,
    C: i32,
    hw: i32,
    relu: i32,
    start: i32,
    end: i32,
  ): void;
  batchNormGradCombine(
    partial: usize,
    sums: usize,
    dgamma: usize,
    dbeta: usize,
    n: i32,
    C: i32,
    start: i32,
    end: i32,
  ): void;
  batchNormGradApply(
    x: usize,
    y: usize,
    mean: usize,
    rstd: usize,
    gamma: usize,
    dy: usize,
    dx: usize,
    dres: usize,
    sums: usize,
    n: i32,
    C: i32,
    hw: i32,
    relu: i32,
    batchStats: i32,
    start: i32,
    end: i32,
  ): void;
  // assembly/matmul.ts
  matmulBlocking(which: i32): i32;
  matmulPackB(
    b: usize,
    packed: usize,
    n: i32,
    k: i32,
    transB: i32,
    strideB: i32,
    panels: i32,
    start: i32,
    end: i32,
  ): void;
  matmulCompute(
    a: usize,
    packed: usize,
    out: usize,
    pre: usize,
    bias: usize,
    rowSums: usize,
    m: i32,
    n: i32,
    k: i32,
    transA: i32,
    strideA: i32,
    sharedB: i32,
    strideB: i32,
    flags: i32,
    scratch: usize,
    chunkRows: i32,
    kcBlock: i32,
    chunks: i32,
    claim: i32,
    start: i32,
    end: i32,
  ): void;
  // assembly/conv.ts
  im2col(
    x: usize,
    out: usize,
    C: i32,
    H: i32,
    W: i32,
    kh: i32,
    kw: i32,
    sh: i32,
    sw: i32,
    ph: i32,
    pw: i32,
    outH: i32,
    outW: i32,
    start: i32,
    end: i32,
  ): void;
  col2im(
    col: usize,
    dx: usize,
    C: i32,
    H: i32,
    W: i32,
    kh: i32,
    kw: i32,
    sh: i32,
    sw: i32,
    ph: i32,
    pw: i32,
    outH: i32,
    outW: i32,
    start: i32,
    end: i32,
  ): void;
  pool2d(
    x: usize,
    out: usize,
    argmax: usize,
    op: i32,
    H: i32,
    W: i32,
    kh: i32,
    kw: i32,
    sh: i32,
    sw: i32,
    ph: i32,
    pw: i32,
    outH: i32,
    outW: i32,
    start: i32,
    end: i32,
  ): void;
  pool2dGrad(
    dy: usize,
    argmax: usize,
    dx: usize,
    op: i32,
    H: i32,
    W: i32,
    kh: i32,
    kw: i32,
    sh: i32,
    sw: i32,
    ph: i32,
    pw: i32,
    outH: i32,
    outW: i32,
    start: i32,
    end: i32,
  ): void;
  // assembly/random.ts
  random(
    out: usize,
    dist: i32,
    n: i32,
    k0: u32,
    k1: u32,
    baseLo: u32,
    baseHi: u32,
    phase: i32,
    a: f32,
    b: f32,
    start: i32,
    end: i32,
  ): void;
  // assembly/layout.ts
  copyStrided(
    src: usize,
    dst: usize,
    shape: usize,
    srcOffset: i32,
    srcStrides: usize,
    dstOffset: i32,
    dstStrides: usize,
    start: i32,
    end: i32,
  ): void;
  gatherRows(x: usize, idx: usize, out: usize, cols: i32, rows: i32, bad: usize, start: i32, end: i32): void;
  scatterUnits(cols: i32, rowBlocks: i32): i32;
  scatterAddRows(
    dy: usize,
    idx: usize,
    dx: usize,
    nIdx: i32,
    rows: i32,
    cols: i32,
    rowBlocks: i32,
    start: i32,
    end: i32,
  ): void;
  // assembly/neighbours.ts
  nnPack(y: usize, packed: usize, d: i32, k: i32, start: i32, end: i32): void;
  nnSearch(
    x: usize,
    packed: usize,
    outVal: usize,
    outIdx: usize,
    m: i32,
    k: i32,
    d: i32,
    excludeSelf: i32,
    blockPanels: i32,
    start: i32,
    end: i32,
  ): void;
  topk(x: usize, outVal: usize, outIdx: usize, cols: i32, k: i32, start: i32, end: i32): void;
  // assembly/neighbours-self.ts
  nnSelfSlotBytes(k: i32, m: i32): i32;
  nnSelfTop(
    packed: usize,
    slots: usize,
    counters: usize,
    k: i32,
    d: i32,
    m: i32,
    excludeSelf: i32,
    chunkPanels: i32,
    start: i32,
    end: i32,
  ): void;
  nnSelfMerge(
    slots: usize,
    nslots: i32,
    k: i32,
    m: i32,
    outVal: usize,
    outIdx: usize,
    cand: usize,
    start: i32,
    end: i32,
  ): void;
  nnCandidates(x: usize, cand: usize, outVal: usize, outIdx: usize, k: i32, d: i32, m: i32, start: i32, end: i32): void;
  // assembly/peak.ts
  peakMadd(iters: i32): f32;
  // assembly/attention.ts
  attentionSlotFloats(tokens: i32, dh: i32): i32;
  attention(
    qkv: usize,
    out: usize,
    probs: usize,
    tokens: i32,
    heads: i32,
    dh: i32,
    scale: f32,
    scratch: usize,
    start: i32,
    end: i32,
  ): void;
  attentionGrad(
    qkv: usize,
    probs: usize,
    dout: usize,
    dqkv: usize,
    tokens: i32,
    heads: i32,
    dh: i32,
    scale: f32,
    scratch: usize,
    start: i32,
    end: i32,
  ): void;
  // assembly/winograd.ts
  winogradBlocking(which: i32): i32;
  winogradWeights(w: usize, u: usize, R: i32, S: i32, flip: i32, scratch: usize, start: i32, end: i32): void;
  winogradInput(
    x: usize,
    v: usize,
    C: i32,
    H: i32,
    W: i32,
    padH: i32,
    padW: i32,
    th: i32,
    tw: i32,
    first: i32,
    N: i32,
    Np: i32,
    scratch: usize,
    start: i32,
    end: i32,
  ): void;
  winogradOutput(
    m: usize,
    y: usize,
    O: i32,
    oh: i32,
    ow: i32,
    th: i32,
    tw: i32,
    first: i32,
    N: i32,
    Np: i32,
    scratch: usize,
    start: i32,
    end: i32,
  ): void;
  winogradOutputGrad(
    dy: usize,
    dm: usize,
    O: i32,
    oh: i32,
    ow: i32,
    th: i32,
    tw: i32,
    first: i32,
    N: i32,
    Np: i32,
    scratch: usize,
    start: i32,
    end: i32,
  ): void;
  winogradWeightsGrad(du: usize, dw: usize, R: i32, S: i32, scratch: usize, start: i32, end: i32): void;
  // assembly/winograd-fused.ts
  winogradPackU(u: usize, upk: usize, O: i32, C: i32, start: i32, end: i32): void;
  winogradFusedSlot(C: i32, O: i32): i32;
  winogradFused(
    xp: usize,
    upk: usize,
    y: usize,
    C: i32,
    O: i32,
    Hp: i32,
    Wp: i32,
    oh: i32,
    ow: i32,
    th: i32,
    tw: i32,
    first: i32,
    N: i32,
    slotBytes: i32,
    scratch: usize,
    start: i32,
    end: i32,
  ): void;
  // assembly/winograd-fused-grad.ts
  winogradGradSlot(C: i32, O: i32): i32;
  winogradGradFused(
    xp: usize,
    dyp: usize,
    acc: usize,
    C: i32,
    O: i32,
    Hp: i32,
    Wp: i32,
    th: i32,
    tw: i32,
    first: i32,
    N: i32,
    B: i32,
    G: i32,
    slotBytes: i32,
    scratch: usize,
    start: i32,
    end: i32,
  ): void;
  winogradGradSum(acc: usize, du: usize, G: i32, O: i32, C: i32, accumulate: i32, start: i32, end: i32): void;
  // assembly/convgemm.ts
  convBlocking(which: i32): i32;
  convPad(src: usize, dst: usize, H: i32, W: i32, top: i32, left: i32, Hp: i32, Wp: i32, start: i32, end: i32): void;
  convPackA(w: usize, wtab: usize, apk: usize, rows: i32, K: i32, wRow: i32, start: i32, end: i32): void;
  convGemm(
    apk: usize,
    tab: usize,
    src: usize,
    dst: usize,
    rows: i32,
    K: i32,
    Q: i32,
    nx: i32,
    nxy: i32,
    srcImg: i32,
    srcRow: i32,
    srcCol: i32,
    dstImg: i32,
    dstBase: i32,
    dstRow: i32,
    dstCol: i32,
    dstPlane: i32,
    scratch: usize,
    chunkPanels: i32,
    chunks: i32,
    start: i32,
    end: i32,
  ): void;
  convGradWeightSlot(): i32;
  convPackDy(dy: usize, packed: usize, O: i32, Q: i32, P: i32, start: i32, end: i32): void;
  convGradWeight(
    src: usize,
    tab: usize,
    wtab: usize,
    pdy: usize,
    acc: usize,
    dw: usize,
    K: i32,
    Kfull: i32,
    O: i32,
    Q: i32,
    nx: i32,
    nxy: i32,
    srcImg: i32,
    srcRow: i32,
    srcCol: i32,
    slotBytes: i32,
    scratch: usize,
    start: i32,
    end: i32,
  ): void;
}

/**
 * Kernels that WasmRuntime.run splits across threads: they return nothing and take the row range
 * (start, end) last, which `run` appends. The test checks that every void export ends that way.
 */
export type RowKernel = {
  [K in keyof KernelExports]: ReturnType<KernelExports[K]> extends void
    ? Parameters<KernelExports[K]> extends [...unknown[], i32, i32]
      ? K
      : never
    : never;
}[keyof KernelExports];

/** A row kernel's arguments without the trailing (start, end). */
export type RowArgs<K extends RowKernel> = Parameters<KernelExports[K]> extends [...infer A, i32, i32] ? A : never;
