#!/usr/bin/env node
// The protodino half of the PyTorch twin (scripts/torch-twin/train.py): what the twin takes from
// protodino's own code instead of re-implementing it, so the two cannot drift apart silently.
//
//   node scripts/torch-twin/protodino-side.mjs defaults
//       protodino's training defaults (DEFAULTS of src/train/config.ts) as one JSON line.
//   node scripts/torch-twin/protodino-side.mjs init --config RUN/log.jsonl|config.json --out init.safetensors
//       the step-0 weights protodino builds for that config and seed (student = teacher), as
//       student.* / teacher.* F32 tensors: train.py --init init.safetensors then starts from them.
//   node scripts/torch-twin/protodino-side.mjs batch --config ... --out batch.safetensors [--epoch E] [--batch I]
//       one training batch exactly as protodino's loader makes it (crop_k [B, C, S, S], indices),
//       for train.py --check_batch, which compares its own augmentation pipeline against it.
//
// Needs the build (npm run build): it imports dist/.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const dist = new URL('../../dist/src/', import.meta.url);
const imp = (p) => import(new URL(p, dist).href);

function readConfig(path, DEFAULTS, validate) {
  const text = readFileSync(path, 'utf8');
  let cfg = null;
  if (path.endsWith('.jsonl')) {
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const rec = JSON.parse(line);
      if (rec.event === 'start' && rec.config) {
        cfg = rec.config;
        break;
      }
    }
    if (!cfg) throw new Error(`${path}: no 'start' event with a config (is it a protodino run's log.jsonl?)`);
  } else {
    cfg = JSON.parse(text);
    if (cfg && typeof cfg === 'object' && cfg.config && typeof cfg.config === 'object') cfg = cfg.config;
  }
  return validate({ ...DEFAULTS, ...cfg });
}

async function trainDataset(cfg) {
  const { loadFashionMNIST, loadIdxDataset, subset } = await imp('data/index.js');
  let ds;
  if (cfg.dataset === 'fashion-mnist')
    ds = await loadFashionMNIST({ split: 'train', ...(cfg.data_path ? { dir: cfg.data_path } : {}) });
  else if (cfg.dataset === 'idx')
    ds = await loadIdxDataset({
      images: join(cfg.data_path, 'train-images-idx3-ubyte.gz'),
      labels: join(cfg.data_path, 'train-labels-idx1-ubyte.gz'),
    });
  else throw new Error(`dataset '${cfg.dataset}' is not supported by the twin (fashion-mnist, idx)`);
  if (cfg.long_tail > 1) throw new Error('--long_tail > 1 is not supported by the twin');
  if (cfg.subset > 0 && cfg.subset < ds.n)
    ds = subset(
      ds,
      Array.from({ length: cfg.subset }, (_, i) => i),
    );
  return ds;
}

async function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      config: { type: 'string' },
      out: { type: 'string' },
      epoch: { type: 'string', default: '0' },
      batch: { type: 'string', default: '0' },
    },
  });
  const { DEFAULTS, validate } = await imp('train/config.js');
  if (cmd === 'defaults') {
    process.stdout.write(`${JSON.stringify(DEFAULTS)}\n`);
    return;
  }
  if (!values.config || !values.out) throw new Error(`${cmd}: --config and --out are required`);
  const cfg = readConfig(values.config, DEFAULTS, validate);
  const { writeSafetensors } = await imp('io/safetensors.js');
  if (cmd === 'init') {
    const { createBackend } = await imp('backend/index.js');
    const { buildNetwork } = await imp('train/network.js');
    const ds = await trainDataset(cfg);
    const be = await createBackend({ kind: 'wasm', threads: 1 });
    try {
      // As the trainer builds them: the same seed gives student and teacher the same weights.
      const net = buildNetwork(cfg, be, ds.channels, cfg.seed);
      const tensors = new Map();
      for (const [name, t] of net.stateDict()) {
        const data = Float32Array.from(await t.data());
        tensors.set(`student.${name}`, { dtype: 'F32', shape: [...t.shape], data });
        tensors.set(`teacher.${name}`, { dtype: 'F32', shape: [...t.shape], data });
      }
      net.dispose();
      writeSafetensors(values.out, tensors, { protodino_init: JSON.stringify({ seed: cfg.seed, arch: cfg.arch }) });
      console.log(`wrote ${values.out}: protodino's step-0 weights for ${cfg.arch}, seed ${cfg.seed}`);
    } finally {
      be.destroy();
    }
    return;
  }
  if (cmd === 'batch') {
    const { channelStats } = await imp('data/index.js');
    const { resolveMultiCrop } = await imp('data/multicrop.js');
    const { BatchMaker, viewBatch } = await imp('data/batch.js');
    const { seedWords } = await imp('data/rng.js');
    const ds = await trainDataset(cfg);
    // The trainer's crop options (src/train/trainer.ts), resolved as its Loader resolves them.
    const crops = resolveMultiCrop(
      {
        globalSize: cfg.global_crops_size,
        localSize: cfg.local_crops_size,
        localCrops: cfg.local_crops_number,
        globalScale: cfg.global_crops_scale,
        localScale: cfg.local_crops_scale,
        jitterP: cfg.color_jitter_prob,
        globalBlurP: cfg.global_blur_prob,
        localBlurP: cfg.local_blur_prob,
        blurSigma: cfg.blur_sigma,
        globalSolarizeP: [0, cfg.solarize_prob],
      },
      ds.channels,
      () => channelStats(ds),
    );
    const maker = new BatchMaker(
      {
        n: ds.n,
        channels: ds.channels,
        height: ds.height,
        width: ds.width,
        batchSize: cfg.batch_size,
        dropLast: true,
        shuffle: true,
        seed: seedWords(cfg.seed),
        crops,
      },
      ds.images,
      ds.labels,
    );
    const { header, buffer } = maker.make(Number(values.epoch), Number(values.batch));
    const b = viewBatch(header, buffer);
    const tensors = new Map();
    b.crops.forEach((c, k) => {
      const S = header.cropSizes[k];
      tensors.set(`crop_${k}`, {
        dtype: 'F32',
        shape: [header.size, header.channels, S, S],
        data: Float32Array.from(c),
      });
    });
    tensors.set('indices', { dtype: 'I32', shape: [header.size], data: Int32Array.from(b.indices) });
    writeSafetensors(values.out, tensors, {
      mean: JSON.stringify(crops.mean),
      std: JSON.stringify(crops.std),
      epoch: String(values.epoch),
      batch: String(values.batch),
    });
    console.log(
      `wrote ${values.out}: epoch ${values.epoch} batch ${values.batch}, ${header.size} images, crops ${header.cropSizes.join(' ')}`,
    );
    return;
  }
  throw new Error(`unknown command '${cmd}' (defaults, init, batch)`);
}

main().catch((e) => {
  process.stderr.write(`protodino-side: ${e.message}\n`);
  process.exitCode = 1;
});
