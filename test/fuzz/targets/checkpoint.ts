// Training checkpoints: readCheckpoint on the bytes of mutated checkpoints. Byte damage mostly meets
// the payload checksum, so most cases instead edit the 'protodino' metadata (as JSON or as text) or
// the tensors and write the file again with a valid checksum, reaching the metadata checks.
import { CheckpointError, readCheckpoint, type LoadedCheckpoint } from '../../../src/train/checkpoint.js';
import { serializeSafetensors, type SafeTensorInput } from '../../../src/io/safetensors.js';
import { mutate, numel, type Fuzz } from '../mutate.js';
import { MiB, type FuzzTarget } from '../target.js';

const SOURCE = 'fuzz/checkpoint.safetensors';

/** What saveCheckpoint writes (a plain record: the fuzz edits it into shapes the type forbids). */
function meta(step: number, names: string[]): Record<string, unknown> {
  return {
    format: 'protodino-dino-v1',
    epoch: Math.floor(step / 4),
    step,
    config: { arch: 'vit_tiny', lr: 0.0005, dataset: 'cifar10' },
    loader: { epoch: 1, batch: 2, seed: 3 },
    generators: { student: { seed: 7, offset: 12 }, teacher: { seed: 8, offset: 0 } },
    optimizerSteps: Object.fromEntries(names.map((n) => [n, step])),
    optimizerStep: step,
    optimizerGroups: [
      { names: names.slice(0, 1), weightDecay: 0.04 },
      { names: names.slice(1), weightDecay: 0 },
    ],
  };
}

interface Seed {
  meta: Record<string, unknown>;
  tensors: Record<string, SafeTensorInput>;
}

function seed(step: number, params: Record<string, number[]>): Seed {
  const tensors: Record<string, SafeTensorInput> = {};
  let k = 0;
  const f32 = (shape: number[]): SafeTensorInput => ({
    dtype: 'F32',
    shape,
    data: Float32Array.from({ length: numel(shape) }, () => (k++ % 7) - 3),
  });
  for (const [n, shape] of Object.entries(params)) {
    tensors[`student.${n}`] = f32(shape);
    tensors[`teacher.${n}`] = f32(shape);
    tensors[`optimizer.exp_avg.${n}`] = f32(shape);
    tensors[`optimizer.exp_avg_sq.${n}`] = f32(shape);
  }
  tensors['dino_loss.center'] = f32([1, 4]);
  return { meta: meta(step, Object.keys(params)), tensors };
}

const SEEDS = [
  seed(8, { 'head.w': [4, 3], 'head.b': [4] }),
  seed(0, { 'proj.w': [2, 2] }),
  seed(123, { a: [1], b: [2], c: [] }),
];

function file(s: Seed, metaText: string): Uint8Array {
  return serializeSafetensors(s.tensors, { protodino: metaText });
}

const BAD_VALUES: unknown[] = [null, -1, 1.5, '3', [], {}, true, 2 ** 53, 'x'];
/** A fresh copy each time: one shared [] or {} placed twice could make the metadata circular. */
const badValue = (f: Fuzz): unknown => structuredClone(f.pick(BAD_VALUES));

/** One edit of the metadata object: a field dropped, retyped, or a nested part damaged. */
function editMeta(f: Fuzz, m: Record<string, unknown>): void {
  const fields = [
    'format',
    'epoch',
    'step',
    'optimizerStep',
    'optimizerSteps',
    'optimizerGroups',
    'config',
    'loader',
    'generators',
  ];
  const k = f.pick(fields);
  switch (f.int(4)) {
    case 0:
      delete m[k];
      f.note(`meta: no ${k}`);
      break;
    case 1: {
      const v = badValue(f);
      m[k] = v;
      f.note(`meta: ${k} = ${JSON.stringify(v)}`);
      break;
    }
    case 2: {
      const steps = m.optimizerSteps as Record<string, unknown> | undefined;
      if (steps && typeof steps === 'object' && !Array.isArray(steps)) {
        const v = badValue(f);
        // defineProperty: '__proto__' becomes an own key (as JSON.parse makes it), not the prototype.
        Object.defineProperty(steps, f.pick([...Object.keys(steps), 'extra', '__proto__']), {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
        f.note(`meta: an optimizerSteps entry = ${JSON.stringify(v)}`);
      }
      break;
    }
    default: {
      const groups = m.optimizerGroups as unknown[];
      if (Array.isArray(groups) && groups.length) {
        const i = f.int(groups.length);
        const g = groups[i] as Record<string, unknown>;
        const damage: [string, () => void][] = [
          [
            'not an object',
            () => {
              groups[i] = badValue(f);
            },
          ],
          [
            'names not a list',
            () => {
              g.names = badValue(f);
            },
          ],
          [
            'a name not a string',
            () => {
              g.names = [1];
            },
          ],
          [
            'no weightDecay',
            () => {
              delete g.weightDecay;
            },
          ],
          [
            'weightDecay not a number',
            () => {
              g.weightDecay = badValue(f);
            },
          ],
        ];
        const [what, apply] = f.pick(damage);
        if (g && typeof g === 'object') apply();
        f.note(`meta: optimizerGroups[${i}] ${what}`);
      }
    }
  }
}

interface Input {
  bytes: Uint8Array;
}

export const target: FuzzTarget = {
  name: 'checkpoint',
  errorName: 'CheckpointError',
  minErrorKinds: 20,
  isOwnError: (e) => e instanceof CheckpointError,
  make(f) {
    const s = f.pick(SEEDS);
    const m = structuredClone(s.meta);
    let b: Uint8Array;
    switch (f.int(5)) {
      case 0: // bytes of the file: mostly a checksum or framing failure
        b = mutate(f, file(s, JSON.stringify(m)), { fields: [{ at: 0, size: 8, le: true, what: 'header length' }] });
        break;
      case 1: {
        // the metadata JSON as text
        const text = new Uint8Array(Buffer.from(JSON.stringify(m)));
        const damaged = Buffer.from(
          mutate(f, text, {
            tokens: ['"', '{', '}', '[', ']', ',', ':', '-1', 'null', '1e999'].map(
              (t) => new Uint8Array(Buffer.from(t)),
            ),
            maxOps: 2,
          }),
        ).toString('utf8');
        f.note('metadata text mutated');
        b = file(s, damaged);
        break;
      }
      case 2: {
        // the tensors: another dtype, a missing or extra one
        const tensors = { ...s.tensors };
        const names = Object.keys(tensors);
        const name = f.pick(names);
        const k = f.int(3);
        if (k === 0) {
          tensors[name] = { dtype: 'F16', shape: tensors[name].shape, data: tensors[name].data };
          f.note(`${name} stored as F16`);
        } else if (k === 1) {
          const extra: SafeTensorInput[] = [
            { dtype: 'I64', shape: [1], data: BigInt64Array.of(1n) },
            { dtype: 'U8', shape: [1], data: Uint8Array.of(1) },
            { dtype: 'F64', shape: [1], data: Float64Array.of(1) },
          ];
          tensors.extra = f.pick(extra);
          f.note(`an extra ${tensors.extra.dtype} tensor`);
        } else {
          delete tensors[name];
          f.note(`no ${name}`);
        }
        b = serializeSafetensors(tensors, { protodino: JSON.stringify(m) });
        break;
      }
      default: {
        // the metadata as an object
        const edits = 1 + f.int(2);
        for (let k = 0; k < edits; k++) editMeta(f, m);
        const metadata: Record<string, string> = f.chance(0.05) ? { other: 'x' } : { protodino: JSON.stringify(m) };
        b = serializeSafetensors(s.tensors, metadata);
      }
    }
    return { input: { bytes: b } satisfies Input, bytes: b.length };
  },
  run(c) {
    return readCheckpoint((c.input as Input).bytes, SOURCE);
  },
  check(result) {
    const ck = result as LoadedCheckpoint;
    const m = ck.meta;
    const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
    if (m.format !== 'protodino-dino-v1') throw new Error(`format ${String(m.format)}`);
    if (!count(m.epoch) || !count(m.step) || !count(m.optimizerStep))
      throw new Error('epoch, step or optimizerStep is not a count');
    if (
      typeof m.optimizerSteps !== 'object' ||
      m.optimizerSteps === null ||
      Object.values(m.optimizerSteps).some((v) => !count(v))
    )
      throw new Error('optimizerSteps');
    if (
      !Array.isArray(m.optimizerGroups) ||
      m.optimizerGroups.some((g) => !Array.isArray(g.names) || typeof g.weightDecay !== 'number')
    )
      throw new Error('optimizerGroups');
    for (const [name, t] of ck.tensors) {
      if (!(t.data instanceof Float32Array) || t.data.length !== numel(t.shape))
        throw new Error(`${name}: ${t.data.length} values for [${t.shape}]`);
    }
  },
  mustName: () => SOURCE,
  memLimit: (c) => 4 * c.bytes + MiB,
};
