// Per-run analysis of the final checkpoint: unique prototypes of the teacher's head (greedy rule,
// the count the training diagnostics use), how spread its prototypes are (principal plane and
// pairwise angles) and the teacher's image assignments for the gallery.
import type { Backend } from '../backend/backend.js';
import {
  countUniquePrototypes,
  EPS_METRICS,
  prototypeSpread,
  type EpsMetric,
  type PrototypeSpread,
} from '../eval/index.js';
import { SWEEP_EPS } from '../eval/unique.js';
import type { RunData } from './runs.js';
import { teacherAssignments } from './assign.js';
import { checkpointConfig } from '../train/run-data.js';
import { buildGallery, type GalleryGroup, type GalleryOptions } from './gallery.js';
import { greedyMembers, normalizeRows } from './members.js';

export interface RunAnalysis {
  /** The checkpoint's step (the last logged step when there is no checkpoint). */
  step: number;
  unique: {
    prototypes: number;
    dim: number;
    perEps: { eps: number; unique: number; cosineThreshold: number; largestGroup: number }[];
    nearest: { edges: Float64Array; counts: Int32Array };
    /** What the ε of perEps measure. */
    metric: EpsMetric;
    /** Greedy unique counts at SWEEP_EPS under both conventions, whatever --eps_metric says. */
    sweep: { metric: EpsMetric; eps: number; unique: number }[];
  } | null;
  /** The teacher's prototypes on their principal plane and the histogram of their pairwise angles. */
  spread: PrototypeSpread | null;
  gallery: { eps: number; images: number; used: number; groups: GalleryGroup[] } | null;
  /** Why a part is missing (no checkpoint, no prototypes in it). */
  notes: string[];
}

/** The thresholds the report's ε sweep draws, in both conventions. */
export { SWEEP_EPS };

export interface AnalysisOptions extends GalleryOptions {
  eps?: number[];
  /** What --eps measures (default euclidean). */
  epsMetric?: EpsMetric;
  /** Evaluation images the teacher assigns (default 2000). */
  galleryImages?: number;
  /** Skip the gallery (no dataset needed); without it a gallery that cannot be made is an error. */
  noGallery?: boolean;
}

const PROTO_KEYS = ['teacher.head.last_layer.weight_v', 'teacher.head.last_layer.weight'];

export async function analyzeRun(run: RunData, be: Backend, opts: AnalysisOptions = {}): Promise<RunAnalysis> {
  const eps = opts.eps ?? [0.025, 0.1];
  const out: RunAnalysis = {
    step: run.checkpoint?.meta.step ?? run.steps.at(-1)?.step ?? 0,
    unique: null,
    spread: null,
    gallery: null,
    notes: [],
  };
  const ck = run.checkpoint;
  if (!ck) {
    out.notes.push('no checkpoint.safetensors: no final prototype count or gallery');
    return out;
  }
  const key = PROTO_KEYS.find((k) => ck.tensors.has(k));
  if (!key) {
    out.notes.push(`checkpoint has none of ${PROTO_KEYS.join(', ')}`);
    return out;
  }
  const w = ck.tensors.get(key)!;
  const [K, D] = w.shape;
  const res = await countUniquePrototypes(
    { data: w.data, shape: [K, D] },
    { eps, metric: opts.epsMetric ?? 'euclidean', rule: 'greedy', backend: be, bins: 100 },
  );
  const sweep: { metric: EpsMetric; eps: number; unique: number }[] = [];
  for (const metric of EPS_METRICS) {
    const s = await countUniquePrototypes(
      { data: w.data, shape: [K, D] },
      { eps: [...SWEEP_EPS], metric, rule: 'greedy', backend: be },
    );
    for (const p of s.perEps) sweep.push({ metric, eps: p.eps, unique: p.greedy!.unique });
  }
  out.unique = {
    prototypes: K,
    dim: D,
    perEps: res.perEps.map((p) => ({
      eps: p.eps,
      unique: p.greedy!.unique,
      cosineThreshold: p.cosineThreshold,
      largestGroup: p.greedy!.groupSizes[0] ?? 0,
    })),
    nearest: { edges: res.nearest.edges, counts: res.nearest.counts },
    metric: res.metric,
    sweep,
  };
  if (K >= 2) out.spread = await prototypeSpread({ data: w.data, shape: [K, D] }, { backend: be });
  if (opts.noGallery) return out;
  // A failure here is an error, not a note: a note hid that the teacher of iBOT runs could not be rebuilt.
  let a;
  try {
    const path = run.checkpointPath!;
    a = await teacherAssignments({ path, ck, cfg: checkpointConfig(path, ck) }, be, opts.galleryImages ?? 2000);
  } catch (e) {
    throw new Error(
      `report: ${run.name}: the prototype gallery cannot be made: ${(e as Error).message} (--no-gallery leaves it out)`,
    );
  }
  const first = res.perEps[0];
  const members = greedyMembers(normalizeRows(w.data, K, D), K, D, first.greedy!, first.cosineThreshold);
  let used = 0;
  for (const c of a.counts) if (c > 0) used++;
  out.gallery = {
    eps: first.eps,
    images: a.argmax.length,
    used,
    groups: buildGallery(first.greedy!, members, a, opts),
  };
  return out;
}
