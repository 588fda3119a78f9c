// The default job (npm start): the frozen-representation experiment, then a short full training, each
// as DINO with and without KoLeo-proto at the same seed, printing loss, unique prototypes and k-NN.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { createBackend } from '../backend/index.js';
import { train } from '../train/trainer.js';
import { DEFAULTS, validate, type TrainConfig } from '../train/config.js';
import { buildNetwork } from '../train/network.js';
import { evaluateNetwork, type NetworkReport } from '../train/evaluate.js';
import { loadFashionMNIST, type Dataset } from '../data/index.js';
import { PRESETS } from '../train/presets.js';

const FROZEN = { ...PRESETS['demo-frozen'].config, preset: 'demo-frozen' };
const FULL = { ...PRESETS['demo-full'].config, preset: 'demo-full' };

interface Row {
  name: string;
  firstLoss: number;
  lastLoss: number;
  report: NetworkReport;
  seconds: number;
}

async function runOne(name: string, cfg: Partial<TrainConfig>, be: Backend, train_: Dataset, test: Dataset, withKnn: boolean): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'protodino-demo-'));
  const t0 = performance.now();
  let report: NetworkReport | null = null;
  try {
    const r = await train({ ...cfg, output_dir: dir, log_every: 50, quiet: true }, {
      backend: be,
      onEpoch: async ({ final, teacher }) => {
        if (final) report = await evaluateNetwork(teacher, train_, test, be, { knn: withKnn });
      },
    });
    const losses = r.history.map((h) => h.loss);
    return { name, firstLoss: losses[0], lastLoss: losses.at(-1)!, report: report!, seconds: (performance.now() - t0) / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function pct(x: number): string {
  return (100 * x).toFixed(1);
}

export async function demo(argv: string[]): Promise<void> {
  const quick = argv.includes('--quick');
  const kind = (argv.find((a) => a.startsWith('--backend='))?.split('=')[1] ?? 'auto') as 'wasm' | 'webgpu' | 'auto';
  const be = await createBackend({ kind });
  console.log(`protodino demo on ${be.description}\n`);
  const trainSet = await loadFashionMNIST({ split: 'train' });
  const testSet = await loadFashionMNIST({ split: 'test' });
  try {
    console.log('1. Frozen representations: 64-d PCA of the pixels, only the K = 1024 prototypes trained');
    console.log(`   (${FROZEN.max_steps} steps, batch ${FROZEN.batch_size}, lr ${FROZEN.lr}, teacher momentum ${FROZEN.momentum_teacher})\n`);
    console.log('   regulariser   KoLeo-proto  loss first → last   unique ε=0.025  unique ε=0.1   time');
    for (const centering of ['centering', 'sinkhorn'] as const) {
      for (const kp of [0, 0.1]) {
        const cfg = { ...FROZEN, centering, koleo_proto: kp, ...(quick ? { max_steps: 200 } : {}) };
        const row = await runOne(`${centering}`, cfg, be, trainSet, testSet, false);
        const u = row.report.uniquePrototypes;
        console.log(`   ${centering.padEnd(12)}  ${String(kp).padEnd(11)}  ${row.firstLoss.toFixed(3)} → ${row.lastLoss.toFixed(3)}     ${String(u['0.025']).padStart(5)} / 1024    ${String(u['0.1']).padStart(5)} / 1024  ${row.seconds.toFixed(0)}s`);
      }
    }
    const full = validate({ ...DEFAULTS, ...FULL, ...(quick ? { max_steps: 20 } : {}) });
    console.log(`\n2. Full training: ${full.arch}, ${full.max_steps} steps, batch ${full.batch_size}, 2 global + ${full.local_crops_number} local crops, lr ${full.lr}`);
    console.log(`   (K = ${full.out_dim}${full.use_bn_in_head ? ', BatchNorm in the head' : ''}, teacher temperature ${full.teacher_temp}, teacher momentum ${full.momentum_teacher})`);
    const init = buildNetwork(full, be, trainSet.channels, full.seed, 0);
    const base = await evaluateNetwork(init, trainSet, testSet, be);
    init.dispose();
    console.log(`   random initialisation: k-NN top-1 ${pct(base.knnTop1)}%, unique prototypes ${base.uniquePrototypes['0.025']} / ${full.out_dim}\n`);
    console.log('   KoLeo-proto  loss first → last   k-NN top-1 (init)   unique ε=0.025  unique ε=0.1   time');
    for (const kp of [0, 0.1]) {
      const row = await runOne('full', { ...full, koleo_proto: kp }, be, trainSet, testSet, true);
      const u = row.report.uniquePrototypes;
      console.log(`   ${String(kp).padEnd(11)}  ${row.firstLoss.toFixed(3)} → ${row.lastLoss.toFixed(3)}     ${pct(row.report.knnTop1)}% (${pct(base.knnTop1)}%)     ${String(u['0.025']).padStart(5)} / ${full.out_dim}    ${String(u['0.1']).padStart(5)} / ${full.out_dim}  ${row.seconds.toFixed(0)}s`);
    }
    console.log('\nk-NN: DINO protocol (cosine, k = 20, T = 0.07), teacher backbone features, 10k train / 2k test images.');
  } finally {
    be.destroy();
  }
}
