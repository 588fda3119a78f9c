// protodino embed <checkpoint> --out FILE.safetensors: backbone features of a dataset split as a
// safetensors file ('features' F32 [N, D], 'labels' I32 [N]) for evaluation outside protodino.
import { parseArgs } from 'node:util';
import { createBackend } from '../backend/index.js';
import { embedDataset } from '../train/evaluate.js';
import { writeSafetensors } from '../io/safetensors.js';
import { checkpointStats, evalData, networkFromCheckpoint, readRunCheckpoint } from '../train/run-data.js';
import { BACKEND_OPTION, backendKind, intFlag } from './args.js';

export async function embed(argv: string[]): Promise<void> {
  const cmd = 'embed';
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      out: { type: 'string' },
      split: { type: 'string', default: 'test' },
      max: { type: 'string' },
      student: { type: 'boolean', default: false },
      ...BACKEND_OPTION,
    },
  });
  if (positionals.length !== 1)
    throw new Error(
      `${cmd}: give exactly one protodino checkpoint (.safetensors, or a checkpoint.pth that train_ddp.py or export --to pth wrote)`,
    );
  if (!values.out) throw new Error(`${cmd}: --out FILE.safetensors is required`);
  if (values.split !== 'train' && values.split !== 'test')
    throw new Error(`${cmd}: --split must be train or test, got '${values.split}'`);
  const max = intFlag(cmd, 'max', values.max, Infinity);
  const kind = backendKind(cmd, values.backend);
  const path = positionals[0];
  const run = readRunCheckpoint(cmd, path);
  const { ck, cfg } = run;
  // The plain split (no long-tail subsampling): row i is the split's image i (image folders: the
  // seeded held-out fifth is the test split, the rest the train split).
  const data = await evalData(cfg, { longTail: 1, stats: checkpointStats(ck) });
  const ds = values.split === 'train' ? data.train : data.test;
  const which = values.student ? 'student' : 'teacher';
  const be = await createBackend({ kind });
  try {
    const net = networkFromCheckpoint(run, be, ds.channels, which);
    let e;
    try {
      e = await embedDataset(net, ds, { max, mean: data.mean, std: data.std });
    } finally {
      net.dispose();
    }
    const [n, d] = e.features.shape;
    writeSafetensors(
      values.out,
      {
        features: { dtype: 'F32', shape: [n, d], data: e.features.data },
        labels: { dtype: 'I32', shape: [n], data: e.labels },
      },
      {
        source: path,
        network: which,
        arch: cfg.arch,
        dataset: ds.name ?? cfg.dataset,
        split: values.split,
        classes: JSON.stringify(ds.classes),
        epoch: String(ck.meta.epoch),
        step: String(ck.meta.step),
      },
    );
    console.log(
      `wrote ${values.out}: features [${n}, ${d}] F32, labels [${n}] I32 (${which}, ${ds.name ?? cfg.dataset})`,
    );
  } finally {
    be.destroy();
  }
}
