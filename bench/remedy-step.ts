// The remedies' price (issue 18): one training step of the experiment grid's full cell
// (src/experiments/grid.ts runConfig: the fmnist-resnet recipe, K = 1024 and 4096) for plain DINO,
// DINO + KoLeo-proto (λ = 0.1) and DINO with EM prototypes (--prototypes em), on wasm with every
// core. The grid's own step times cannot say this: its runs shared a busy machine. Methods alternate
// within a pass and the best of the passes counts, so a burst of other load spoils one pass, not a
// method. Memory is the wasm linear memory at the end of a case (it only grows: the high-water mark).
import { availableParallelism } from 'node:os';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { runConfig, type Method } from '../src/experiments/grid.js';
import { DEFAULTS, validate } from '../src/train/config.js';
import { timeDinoStep } from './dino-step.js';
import { markdownTable, quickMode, type SuiteReport } from './harness.js';

const KS = quickMode() ? [64] : [1024, 4096];
const PASSES = quickMode() ? 1 : 3;
const SAMPLING = quickMode()
  ? { warmup: 1, minSteps: 2, maxSteps: 2, minSeconds: 0 }
  : { warmup: 2, minSteps: 4, maxSteps: 10, minSeconds: 8 };
const METHODS: { name: string; method: Method; koleoProto: number }[] = [
  { name: 'dino', method: 'dino', koleoProto: 0 },
  { name: 'dino + KoLeo-proto', method: 'dino', koleoProto: 0.1 },
  { name: 'dino + EM prototypes', method: 'em', koleoProto: 0 },
];

interface Row {
  k: number;
  method: string;
  pass: number;
  medianSeconds: number;
  seconds: number[];
  peakBytes: number;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

export async function remedyStepSuite(): Promise<SuiteReport> {
  const threads = availableParallelism();
  const rows: Row[] = [];
  let batch = 0;
  for (let pass = 0; pass < PASSES; pass++) {
    for (const k of KS) {
      for (const m of METHODS) {
        const cfg = validate({
          ...DEFAULTS,
          ...runConfig('full', 'balanced', m.method, m.koleoProto, 0, { quick: quickMode() }, k),
          threads,
        });
        batch = cfg.batch_size;
        const be = await WasmBackend.create({ threads });
        try {
          const t = await timeDinoStep(be, cfg, SAMPLING);
          const peakBytes = be.rt.memory.buffer.byteLength;
          rows.push({ k, method: m.name, pass, medianSeconds: t.medianSeconds, seconds: t.seconds, peakBytes });
          console.log(
            `remedy-step K=${k} ${m.name} pass ${pass}: ${(t.medianSeconds * 1000).toFixed(0)} ms/step ` +
              `(${t.seconds.map((s) => s.toFixed(2)).join(', ')} s), peak ${mib(peakBytes)}`,
          );
        } finally {
          be.destroy();
        }
      }
    }
  }
  const best = (k: number, method: string) =>
    rows.filter((r) => r.k === k && r.method === method).sort((a, b) => a.medianSeconds - b.medianSeconds)[0];
  const table = KS.flatMap((k) => {
    const base = best(k, 'dino');
    return METHODS.map((m) => {
      const r = best(k, m.name);
      return [
        k,
        m.name,
        (r.medianSeconds * 1000).toFixed(0),
        `${(r.medianSeconds / base.medianSeconds).toFixed(2)}×`,
        mib(r.peakBytes),
        `${(r.peakBytes / base.peakBytes).toFixed(2)}×`,
      ];
    });
  });
  return {
    summaries: [],
    table: [
      `one step of the grid's full cell (fmnist-resnet recipe, batch ${batch}), wasm ${threads}t, median step, best of ${PASSES} passes:`,
      '',
      markdownTable(['K', 'method', 'ms/step', '÷ dino', 'peak memory', '÷ dino'], table),
    ].join('\n'),
    details: { threads, batch, passes: PASSES, sampling: SAMPLING, rows },
  };
}
