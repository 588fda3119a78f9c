// Diagnostics of a network during and after training: prototype usage of the head on un-augmented
// images, and the per-epoch record (unique prototypes, usage, k-NN) the trainer logs.
import { noGrad, tidy } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import {
  countUniquePrototypes,
  knnClassify,
  prototypeUsage,
  type HostMatrix,
  type PrototypeUsage,
} from '../eval/index.js';
import { type TrainConfig } from './config.js';
import type { DinoNetwork } from './network.js';
import { embedDataset } from './evaluate.js';
import { evalData, type EvalData } from './run-data.js';
import type { TrainHooks } from './trainer.js';

/** Usage of the head's prototypes on already-embedded features, softmax at temperature `temp`. */
export async function headUsage(
  net: DinoNetwork,
  features: HostMatrix,
  temp: number,
  batchSize = 512,
): Promise<PrototypeUsage> {
  const [n, d] = features.shape;
  const be = net.backend;
  const wasTraining = net.training;
  net.eval();
  async function* logits() {
    for (let s = 0; s < n; s += batchSize) {
      const m = Math.min(batchSize, n - s);
      const t = noGrad(() =>
        tidy(() => net.head.forward(tensor(features.data.subarray(s * d, (s + m) * d), [m, d], be))),
      );
      try {
        yield t;
      } finally {
        t.dispose();
      }
    }
  }
  try {
    return await prototypeUsage(logits(), { temperature: temp });
  } finally {
    net.train(wasTraining);
  }
}

export function usageJson(u: PrototypeUsage, temperature: number): Record<string, number> {
  return {
    samples: u.samples,
    prototypes: u.prototypes,
    used: u.used,
    entropy: u.entropy,
    entropyFraction: u.entropyFraction,
    perplexity: u.perplexity,
    temperature,
  };
}

/**
 * The train command's per-epoch diagnostics: unique prototypes at ε = 0.025 and 0.1 (Euclidean, plus
 * 1 − cosine with --eps_metric cosine), usage of the
 * teacher's prototypes and k-NN top-1 on held-out images; returned into the log's epoch record.
 */
export function epochDiagnostics(
  cfg: TrainConfig,
  print: (line: string) => void = (l) => console.log(l),
): NonNullable<TrainHooks['onEpoch']> {
  let data: Promise<EvalData> | null = null;
  return async ({ epoch, teacher }) => {
    const t0 = performance.now();
    data ??= evalData(cfg);
    const d = await data;
    const w = teacher.head.last_layer.weight_v;
    const protos = await countUniquePrototypes(w, { eps: [0.025, 0.1], rule: 'greedy' });
    const unique: Record<string, number> = {};
    for (const e of protos.perEps) unique[String(e.eps)] = e.greedy!.unique;
    // unique_prototypes stays Euclidean whatever --eps_metric says (the alarms and older readers
    // rely on it); the cosine counts are added under their own key.
    const cos =
      cfg.eps_metric === 'cosine'
        ? await countUniquePrototypes(w, { eps: [0.025, 0.1], rule: 'greedy', metric: 'cosine' })
        : null;
    const uniqueCos: Record<string, number> = {};
    for (const e of cos?.perEps ?? []) uniqueCos[String(e.eps)] = e.greedy!.unique;
    const shown = cos ? uniqueCos : unique;
    const opts = { mean: d.mean, std: d.std };
    const tr = await embedDataset(teacher, d.train, { ...opts, max: cfg.eval_train_max });
    const te = await embedDataset(teacher, d.test, { ...opts, max: cfg.eval_test_max });
    const usage = await headUsage(teacher, te.features, cfg.teacher_temp);
    const k = Math.min(20, tr.labels.length);
    const knn = (
      await knnClassify(tr.features, tr.labels, te.features, te.labels, {
        k,
        temperature: 0.07,
        backend: teacher.backend,
      })
    )[0];
    const rec = {
      unique_prototypes: unique,
      eps_metric: cfg.eps_metric,
      ...(cos ? { unique_prototypes_cosine: uniqueCos } : {}),
      prototypes: protos.prototypes,
      usage_used: usage.used,
      usage_entropy: usage.entropy,
      usage_entropy_fraction: usage.entropyFraction,
      knn_top1: knn.top1,
      knn_k: k,
      eval_train_rows: tr.labels.length,
      eval_test_rows: te.labels.length,
      eval_seconds: (performance.now() - t0) / 1000,
    };
    print(
      `epoch ${epoch + 1}: unique ${shown['0.025']} (ε 0.025) ${shown['0.1']} (ε 0.1, ${cfg.eps_metric}) of ${protos.prototypes}; ` +
        `usage ${usage.used} used, entropy ${(100 * usage.entropyFraction).toFixed(1)}% of max; ` +
        `k-NN@${k} top-1 ${(100 * knn.top1).toFixed(2)}% (${tr.labels.length}/${te.labels.length} images, ${rec.eval_seconds.toFixed(1)} s)`,
    );
    return rec;
  };
}
