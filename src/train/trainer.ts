// train(config): DINO-family self-distillation written once on the tensor interface. Student and
// teacher networks, multi-crop batches from the prefetching loader, DINO loss with centering /
// Sinkhorn-Knopp / me-max, optional KoLeo and KoLeo-proto, AdamW with DINO's schedules, per-parameter
// clipping, teacher EMA, checkpoints holding the whole state, JSON-lines log and a progress line.
import { mkdirSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend, DeviceTraffic } from '../backend/backend.js';
import { createBackend, WasmBackend } from '../backend/index.js';
import { ProfiledBackend, profileTable, type ProfileReport } from '../backend/profile.js';
import { empty, zeros } from '../tensor/create.js';
import { keep, noGrad, tidy, type Tensor } from '../tensor/tensor.js';
import { concat } from '../tensor/ops/layout.js';
import { reshape } from '../tensor/ops/view.js';
import { AdamW, decayGroups } from '../tensor/ops/optim.js';
import { channelStats, Loader, type ChannelStats, type Dataset, type LoaderState } from '../data/index.js';
import { cosineScheduler, teacherTempSchedule } from '../util/schedules.js';
import {
  applyStep,
  dinoGradients,
  discardStep,
  disposeGradients,
  emForHeads,
  type DinoState,
  type MicroBatch,
  type StepGradients,
  type StepSchedule,
} from './step.js';
import { JsonlLogger, readJsonl } from './log.js';
import { CollapseAlarms, parseAlarmState, resumedAlarms, type AlarmRecord } from './alarms.js';
import { Progress } from './progress.js';
import { NormWatch, parameterNorms, parseInitialNorms, type NormAlarmRecord } from './norm-watch.js';
import { DEFAULTS, validate, type TrainConfig } from './config.js';
import { RUN_ONLY } from './flags.js';
import { buildNetwork, type DinoNetwork } from './network.js';
import type { HostTensor } from '../nn/module.js';
import { PCAProjection } from '../nn/pca.js';
import { cropMasks, maskRng } from '../ssl/ibot.js';
import { KoleoProtoCache } from '../ssl/koleo-cache.js';
import {
  readCheckpoint,
  removeStaleTemporaries,
  restoreCheckpoint,
  rotate,
  saveCheckpoint,
  setAside,
  type LoadedCheckpoint,
} from './checkpoint.js';
import { trainingImages } from './run-data.js';
import { readSafetensorsMetadata } from '../io/safetensors.js';
import {
  checkProtodinoCheckpoint,
  dinoResumePoint,
  initLoaderState,
  loadBackbone,
  readInitFrom,
  type InitSource,
} from './init-from.js';

export interface StepRecord {
  epoch: number;
  step: number;
  loss: number;
  lr: number;
  wd: number;
  momentum: number;
  teacher_temp: number;
  img_per_s: number;
  /**
   * Seconds per step since the previous record, training only: checkpoint writes and the epoch
   * diagnostics between them are not counted (img_per_s leaves them out too).
   */
  step_s: number;
  /** The most bytes the backend held live at once since the previous record, epoch diagnostics excluded. */
  peak_bytes: number;
  /** --prototypes em: the E-step's β this step, and the components split since the last record. */
  em_beta?: number;
  em_split?: number;
}

export interface TrainResult {
  outputDir: string;
  steps: number;
  epochs: number;
  history: StepRecord[];
  checkpoint: string;
  /** --profile: per-step kernel times by family (also printed and written to profile.json). */
  profile?: ProfileReport;
  /**
   * Submits and CPU waits of each step of this invocation (the step, its divergence guard and its
   * statistics; not the log records' parameter norms or the checkpoints between steps).
   */
  traffic: StepTraffic;
  /** Collapse and parameter-norm alarms raised and cleared in this invocation (also in log.jsonl), in order. */
  alarms: (AlarmRecord | NormAlarmRecord)[];
}

export interface TrainHooks {
  /** Called after each epoch's checkpoint with the live networks (diagnostics plug in here). */
  onEpoch?(info: {
    epoch: number;
    step: number;
    final: boolean;
    student: DinoNetwork;
    teacher: DinoNetwork;
    backend: Backend;
  }): Promise<Record<string, unknown> | void>;
  /**
   * Called each step after the backward, before the loss and gradients are checked and applied,
   * with the student (gradients in .grad) and the loss: for inspecting gradients, and for tests that
   * inject faults. `step` is the number the step gets in the log (1-based).
   */
  afterBackward?(info: { step: number; student: DinoNetwork; loss: Tensor }): void;
  backend?: Backend;
}

/** Training stopped on a non-finite loss or gradient (`tensor`: 'loss' or a parameter's dotted name). */
export class DivergenceError extends Error {
  constructor(
    message: string,
    readonly step: number,
    readonly tensor: string,
  ) {
    super(message);
    this.name = 'DivergenceError';
  }
}

/** Submits and CPU waits per training step: the total over `steps` steps and the most in one. */
export interface StepTraffic {
  steps: number;
  submits: number;
  waits: number;
  maxSubmits: number;
  maxWaits: number;
}

/** --on_nan skip gives up after this many skipped steps in a row: the run has diverged for good. */
export const MAX_CONSECUTIVE_SKIPS = 10;

export async function train(config: Partial<TrainConfig>, hooks: TrainHooks = {}): Promise<TrainResult> {
  const cfg = validate({ ...DEFAULTS, ...config });
  mkdirSync(cfg.output_dir, { recursive: true });
  const ckptPath = join(cfg.output_dir, 'checkpoint.safetensors');
  // A run killed while writing a checkpoint leaves its temporary file behind.
  removeStaleTemporaries(ckptPath);
  const resumeFrom = cfg.resume ? readResumable(ckptPath, cfg.quiet) : null;
  if (resumeFrom?.fallback && existsSync(ckptPath)) resumeFrom.setAside = setAside(ckptPath);
  if (resumeFrom) warnConfigChanges(resumeFrom, cfg);
  // A run started from --init_from and then interrupted resumes from its own checkpoint.
  const init = cfg.init_from && !resumeFrom ? readInitFrom(cfg.init_from) : null;
  if (cfg.init_from && resumeFrom && !cfg.quiet)
    process.stderr.write(`protodino: resuming from ${resumeFrom.path}; --init_from ${cfg.init_from} is not read\n`);
  if (init?.kind === 'protodino') warnConfigChanges({ ...init.checkpoint, path: init.file }, cfg);

  const dataset = await trainingImages(cfg);
  const initLoader = init ? initLoaderState(init, cfg, dataset.n) : undefined;
  // Stored in every checkpoint: evaluations normalise with these, not with their own images' statistics.
  const stats = channelStats(dataset);
  // PCA projects whole images, so local crops are made at the global size there.
  const localSize = cfg.arch === 'pca' ? cfg.global_crops_size : cfg.local_crops_size;

  const base =
    hooks.backend ?? (await createBackend({ kind: cfg.backend, ...(cfg.threads > 0 ? { threads: cfg.threads } : {}) }));
  const be = cfg.profile ? new ProfiledBackend(base) : base;
  // Everything created from here on is released in the finally block, also when a step throws.
  const owned: { dispose(): void }[] = [];
  let log: JsonlLogger | null = null;
  let loader: Loader | null = null;
  try {
    log = new JsonlLogger(join(cfg.output_dir, 'log.jsonl'), { timestamps: true });
    loader = new Loader({
      dataset,
      batchSize: cfg.batch_size,
      seed: cfg.seed,
      crops: {
        globalSize: cfg.global_crops_size,
        localSize,
        localCrops: cfg.local_crops_number,
        globalScale: cfg.global_crops_scale,
        localScale: cfg.local_crops_scale,
        jitterP: cfg.color_jitter_prob,
        globalBlurP: cfg.global_blur_prob,
        localBlurP: cfg.local_blur_prob,
        blurSigma: cfg.blur_sigma,
        globalSolarizeP: [0, cfg.solarize_prob],
        mean: stats.mean,
        std: stats.std,
      },
      ...(resumeFrom ? { resume: resumeFrom.meta.loader as LoaderState } : initLoader ? { resume: initLoader } : {}),
    });
    return await run(cfg, be, dataset, stats, loader, log, resumeFrom, init, ckptPath, localSize, hooks, owned);
  } finally {
    for (const o of owned.reverse()) o.dispose();
    await loader?.close();
    log?.close();
    if (!hooks.backend) be.destroy();
  }
}

/** For the start record: the wasm kernels' blocking and thread split (--tune) and where it came from. */
function wasmTuning(be: Backend): { tuning?: object } {
  const raw = be instanceof ProfiledBackend ? be.inner : be;
  return raw instanceof WasmBackend ? { tuning: { ...raw.rt.tuning, source: raw.rt.tuningSource } } : {};
}

async function run(
  cfg: TrainConfig,
  be: Backend,
  dataset: Dataset,
  stats: ChannelStats,
  loader: Loader,
  log: JsonlLogger,
  resumeFrom: ResumePoint | null,
  init: InitSource | null,
  ckptPath: string,
  localSize: number,
  hooks: TrainHooks,
  owned: { dispose(): void }[],
): Promise<TrainResult> {
  const channels = dataset.channels;
  const student = buildNetwork(cfg, be, channels, cfg.seed);
  owned.push(student);
  const teacher = buildNetwork(cfg, be, channels, cfg.seed, 0);
  owned.push(teacher);
  if (cfg.arch === 'pca' && !resumeFrom && !init) {
    // The PCA backbone is fitted once on the (normalised) training images, shared by both networks.
    const sample = pcaSample(dataset, cfg.global_crops_size, 10000, cfg.seed);
    const key = `${cfg.pca_dim}|${sample.n}|${fingerprint(sample.data)}`;
    // The fit is deterministic and costs seconds of host arithmetic; runs in one process that fit the
    // same sample (the default job's four frozen runs) reuse it.
    let fitted = pcaFits.get(key);
    if (fitted) {
      student.backbone.loadStateDict(fitted);
    } else {
      await (student.backbone as PCAProjection).fit(sample.data, sample.n);
      fitted = await student.backbone.hostState();
      pcaFits.clear();
      pcaFits.set(key, fitted);
    }
    teacher.backbone.loadStateDict(fitted);
  }
  for (const p of teacher.parameters()) p.requiresGrad = false;
  if (cfg.vmf) student.head.last_layer.vmf = teacher.head.last_layer.vmf = true;
  // EM fits the prototypes: no gradient reaches weight_v, so the optimizer never holds it.
  if (cfg.prototypes === 'em') student.head.last_layer.weight_v.requiresGrad = false;
  // As in DINO the teacher stays in training mode: BatchNorm (ResNets) normalises with batch statistics.
  const [decay, noDecay] = decayGroups(student.namedParameters().filter(([, p]) => p.requiresGrad));
  const optimizer = new AdamW([
    { params: decay, lr: 0, weightDecay: 0 },
    { params: noDecay, lr: 0, weightDecay: 0 },
  ]);
  owned.push(optimizer);
  const center = cfg.centering === 'centering' ? keep(zeros([1, cfg.out_dim], be)) : null;
  if (center) owned.push(center);
  const center2 = cfg.ibot ? keep(zeros([1, cfg.out_dim], be)) : null;
  if (center2) owned.push(center2);
  const patchGrid = cfg.global_crops_size / cfg.patch_size;
  // A step is one optimizer step over accum_steps loader batches; leftover batches at the end of a
  // loader epoch start the next step (the loader cursor, saved in checkpoints, keeps resume exact).
  const niter = Math.floor(loader.batchesPerEpoch / cfg.accum_steps);
  if (niter === 0)
    throw new Error(
      `--accum_steps ${cfg.accum_steps}: an epoch has only ${loader.batchesPerEpoch} batches of ${cfg.batch_size}`,
    );
  const totalSteps = cfg.max_steps > 0 ? Math.min(cfg.max_steps, cfg.epochs * niter) : cfg.epochs * niter;
  const lrSched = cosineScheduler(
    (cfg.lr * cfg.batch_size * cfg.accum_steps) / 256,
    cfg.min_lr,
    cfg.epochs,
    niter,
    cfg.warmup_epochs,
  );
  const wdSched = cosineScheduler(cfg.weight_decay, cfg.weight_decay_end, cfg.epochs, niter);
  const momSched = cosineScheduler(cfg.momentum_teacher, 1, cfg.epochs, niter);
  const tempSched = teacherTempSchedule(
    cfg.warmup_teacher_temp,
    cfg.teacher_temp,
    cfg.warmup_teacher_temp_epochs,
    cfg.epochs,
  );
  const koleoCache =
    cfg.koleo_proto > 0 && cfg.koleo_proto_exact_every > 1
      ? new KoleoProtoCache(cfg.koleo_proto_exact_every, cfg.koleo_proto_candidates)
      : null;
  if (koleoCache) owned.push(koleoCache);
  const em = emForHeads(cfg, student, teacher);
  if (em) owned.push(em);
  const state: DinoState = { cfg, student, teacher, optimizer, center, center2, channels, localSize, koleoCache, em };

  let step = 0;
  // What a resume restores; an --init_from DINO or protodino checkpoint is restored the same way.
  let restoreFrom: LoadedCheckpoint | null = resumeFrom;
  if (init) {
    const live = { student, teacher, optimizer, cfg, niter, loader: loader.state() };
    if (init.kind === 'backbone') loadBackbone(init, student, teacher);
    else if (init.kind === 'dino') restoreFrom = dinoResumePoint(init, live);
    else {
      checkProtodinoCheckpoint(init, live);
      restoreFrom = init.checkpoint;
    }
  }
  if (restoreFrom) {
    restoreCheckpoint(restoreFrom, { student, teacher, optimizer, center, center2, koleoCache, em });
    step = restoreFrom.meta.step;
  }
  if (resumeFrom) {
    if (resumeFrom.meta.generators) {
      student.generator.setState(resumeFrom.meta.generators.student);
      teacher.generator.setState(resumeFrom.meta.generators.teacher);
    } else if (cfg.drop_path_rate > 0 && !cfg.quiet) {
      process.stderr.write(
        `protodino: ${resumeFrom.path} predates saved drop-path random state; the resumed run draws other drop-path masks than an uninterrupted one\n`,
      );
    }
    log.write({
      event: 'resume',
      step,
      epoch: resumeFrom.meta.epoch,
      from: resumeFrom.path,
      ...(resumeFrom.fallback ? { fallback: resumeFrom.fallback } : {}),
      ...(resumeFrom.setAside ? { set_aside: resumeFrom.setAside } : {}),
    });
  } else {
    log.write({
      event: 'start',
      config: cfg,
      backend: be.description,
      // the wasm kernels' blocking and thread split (--tune) and where it came from; no value changes a result
      ...wasmTuning(be),
      parameters: student.parameterCount(),
    });
    if (init) {
      // A protodino checkpoint carries its random streams; DINO's do not (fresh ones are drawn).
      const gens = init.kind === 'protodino' ? init.checkpoint.meta.generators : undefined;
      if (gens) {
        student.generator.setState(gens.student);
        teacher.generator.setState(gens.teacher);
      }
      log.write({ event: 'init_from', from: init.file, kind: init.kind, step, epoch: Math.floor(step / niter) });
      if (init.kind === 'backbone' && init.weights.skipped.length && !cfg.quiet)
        process.stderr.write(
          `protodino: ${init.file}: not loading the classifier ${init.weights.skipped.join(', ')} (DINO's backbone has none)\n`,
        );
    }
  }

  const alarms = resumeFrom
    ? resumedAlarms(
        cfg.out_dim,
        cfg.collapse_window,
        parseAlarmState(resumeFrom.meta.alarms),
        logRecords(log.path),
        step,
      )
    : new CollapseAlarms(cfg.out_dim, cfg.collapse_window);
  // The baseline of the parameter-norm alarm: the weights training started from, kept across resumes.
  const watched = student.namedParameters().filter(([, p]) => p.requiresGrad);
  const normWatch = new NormWatch(parseInitialNorms(restoreFrom?.meta.initialNorms) ?? (await parameterNorms(watched)));
  const raised: (AlarmRecord | NormAlarmRecord)[] = [];
  const history: StepRecord[] = [];
  const progress = cfg.quiet ? null : new Progress({ stream: process.stderr });
  // A collapsed run can look healthy from its loss curve alone, so alarms are printed with --quiet too.
  const report = (records: (AlarmRecord | NormAlarmRecord)[]) => {
    for (const r of records) {
      log.write(r);
      raised.push(r);
      const line = `protodino: ${r.event === 'alarm' ? 'alarm: ' : ''}${r.message}`;
      if (progress) progress.message(line);
      else process.stderr.write(`${line}\n`);
    }
  };
  const traffic: StepTraffic = { steps: 0, submits: 0, waits: 0, maxSubmits: 0, maxWaits: 0 };
  let t0 = performance.now();
  let imagesSince = 0,
    stepsSince = 0;
  // Time and memory of what runs between steps but is not training (saving, epoch diagnostics): a
  // run's cost per step, compared between methods, must not depend on how often it is evaluated.
  let pausedMs = 0,
    peakBeforePause = 0;
  const paused = async <T>(work: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    peakBeforePause = Math.max(peakBeforePause, be.peakLiveBytes());
    try {
      return await work();
    } finally {
      be.resetPeakLiveBytes();
      pausedMs += performance.now() - t;
    }
  };
  be.resetPeakLiveBytes();
  let emSplits = 0;

  // Only states every applied update of which passed the finiteness check reach save(), so a
  // diverged state never replaces a good checkpoint.
  let savedStep = resumeFrom ? step : -1;
  const save = async (epoch: number) => {
    if (savedStep === step) return;
    rotate(ckptPath);
    await saveCheckpoint(
      ckptPath,
      { student, teacher, optimizer, center, center2, koleoCache, em },
      {
        epoch,
        step,
        config: cfg,
        loader: loader.state(),
        generators: { student: student.generator.getState(), teacher: teacher.generator.getState() },
        alarms: alarms.state(),
        normalization: stats,
        initialNorms: { ...normWatch.initial },
      },
    );
    savedStep = step;
  };
  const kept = () =>
    savedStep >= 0
      ? `the last good checkpoint ${ckptPath} (step ${savedStep}) is kept`
      : 'no checkpoint had been written yet';
  const skipped: number[] = []; // steps skipped in a row (--on_nan skip)

  while (step < totalSteps) {
    const epoch = Math.floor(step / niter);
    const micro: MicroBatch[] = [];
    for (let i = 0; i < cfg.accum_steps; i++) {
      const batch = await loader.next();
      // iBOT masks are a function of (seed, step, micro-batch) only, so a resumed run draws the same.
      const masks = cfg.ibot
        ? cropMasks(maskRng(cfg.seed, step, i), 2 * cfg.batch_size, patchGrid, patchGrid, {
            prob: cfg.ibot_mask_prob,
            ratio: cfg.ibot_mask_ratio,
          })
        : null;
      micro.push({ globals: batch.globals, locals: cfg.local_crops_number > 0 ? batch.locals : null, masks });
    }
    const B = cfg.batch_size * cfg.accum_steps;
    const lr = lrSched[step],
      wd = wdSched[step],
      m = momSched[step],
      temp = tempSched[epoch];
    const prof = be instanceof ProfiledBackend ? be : null;
    const sent = be.traffic();
    prof?.beginStep();
    const { loss, bad, dino } = await guardedStep(
      state,
      micro,
      { epoch, lr, weightDecay: wd, momentum: m, teacherTemp: temp, step },
      step + 1,
      hooks,
    );
    const kc = await koleoCache?.takeStats();
    if (kc) {
      log.write({
        event: 'koleo_cache',
        step: kc.step + 1,
        epoch,
        built_at: kc.builtAt + 1,
        agree: kc.agree,
        koleo_exact: kc.koleoExact,
        koleo_cached: kc.koleoCached,
        koleo_diff: kc.koleoCached - kc.koleoExact,
      });
    }
    if (em && !bad) emSplits += await em.takeSplitCount();
    // The step's statistics are read inside the profiled and counted step: they are its traffic too.
    await prof?.endStep();
    countTraffic(traffic, sent, be.traffic());
    step++;
    imagesSince += B;
    stepsSince++;
    if (bad) {
      const what =
        bad.tensor === 'loss'
          ? `the loss is ${bad.value}`
          : bad.tensor === ''
            ? `the sum of the gradient norms overflowed (${bad.value})`
            : `the gradient of ${bad.tensor} has a non-finite norm (${bad.value})`;
      log.write({
        event: cfg.on_nan === 'skip' ? 'skip' : 'diverged',
        epoch,
        step,
        tensor: bad.tensor || 'gradient norms',
        value: bad.value,
      });
      if (cfg.on_nan === 'stop') {
        throw new DivergenceError(
          `training diverged at step ${step} (epoch ${epoch + 1}): ${what}; the step was not applied and ${kept()} (--on_nan skip skips such steps)`,
          step,
          bad.tensor || 'gradient norms',
        );
      }
      skipped.push(step);
      if (!cfg.quiet) process.stderr.write(`\nprotodino: skipped step ${step}: ${what}\n`);
      if (skipped.length >= MAX_CONSECUTIVE_SKIPS) {
        throw new DivergenceError(
          `training diverged: ${skipped.length} steps in a row (${skipped[0]}–${step}) were skipped, the last because ${what}; ${kept()} — lower --lr or check the data`,
          step,
          bad.tensor || 'gradient norms',
        );
      }
    } else {
      skipped.length = 0;
      // A skipped step trained nothing, so it neither extends nor breaks the uniform streak.
      report(alarms.step(step, epoch + 1, dino));
    }
    const epochDone = step % niter === 0 || step === totalSteps;
    if (!bad && (step % cfg.log_every === 0 || epochDone)) {
      const value = loss;
      const dt = (performance.now() - t0 - pausedMs) / 1000;
      const rec: StepRecord = {
        epoch,
        step,
        loss: value,
        lr,
        wd,
        momentum: m,
        teacher_temp: temp,
        img_per_s: imagesSince / dt,
        step_s: dt / stepsSince,
        peak_bytes: Math.max(peakBeforePause, be.peakLiveBytes()),
        ...(em ? { em_beta: em.beta(step - 1), em_split: emSplits } : {}),
      };
      emSplits = 0;
      t0 = performance.now();
      imagesSince = 0;
      stepsSince = 0;
      pausedMs = 0;
      peakBeforePause = 0;
      be.resetPeakLiveBytes();
      history.push(rec);
      log.write({ event: 'step', ...rec });
      const extra: Record<string, string> = { 'img/s': rec.img_per_s.toFixed(0) };
      if (alarms.active.length) extra['ALARM'] = `${alarms.active.join(', ')} collapse`;
      progress?.update({ epoch, epochs: cfg.epochs, step: step - epoch * niter, total: niter, loss: value, extra });
      // Checked where the loss is read back anyway, not every step: one more read-back per log step.
      const grown = normWatch.check(await parameterNorms(watched), step, epoch + 1);
      if (grown.length) {
        report(grown);
        if (cfg.on_nan === 'stop')
          throw new DivergenceError(
            `training diverged at step ${step} (epoch ${epoch + 1}): ${grown[0].message}; this state was not saved and ${kept()} (--on_nan skip only warns)`,
            step,
            grown[0].tensor,
          );
      }
    }
    if (epochDone) {
      progress?.done({
        epoch,
        epochs: cfg.epochs,
        step: step - epoch * niter,
        total: niter,
        loss: history.at(-1)?.loss,
      });
      const extra = await paused(async () => {
        await save(epoch + 1);
        return hooks.onEpoch
          ? await hooks.onEpoch({ epoch, step, final: step === totalSteps, student, teacher, backend: be })
          : undefined;
      });
      log.write({ event: 'epoch', epoch: epoch + 1, step, loss: history.at(-1)?.loss, ...(extra ?? {}) });
      if (extra) report(alarms.epoch(step, epoch + 1, extra));
    } else if (cfg.save_every > 0 && step % cfg.save_every === 0) {
      await paused(() => save(epoch));
    }
  }
  let profile: ProfileReport | undefined;
  if (be instanceof ProfiledBackend && be.steps > 0) {
    profile = be.report();
    writeFileSync(join(cfg.output_dir, 'profile.json'), `${JSON.stringify(profile, null, 2)}\n`);
    process.stdout.write(`\nprofile (--profile)\n\n${profileTable(profile)}\n\n`);
  }
  return {
    outputDir: cfg.output_dir,
    steps: step,
    epochs: cfg.epochs,
    history,
    checkpoint: ckptPath,
    profile,
    traffic,
    alarms: raised,
  };
}

function countTraffic(into: StepTraffic, before: DeviceTraffic, after: DeviceTraffic): void {
  const submits = after.submits - before.submits,
    waits = after.waits - before.waits;
  into.steps++;
  into.submits += submits;
  into.waits += waits;
  into.maxSubmits = Math.max(into.maxSubmits, submits);
  into.maxWaits = Math.max(into.maxWaits, waits);
}

interface BadTensor {
  /** 'loss', a parameter's dotted name (its gradient), or '' when only the sum of the norms overflowed. */
  tensor: string;
  value: number;
}

/**
 * One step under the divergence guard: the gradients, one read-back (their health scalar with the
 * loss and the DINO term, which the log and the collapse alarm need), and the update only when the
 * health is finite. Otherwise nothing of the step is applied — with --on_nan skip the BatchNorm
 * statistics its forward moved are put back too — and the first bad tensor is named. The update is
 * left encoded, not submitted: the next read-back (the next step's) sends it with that step's work.
 */
async function guardedStep(
  s: DinoState,
  micro: MicroBatch[],
  sch: StepSchedule,
  stepNo: number,
  hooks: TrainHooks,
): Promise<{ loss: number; bad: BadTensor | null; dino: number }> {
  const buffers = s.cfg.on_nan === 'skip' ? snapshotBuffers([s.student, s.teacher]) : null;
  let g: StepGradients | null = null;
  try {
    const hook = hooks.afterBackward;
    g = dinoGradients(s, micro, sch, {
      check: true,
      ...(hook ? { afterBackward: (loss: Tensor) => hook({ step: stepNo, student: s.student, loss }) } : {}),
    });
    const grads = g;
    // Read every step, not only logged ones: the uniform alarm counts steps in a row.
    const readout = tidy(() =>
      noGrad(() =>
        concat(
          [grads.health!, grads.loss, grads.dino ?? grads.loss].map((t) => reshape(t, [1])),
          0,
        ),
      ),
    );
    let health: number, loss: number, dino: number;
    try {
      [health, loss, dino] = await readout.data();
    } finally {
      readout.dispose();
    }
    const bad = Number.isFinite(health) ? null : await firstNonFinite(g, loss, health);
    if (bad) {
      discardStep(s);
      buffers?.restore();
      dino = NaN;
    } else {
      applyStep(s, g, sch);
    }
    return { loss, bad, dino };
  } finally {
    if (g) {
      disposeGradients(g);
      g.loss.dispose();
    }
    buffers?.dispose();
  }
}

/** The bad tensor of a step whose health is not finite: the loss if it is bad, else the bad gradient nearest the loss. */
async function firstNonFinite(g: StepGradients, loss: number, health: number): Promise<BadTensor> {
  if (!Number.isFinite(loss)) return { tensor: 'loss', value: loss };
  for (const [name, m] of g.magnitudes) {
    const v = await m.item();
    if (!Number.isFinite(v)) return { tensor: name, value: v };
  }
  return { tensor: '', value: health };
}

/** Device copies of the networks' buffers (BatchNorm running statistics), to undo a skipped step's forward. */
function snapshotBuffers(nets: DinoNetwork[]): { restore(): void; dispose(): void } {
  const buffers = nets.flatMap((n) => n.namedBuffers().map(([, t]) => t));
  const copy = (src: Tensor, dst: Tensor) => {
    if (src.size > 0) src.backend.copyStrided(src.storage, dst.storage, [src.size], 0, [1], 0, [1]);
  };
  const copies = buffers.map((t) => {
    const c = keep(empty(t.shape, t.backend, t.dtype));
    copy(t, c);
    return c;
  });
  return {
    restore: () => buffers.forEach((t, i) => copy(copies[i], t)),
    dispose: () => copies.forEach((c) => c.dispose()),
  };
}

/** The log's records for rebuilding the alarms on resume; a damaged log costs that history, not the resume. */
function logRecords(path: string): Record<string, unknown>[] {
  try {
    return readJsonl(path).records;
  } catch (e) {
    process.stderr.write(
      `protodino: ${(e as Error).message}; the collapse alarms continue from the checkpoint's state alone\n`,
    );
    return [];
  }
}

/** A checkpoint read for resuming: where it came from, why it is .prev when it is, where the unreadable one went. */
export type ResumePoint = LoadedCheckpoint & { path: string; fallback?: string; setAside?: string };

/**
 * The config `train --resume` starts from: the one the checkpoint in `cfg.output_dir` was trained
 * with (so `--resume --output_dir DIR` alone continues the same run, as a DINO user expects), the
 * flags given on the command line then override it; --quiet and --profile are not inherited. DEFAULTS when there is nothing to resume, and
 * for keys an older checkpoint does not record.
 */
export function resumeBase(cfg: TrainConfig): TrainConfig {
  if (!cfg.resume) return DEFAULTS;
  const saved = savedConfig(join(cfg.output_dir, 'checkpoint.safetensors'));
  if (!saved) return DEFAULTS;
  // How this invocation talks and profiles is its own; everything else continues the run.
  const own = ['output_dir', 'resume', 'quiet', 'profile'];
  const known = Object.fromEntries(Object.entries(saved).filter(([k]) => k in DEFAULTS && !own.includes(k)));
  return { ...DEFAULTS, ...known, resume: true };
}

/**
 * The config recorded in the checkpoint a resume would take (the latest, else .prev), from its
 * header only: train() reads and verifies the whole file once more when it restores it.
 */
function savedConfig(path: string): Partial<TrainConfig> | undefined {
  for (const p of [path, `${path}.prev`]) {
    if (!existsSync(p)) continue;
    try {
      const raw = readSafetensorsMetadata(p).protodino;
      return raw ? ((JSON.parse(raw) as { config?: Partial<TrainConfig> }).config ?? undefined) : undefined;
    } catch {
      // Unreadable: train() says so when it falls back to .prev; take .prev's config here too.
    }
  }
  return undefined;
}

/** Says which training flags differ from the ones the checkpoint was trained with (a resume continues regardless). */
function warnConfigChanges(from: ResumePoint, cfg: TrainConfig): void {
  const old = from.meta.config as Partial<Record<keyof TrainConfig, unknown>> | undefined;
  if (!old || cfg.quiet) return;
  const changed = (Object.keys(cfg) as (keyof TrainConfig)[])
    .filter((k) => !RUN_ONLY.includes(k) && k in old && JSON.stringify(old[k]) !== JSON.stringify(cfg[k]))
    .map((k) => `--${k} ${JSON.stringify(cfg[k])} (was ${JSON.stringify(old[k])})`);
  if (changed.length)
    process.stderr.write(
      `protodino: resuming ${from.path} with other training flags than it was trained with: ${changed.join(', ')}\n`,
    );
}

/**
 * The checkpoint to resume from: the latest one, or — when it is missing (a save was interrupted
 * between the rotation and the write), truncated or corrupt (bad checksum, bad header) — the previous
 * one kept as .prev, saying so (`fallback` holds why). null when there is none yet.
 */
export function readResumable(path: string, quiet = false): ResumePoint | null {
  const prev = `${path}.prev`;
  let why: string;
  if (existsSync(path)) {
    try {
      return { ...readCheckpoint(path), path };
    } catch (e) {
      if (!existsSync(prev))
        throw new Error(`cannot resume: ${path} is unreadable (${(e as Error).message}) and there is no ${prev}`);
      why = `${path} is unreadable (${(e as Error).message})`;
    }
  } else {
    if (!existsSync(prev)) return null;
    why = `${path} is missing (a save was interrupted)`;
  }
  if (!quiet) process.stderr.write(`protodino: ${why}; resuming from the previous checkpoint ${prev}\n`);
  return { ...readCheckpoint(prev), path: prev, fallback: why };
}

/** The last PCA fit of this process, keyed by its dimension and sample. */
const pcaFits = new Map<string, Map<string, HostTensor>>();

/** FNV-1a over the sample's bits: equal keys mean the same images in the same order. */
function fingerprint(data: Float32Array): string {
  const u = new Uint32Array(data.buffer, data.byteOffset, data.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 0x01000193);
  return `${u.length}:${(h >>> 0).toString(16)}`;
}

/** Up to `max` normalised training images (seeded choice) resized to the crop size, for PCA. */
function pcaSample(ds: Dataset, size: number, max: number, seed: number): { data: Float32Array; n: number } {
  if (ds.height !== size || ds.width !== size) {
    throw new Error(
      `--arch pca fits on full images: --global_crops_size must equal the image size ${ds.height}x${ds.width}`,
    );
  }
  const n = Math.min(max, ds.n);
  const D = ds.channels * size * size;
  const out = new Float32Array(n * D);
  const stride = ds.n / n;
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const idx = Math.min(ds.n - 1, Math.floor(i * stride + (s / 4294967296) * stride));
    for (let j = 0; j < D; j++) out[i * D + j] = ds.images[idx * D + j] / 255;
  }
  return { data: out, n };
}
