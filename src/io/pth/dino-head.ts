// findDinoHead: the DINO head's last layer (the prototypes) in a loaded checkpoint.
//
// Layouts handled:
// - facebookresearch/dino's checkpoint.pth: {student, teacher, optimizer, epoch, args, dino_loss,
//   ...}, student keys 'module.backbone.*' / 'module.head.*' (DistributedDataParallel), teacher keys
//   usually without 'module.'; also 'model' / 'state_dict' wrappers and bare state dicts.
// - last_layer = weight_norm(Linear(bottleneck, K, bias=False)): weight_g [K, 1] and weight_v [K, D];
//   torch's newer parametrization spelling parametrizations.weight.original0 (g) / original1 (v);
//   or plain 'weight' [K, D] once weight norm has been removed.
// Keys are matched after stripping leading 'module.' (any number) and one leading 'backbone.';
// the head is 'head.last_layer' or a bare 'last_layer', else any single '<x>.last_layer' (such as
// DINOv2's 'dino_head.last_layer').
import { PthError } from './errors.js';
import { PthTensor } from './tensor.js';

export interface DinoHeadWeightNorm {
  kind: 'weight_norm';
  /** [K, D]: the direction of each prototype. */
  weight_v: PthTensor;
  /** [K, 1] (or [K]): each prototype's norm. */
  weight_g: PthTensor;
  /** Where they were found: the container ('teacher', 'student', ... or '' for the root) and keys. */
  source: string;
  keys: { weight_v: string; weight_g: string };
}

export interface DinoHeadPlain {
  kind: 'plain';
  /** [K, D] prototypes. */
  weight: PthTensor;
  source: string;
  keys: { weight: string };
}

export type DinoHead = DinoHeadWeightNorm | DinoHeadPlain;

export interface FindDinoHeadOptions {
  /** Which network of a student/teacher checkpoint to read first (default 'teacher', as DINO evaluates). */
  prefer?: 'teacher' | 'student';
}

type Dict = Record<string, unknown>;

const isDict = (v: unknown): v is Dict =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PthTensor) && !ArrayBuffer.isView(v);

function normalize(key: string): string {
  let k = key;
  while (k.startsWith('module.')) k = k.slice('module.'.length);
  if (k.startsWith('backbone.')) k = k.slice('backbone.'.length);
  return k;
}

const PARTS: Record<string, 'v' | 'g' | 'w'> = {
  weight_v: 'v',
  weight_g: 'g',
  weight: 'w',
  'parametrizations.weight.original1': 'v',
  'parametrizations.weight.original0': 'g',
};

interface Layer {
  name: string; // normalized layer path, e.g. 'head.last_layer'
  v?: string;
  g?: string;
  w?: string;
}

function layersIn(sd: Dict): Map<string, Layer> {
  const layers = new Map<string, Layer>();
  for (const key of Object.keys(sd)) {
    if (!(sd[key] instanceof PthTensor)) continue;
    const n = normalize(key);
    const m = /^(?:(.*)\.)?(last_layer)\.(weight_v|weight_g|weight|parametrizations\.weight\.original[01])$/.exec(n);
    if (!m) continue;
    const name = m[1] === undefined ? m[2] : `${m[1]}.${m[2]}`;
    const layer = layers.get(name) ?? { name };
    const part = PARTS[m[3]];
    if (layer[part] !== undefined)
      throw new PthError(
        `DINO head: both ${JSON.stringify(layer[part])} and ${JSON.stringify(key)} give ${name}.${m[3]}`,
      );
    layer[part] = key;
    layers.set(name, layer);
  }
  return layers;
}

function pick(layers: Map<string, Layer>): Layer | undefined {
  for (const preferred of ['head.last_layer', 'last_layer']) {
    const l = layers.get(preferred);
    if (l) return l;
  }
  if (layers.size > 1) {
    throw new PthError(`DINO head: several last layers (${[...layers.keys()].join(', ')}); none is 'head.last_layer'`);
  }
  return layers.values().next().value;
}

function check(sd: Dict, layer: Layer, source: string): DinoHead {
  const at = (k: string): PthTensor => sd[k] as PthTensor;
  const shape = (t: PthTensor): string => `[${t.shape}]`;
  const where = `DINO head (${source || 'root'} ${layer.name})`;
  const float = (t: PthTensor, k: string): void => {
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array))
      throw new PthError(`${where}: ${k} is ${t.dtype}, not a float tensor`);
  };
  if (layer.v !== undefined || layer.g !== undefined) {
    if (layer.v === undefined || layer.g === undefined) {
      throw new PthError(
        `${where}: has ${layer.v ?? layer.g} but not its weight-norm partner (${layer.v === undefined ? 'weight_v' : 'weight_g'})`,
      );
    }
    const v = at(layer.v);
    const g = at(layer.g);
    float(v, layer.v);
    float(g, layer.g);
    if (v.shape.length !== 2) throw new PthError(`${where}: weight_v has shape ${shape(v)}, not [K, D]`);
    const gOk =
      (g.shape.length === 2 && g.shape[1] === 1 && g.shape[0] === v.shape[0]) ||
      (g.shape.length === 1 && g.shape[0] === v.shape[0]);
    if (!gOk)
      throw new PthError(
        `${where}: weight_g has shape ${shape(g)}, expected [${v.shape[0]}, 1] to match weight_v ${shape(v)}`,
      );
    return { kind: 'weight_norm', weight_v: v, weight_g: g, source, keys: { weight_v: layer.v, weight_g: layer.g } };
  }
  const w = at(layer.w!);
  float(w, layer.w!);
  if (w.shape.length !== 2) throw new PthError(`${where}: weight has shape ${shape(w)}, not [K, D]`);
  return { kind: 'plain', weight: w, source, keys: { weight: layer.w! } };
}

/** Finds the DINO head's last layer; a PthError listing the candidate keys when there is none. */
export function findDinoHead(checkpoint: unknown, options: FindDinoHeadOptions = {}): DinoHead {
  if (!isDict(checkpoint)) throw new PthError('DINO head: the checkpoint is not a dict');
  const first = options.prefer ?? 'teacher';
  const order = [first, first === 'teacher' ? 'student' : 'teacher', 'model', 'state_dict'];
  const places: [string, Dict][] = [];
  for (const name of order) {
    const sd = checkpoint[name];
    if (Object.hasOwn(checkpoint, name) && isDict(sd)) places.push([name, sd]);
  }
  places.push(['', checkpoint]);
  for (const [source, sd] of places) {
    const layer = pick(layersIn(sd));
    if (layer) return check(sd, layer, source);
  }
  // Nothing found: say where we looked and what looked closest.
  const candidates: string[] = [];
  for (const [source, sd] of places) {
    for (const k of Object.keys(sd)) {
      if (/head|last_layer|prototype/i.test(k)) candidates.push(source ? `${source}/${k}` : k);
    }
  }
  const looked = places.map(([s]) => (s ? `'${s}'` : 'the root')).join(', ');
  const top = Object.keys(checkpoint)
    .slice(0, 12)
    .map((k) => JSON.stringify(k))
    .join(', ');
  throw new PthError(
    `DINO head: no '*last_layer.weight_v/weight_g' or '*last_layer.weight' tensor found (looked in ${looked}; ` +
      (candidates.length > 0
        ? `keys that look related: ${candidates.slice(0, 20).join(', ')}${candidates.length > 20 ? ', ...' : ''})`
        : `top-level keys: ${top})`),
  );
}
