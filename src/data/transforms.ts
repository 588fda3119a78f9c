// Pixel transforms of DINO's augmentation, on float CHW images with values in [0, 1]. They follow
// torchvision's tensor semantics (blend-and-clamp colour ops, ITU-R 601 luma, RGB<->HSV for hue).
// Scratch arrays are module-level: each worker thread has its own module instance.

export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** torchvision RandomResizedCrop.get_params: 10 tries at a random area/aspect, else a centre crop. */
export function randomResizedCropBox(
  rand: () => number,
  H: number,
  W: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
): CropBox {
  const area = H * W;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let t = 0; t < 10; t++) {
    const target = area * (scale[0] + (scale[1] - scale[0]) * rand());
    const aspect = Math.exp(logLo + (logHi - logLo) * rand());
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      const top = Math.floor(rand() * (H - h + 1));
      const left = Math.floor(rand() * (W - w + 1));
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = W / H;
  let w = W;
  let h = H;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { top: Math.floor((H - h) / 2), left: Math.floor((W - w) / 2), height: h, width: w };
}

let i0x = new Int32Array(0),
  i1x = new Int32Array(0),
  wxs = new Float32Array(0);
let i0y = new Int32Array(0),
  i1y = new Int32Array(0),
  wys = new Float32Array(0);

function axis(n: number, start: number, len: number, i0: Int32Array, i1: Int32Array, w: Float32Array): void {
  const scale = len / n;
  for (let o = 0; o < n; o++) {
    const f = Math.max(0, (o + 0.5) * scale - 0.5);
    const a = Math.min(Math.floor(f), len - 1);
    i0[o] = start + a;
    i1[o] = start + Math.min(a + 1, len - 1);
    w[o] = f - a;
  }
}

/**
 * Crops `box` from the u8 CHW image at src[srcOff..] and resizes it to S x S with bilinear
 * interpolation (half-pixel centres, edges clamped inside the box: torch's align_corners=False),
 * scaling to [0, 1]. A box of size S x S reproduces its pixels exactly.
 */
export function cropResize(
  src: Uint8Array,
  srcOff: number,
  C: number,
  H: number,
  W: number,
  box: CropBox,
  S: number,
  out: Float32Array,
): void {
  if (i0x.length < S) {
    [i0x, i1x, i0y, i1y] = [new Int32Array(S), new Int32Array(S), new Int32Array(S), new Int32Array(S)];
    [wxs, wys] = [new Float32Array(S), new Float32Array(S)];
  }
  axis(S, box.left, box.width, i0x, i1x, wxs);
  axis(S, box.top, box.height, i0y, i1y, wys);
  const k = 1 / 255;
  for (let c = 0; c < C; c++) {
    const plane = srcOff + c * H * W;
    const ob = c * S * S;
    for (let y = 0; y < S; y++) {
      const r0 = plane + i0y[y] * W;
      const r1 = plane + i1y[y] * W;
      const wy = wys[y];
      for (let x = 0; x < S; x++) {
        const a = i0x[x],
          b = i1x[x],
          wx = wxs[x];
        const top = src[r0 + a] + (src[r0 + b] - src[r0 + a]) * wx;
        const bot = src[r1 + a] + (src[r1 + b] - src[r1 + a]) * wx;
        out[ob + y * S + x] = (top + (bot - top) * wy) * k;
      }
    }
  }
}

export function hflip(img: Float32Array, C: number, H: number, W: number): void {
  for (let r = 0; r < C * H; r++) {
    const o = r * W;
    for (let a = o, b = o + W - 1; a < b; a++, b--) {
      const t = img[a];
      img[a] = img[b];
      img[b] = t;
    }
  }
}

const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : v);

export function adjustBrightness(img: Float32Array, len: number, f: number): void {
  for (let i = 0; i < len; i++) img[i] = clamp01(img[i] * f);
}

const LUMA = [0.299, 0.587, 0.114];

/** Blend with the image's mean grey level (torchvision adjust_contrast). */
export function adjustContrast(img: Float32Array, C: number, HW: number, f: number): void {
  let s = 0;
  if (C === 3) for (let p = 0; p < HW; p++) s += LUMA[0] * img[p] + LUMA[1] * img[HW + p] + LUMA[2] * img[2 * HW + p];
  else for (let p = 0; p < HW; p++) s += img[p];
  const m = (1 - f) * (s / HW);
  for (let i = 0; i < C * HW; i++) img[i] = clamp01(f * img[i] + m);
}

/** Blend with the per-pixel grey (no-op on grey images). */
export function adjustSaturation(img: Float32Array, C: number, HW: number, f: number): void {
  if (C !== 3) return;
  for (let p = 0; p < HW; p++) {
    const g = (1 - f) * (LUMA[0] * img[p] + LUMA[1] * img[HW + p] + LUMA[2] * img[2 * HW + p]);
    img[p] = clamp01(f * img[p] + g);
    img[HW + p] = clamp01(f * img[HW + p] + g);
    img[2 * HW + p] = clamp01(f * img[2 * HW + p] + g);
  }
}

/** Rotates hue by `shift` turns through HSV (no-op on grey images). */
export function adjustHue(img: Float32Array, C: number, HW: number, shift: number): void {
  if (C !== 3) return;
  for (let p = 0; p < HW; p++) {
    const r = img[p],
      g = img[HW + p],
      b = img[2 * HW + p];
    const v = Math.max(r, g, b);
    const cr = v - Math.min(r, g, b);
    if (cr === 0) continue;
    const s = cr / v;
    let h: number;
    if (v === r) h = (g - b) / cr;
    else if (v === g) h = 2 + (b - r) / cr;
    else h = 4 + (r - g) / cr;
    h = h / 6 + shift;
    h -= Math.floor(h);
    const h6 = h * 6;
    const i = Math.floor(h6) % 6;
    const fr = h6 - Math.floor(h6);
    const pv = clamp01(v * (1 - s)),
      q = clamp01(v * (1 - s * fr)),
      t = clamp01(v * (1 - s * (1 - fr)));
    let R = v,
      G = pv,
      B = q;
    if (i === 0) [R, G, B] = [v, t, pv];
    else if (i === 1) [R, G, B] = [q, v, pv];
    else if (i === 2) [R, G, B] = [pv, v, t];
    else if (i === 3) [R, G, B] = [pv, q, v];
    else if (i === 4) [R, G, B] = [t, pv, v];
    img[p] = R;
    img[HW + p] = G;
    img[2 * HW + p] = B;
  }
}

/** Luma in all three channels (torchvision's RandomGrayscale keeps the channel count); no-op on grey. */
export function grayscale(img: Float32Array, C: number, HW: number): void {
  if (C !== 3) return;
  for (let p = 0; p < HW; p++) {
    const g = LUMA[0] * img[p] + LUMA[1] * img[HW + p] + LUMA[2] * img[2 * HW + p];
    img[p] = img[HW + p] = img[2 * HW + p] = g;
  }
}

/** Inverts values at or above the threshold (PIL's solarize at 128 of 255). */
export function solarize(img: Float32Array, len: number, threshold = 128 / 255): void {
  for (let i = 0; i < len; i++) if (img[i] >= threshold) img[i] = 1 - img[i];
}

let kern = new Float32Array(0);
let line = new Float32Array(0);

/** Normalised Gaussian taps for radius ceil(3σ) (at least 1). */
export function gaussianKernel(sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp((-i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= s;
  return k;
}

/**
 * Separable Gaussian blur with edge pixels extended (as PIL's GaussianBlur), in place. Each row or
 * column is copied into a padded line first so the inner loop has no bounds tests.
 */
export function gaussianBlur(img: Float32Array, C: number, H: number, W: number, sigma: number): void {
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) >> 1;
  if (kern.length < k.length) kern = new Float32Array(k.length);
  kern.set(k);
  const need = Math.max(H, W) + 2 * r;
  if (line.length < need) line = new Float32Array(need);
  const taps = k.length;
  const pass = (base: number, n: number, stride: number): void => {
    const first = img[base];
    const last = img[base + (n - 1) * stride];
    for (let i = 0; i < r; i++) {
      line[i] = first;
      line[r + n + i] = last;
    }
    for (let i = 0; i < n; i++) line[r + i] = img[base + i * stride];
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let t = 0; t < taps; t++) s += line[i + t] * kern[t];
      img[base + i * stride] = s;
    }
  };
  for (let c = 0; c < C; c++) {
    const plane = c * H * W;
    for (let y = 0; y < H; y++) pass(plane + y * W, W, 1);
    for (let x = 0; x < W; x++) pass(plane + x, H, W);
  }
}

/** (v − mean_c) / std_c into out[outOff..]. */
export function normalizeInto(
  img: Float32Array,
  C: number,
  HW: number,
  mean: readonly number[],
  std: readonly number[],
  out: Float32Array,
  outOff: number,
): void {
  for (let c = 0; c < C; c++) {
    const m = mean[c];
    const is = 1 / std[c];
    const b = c * HW;
    for (let p = 0; p < HW; p++) out[outOff + b + p] = (img[b + p] - m) * is;
  }
}
