// A run's data and network, for every command that trains, evaluates or inspects a run: the images
// a config trains on, the bank and test images it is judged on, the normalization training used, and
// the network rebuilt from a checkpoint. Written once so that train, eval, embed, analyze, report,
// experiments and the demo cannot disagree on any of them.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import {
  channelStats,
  heldOutSplit,
  loadCifar10,
  loadFashionMNIST,
  loadIdxDataset,
  loadImageFolder,
  longTail,
  subset,
  type ChannelStats,
  type Dataset,
} from '../data/index.js';
import { readCheckpoint, sub, type LoadedCheckpoint } from './checkpoint.js';
import { readPthRunCheckpoint } from './pth-run.js';
import { DEFAULTS, validate, type TrainConfig } from './config.js';
import { buildNetwork, type DinoNetwork } from './network.js';

/** A protodino checkpoint with its training config (validated, completed with today's defaults). */
export interface RunCheckpoint {
  path: string;
  ck: LoadedCheckpoint;
  cfg: TrainConfig;
}

/** The training config stored in a checkpoint, completed with today's defaults and validated. */
export function checkpointConfig(path: string, ck: LoadedCheckpoint): TrainConfig {
  const stored = ck.meta.config;
  if (!stored || typeof stored !== 'object')
    throw new Error(`${path}: the checkpoint metadata holds no training config`);
  return validate({ ...DEFAULTS, ...(stored as Partial<TrainConfig>) });
}

/** Reads a protodino checkpoint for command `cmd`, refusing other files with a message that says why. */
export function readRunCheckpoint(cmd: string, path: string): RunCheckpoint {
  if (!existsSync(path)) throw new Error(`${cmd}: no such file '${path}'`);
  let ck: LoadedCheckpoint;
  try {
    // A .pth of train_ddp.py or export --to pth carries the config in its args; others are refused there.
    ck = /\.(pth|pt)$/.test(path) ? readPthRunCheckpoint(path) : readCheckpoint(path);
  } catch (e) {
    throw new Error(`${cmd}: ${(e as Error).message}`);
  }
  return { path, ck, cfg: checkpointConfig(path, ck) };
}

/** The checkpoint's teacher (default) or student, live on `be` with its trained weights. The caller disposes it. */
export function networkFromCheckpoint(
  run: RunCheckpoint,
  be: Backend,
  channels: number,
  which: 'teacher' | 'student' = 'teacher',
): DinoNetwork {
  const net = buildNetwork(run.cfg, be, channels, run.cfg.seed, 0);
  try {
    net.loadStateDict(sub(run.ck.tensors, `${which}.`));
  } catch (e) {
    net.dispose();
    throw new Error(`${run.path}: ${(e as Error).message}`);
  }
  return net;
}

/** The dataset's own split as stored; null for a test split it does not have (image folders, idx without t10k files). */
async function readSplit(cfg: TrainConfig, split: 'train' | 'test'): Promise<Dataset | null> {
  const dir = cfg.data_path ? { dir: cfg.data_path } : {};
  switch (cfg.dataset) {
    case 'fashion-mnist':
      return loadFashionMNIST({ split, ...dir });
    case 'cifar10':
      return loadCifar10({ dir: cfg.data_path, split });
    case 'idx': {
      const prefix = split === 'train' ? 'train' : 't10k';
      const images = join(cfg.data_path, `${prefix}-images-idx3-ubyte.gz`),
        labels = join(cfg.data_path, `${prefix}-labels-idx1-ubyte.gz`);
      return split === 'train' || (existsSync(images) && existsSync(labels))
        ? loadIdxDataset({ images, labels })
        : null;
    }
    case 'folder':
      return split === 'train' ? loadImageFolder({ root: cfg.data_path, size: cfg.global_crops_size }) : null;
  }
}

/** The long tail (seeded) and subset a config cuts from its training split. */
function trainedPart(cfg: TrainConfig, split: Dataset): Dataset {
  let ds = split;
  if (cfg.long_tail > 1) ds = longTail(ds, { ratio: cfg.long_tail, seed: cfg.seed }).dataset;
  if (cfg.subset > 0 && cfg.subset < ds.n)
    ds = subset(
      ds,
      Array.from({ length: cfg.subset }, (_, i) => i),
    );
  return ds;
}

/** The images a config trains on: its training split (all of an image folder), long-tailed and cut as the flags say. */
export async function trainingImages(cfg: TrainConfig): Promise<Dataset> {
  return trainedPart(cfg, (await readSplit(cfg, 'train'))!);
}

/** The normalization a checkpoint's run trained with; null for checkpoints written before it was stored. */
export function checkpointStats(ck: LoadedCheckpoint): ChannelStats | null {
  return ck.meta.normalization ?? null;
}

export interface EvalData {
  /** The k-NN / probe bank: the training split (less the held-out test images where the dataset has no test split), long-tailed at `longTailRatio`. */
  train: Dataset;
  test: Dataset;
  /** The normalization training used. */
  mean: number[];
  std: number[];
  /** 'checkpoint' when read from its metadata, 'computed' when recomputed from the training images. */
  statsFrom: 'checkpoint' | 'computed';
  /** Per-class training counts of the long-tail subset; null for a balanced bank. */
  longTailCounts: number[] | null;
  longTailRatio: number;
}

/**
 * The images a run is judged on, normalised as training normalised them. `longTail` (default the
 * run's) long-tails the bank; 1 gives the whole split, so row i is the split's image i. `stats` are
 * the checkpoint's (checkpointStats); without them they are computed from the training images.
 */
export async function evalData(
  cfg: TrainConfig,
  opts: { longTail?: number; stats?: ChannelStats | null } = {},
): Promise<EvalData> {
  const ratio = opts.longTail ?? cfg.long_tail;
  const full = (await readSplit(cfg, 'train'))!;
  let bank = full;
  let test = await readSplit(cfg, 'test');
  if (!test) {
    // No test split (image folders): a seeded, stratified fifth (at most 2000 images) is held out of the bank.
    const s = heldOutSplit(full, { seed: cfg.seed, count: Math.min(2000, Math.floor(full.n / 5)) });
    bank = s.train;
    test = s.heldOut;
  }
  let longTailCounts: number[] | null = null;
  if (ratio > 1) {
    const lt = longTail(bank, { ratio, seed: cfg.seed });
    bank = lt.dataset;
    longTailCounts = lt.counts;
  }
  // Checkpoints written before the statistics were stored in their metadata: recomputed from the
  // images the trainer trained on, as the trainer computes them (for Fashion-MNIST, idx and CIFAR
  // runs evaluated at their own long-tail ratio, the figures every command used before).
  const stats = opts.stats ?? channelStats(trainedPart(cfg, full));
  return {
    train: bank,
    test,
    mean: stats.mean,
    std: stats.std,
    statsFrom: opts.stats ? 'checkpoint' : 'computed',
    longTailCounts,
    longTailRatio: ratio,
  };
}
