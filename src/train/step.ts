// One DINO training step on the device: teacher and student forward on the multi-crop batch, the
// loss with its selected regularisers, backward, per-parameter clipping, the last-layer freeze,
// AdamW, teacher EMA and the center update. Nothing is read back; the loss tensor is returned.
// With several micro-batches (--accum_steps) each one's forward and backward run in turn, the
// gradients summing in .grad, and the update happens once on their sum. The step comes in two
// halves (dinoGradients, then applyStep or discardStep) so the trainer can check the loss and the
// gradients between them and never apply a non-finite update.
import type { Tensor } from '../tensor/tensor.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { backward, zeroGrad } from '../tensor/autograd.js';
import { add, mul } from '../tensor/ops/elementwise.js';
import { concat, slice } from '../tensor/ops/layout.js';
import { softmax } from '../tensor/ops/softmax.js';
import { clipGradients, emaUpdate, type AdamW } from '../tensor/ops/optim.js';
import { sumSquares } from '../tensor/ops/reduce.js';
import { centeredTeacher, dinoCrossEntropy, sinkhornKnopp, updateCenter } from '../ssl/dino.js';
import { koleoLoss, koleoProtoLoss, meMaxLoss } from '../ssl/regularizers.js';
import type { KoleoProtoCache } from '../ssl/koleo-cache.js';
import { ibotPatchLoss, updatePatchCenter } from '../ssl/ibot.js';
import { VisionTransformer } from '../nn/vit.js';
import { EmPrototypes } from '../ssl/em-prototypes.js';
import { reshape } from '../tensor/ops/view.js';
import type { TrainConfig } from './config.js';
import type { DinoNetwork } from './network.js';

export interface DinoState {
  cfg: TrainConfig;
  student: DinoNetwork;
  teacher: DinoNetwork;
  optimizer: AdamW;
  /** The DINO center [1, K] (centering only). */
  center: Tensor | null;
  /** iBOT's patch center [1, K] (--ibot only). */
  center2?: Tensor | null;
  channels: number;
  localSize: number;
  /** KoLeo-proto's candidate cache (--koleo_proto_exact_every > 1); needs StepSchedule.step. */
  koleoCache?: KoleoProtoCache | null;
  /**
   * --prototypes em: the Gaussian mixture whose means are both heads' prototypes (written into
   * their weight_v after each update); needs StepSchedule.step for its annealing.
   */
  em?: EmPrototypes | null;
}

/**
 * --prototypes em: the mixture fitted to the student's initial prototypes, with both heads set to its
 * means (the trainer and the step benchmark build it the same way); null for gradient prototypes.
 * The caller owns it.
 */
export function emForHeads(cfg: TrainConfig, student: DinoNetwork, teacher: DinoNetwork): EmPrototypes | null {
  if (cfg.prototypes !== 'em') return null;
  const em = new EmPrototypes(student.head.last_layer.weight_v, {
    eta: cfg.em_eta,
    varFloor: cfg.em_var_floor,
    betaStart: cfg.em_beta_start,
    betaWarmup: cfg.em_beta_warmup,
    seed: cfg.seed,
  });
  em.writeMeans(student.head.last_layer.weight_v);
  em.writeMeans(teacher.head.last_layer.weight_v);
  return em;
}

export interface StepSchedule {
  epoch: number;
  lr: number;
  weightDecay: number;
  momentum: number;
  teacherTemp: number;
  /** Steps done before this one (what the KoLeo-proto candidate cache schedules its refreshes by). */
  step?: number;
}

/** One loader batch: the two global crops back to back [2B, C, G, G]; locals [L·B, C, S, S] or null. */
export interface MicroBatch {
  globals: Float32Array;
  locals: Float32Array | null;
  /** --ibot: the student's patch masks of the global crops, [2B·N] 0/1 (1 = masked), crop-major. */
  masks?: Uint8Array | null;
}

/**
 * globals: the two global crops back to back [2B, C, G, G]; locals: [L·B, C, S, S] or null.
 * Returns the total loss (a scalar tensor the caller disposes).
 */
export function dinoStep(s: DinoState, globals: Float32Array, locals: Float32Array | null, sch: StepSchedule): Tensor {
  return dinoAccumStep(s, [{ globals, locals }], sch);
}

/**
 * One optimizer step over N micro-batches: the mean of their losses is minimised (each backward
 * sees loss/N), the center moves towards the mean teacher output over all of them. Returns the mean
 * loss. With the centering regulariser and no drop path this equals one step on the N batches
 * concatenated; Sinkhorn, me-max and KoLeo are batch statistics and see each micro-batch alone.
 * Nothing is checked or read back; the trainer uses dinoGradients / applyStep to guard each update.
 */
export function dinoAccumStep(s: DinoState, micro: readonly MicroBatch[], sch: StepSchedule): Tensor {
  return tidy(() => {
    const g = dinoGradients(s, micro, sch);
    applyStep(s, g, sch);
    return g.loss;
  });
}

/** The gradients of one optimizer step: computed and clipped, not applied yet. */
export interface StepGradients {
  /** The mean loss over the micro-batches (a scalar). */
  loss: Tensor;
  /**
   * The DINO term of the loss alone (mean over the micro-batches), or null when the loss is that
   * term alone; the collapse alarm compares it with ln K, which regularisers would shift.
   */
  dino: Tensor | null;
  /**
   * With { check }: loss + Σ gradient magnitudes, one scalar that is not finite when the loss or any
   * gradient holds a NaN or ±Inf (both propagate through the sums), so one read-back per step
   * guards the update. It can also overflow on finite gradients of ~1e19 and more: diverged too.
   */
  health: Tensor | null;
  /**
   * With { check }: [dotted parameter name, gradient magnitude] in the order backward produces the
   * gradients (nearest the loss first), for naming the first bad tensor once health is not finite.
   * The magnitude is the pre-clip norm with --clip_grad, else the sum of squares.
   */
  magnitudes: [string, Tensor][];
  teacherOuts: Tensor[];
  teacherPatches: Tensor[];
  /** --prototypes em: the teacher's normalised bottleneck features of the global crops, per micro-batch. */
  teacherEmbeds: Tensor[];
}

export interface GradientOptions {
  /** Build StepGradients.health and .magnitudes. */
  check?: boolean;
  /** Runs after the last backward, before clipping and the check, with the loss (tests inject faults here). */
  afterBackward?: (loss: Tensor) => void;
}

/**
 * Forward and backward of every micro-batch, then per-parameter clipping. The gradients stay in
 * the student's .grad; applyStep uses them, discardStep drops them. The caller owns the returned
 * tensors (disposeGradients frees all but the loss).
 */
export function dinoGradients(
  s: DinoState,
  micro: readonly MicroBatch[],
  sch: StepSchedule,
  opts: GradientOptions = {},
): StepGradients {
  const { cfg, student } = s;
  if (micro.length === 0) throw new Error('dinoAccumStep: no micro-batch');
  const N = micro.length;
  // --prototypes em with --prototypes_only on a frozen backbone: EM fits the only weights there are,
  // the loss is still measured (and logged) but has nothing to differentiate.
  const differentiable = student.trainableParameters().length > 0;
  return tidy(() => {
    const losses: Tensor[] = [];
    const dinos: Tensor[] = [];
    const teacherOuts: Tensor[] = [];
    const teacherPatches: Tensor[] = [];
    const teacherEmbeds: Tensor[] = [];
    for (const mb of micro) {
      const { loss, dino, tOut, tPatch, tEmb } = tidy(() => {
        const r = microLoss(s, mb, sch);
        if (differentiable) backward(N === 1 ? r.loss : mul(r.loss, 1 / N));
        return r;
      });
      losses.push(loss);
      if (dino) dinos.push(dino);
      teacherOuts.push(tOut);
      if (tPatch) teacherPatches.push(tPatch);
      if (tEmb) teacherEmbeds.push(tEmb);
    }
    const loss =
      N === 1
        ? losses[0]
        : mul(
            losses.reduce((a, b) => add(a, b)),
            1 / N,
          );
    const dino =
      dinos.length === 0
        ? null
        : noGrad(() =>
            N === 1
              ? dinos[0]
              : mul(
                  dinos.reduce((a, b) => add(a, b)),
                  1 / N,
                ),
          );
    opts.afterBackward?.(loss);
    const named = student.namedParameters().filter(([, p]) => p.requiresGrad);
    const trainable = named.map(([, p]) => p);
    const clipNorms = cfg.clip_grad > 0 ? clipGradients(trainable, cfg.clip_grad) : null;
    const magnitudes: [string, Tensor][] = [];
    const health = !opts.check
      ? null
      : noGrad(() => {
          // clipGradients returns one norm per parameter that has a gradient, in parameter order.
          let k = 0;
          for (const [name, p] of named) {
            if (!p.grad) continue;
            magnitudes.push([name, clipNorms ? clipNorms[k++] : sumSquares(reshape(p.grad, [p.grad.size]))]);
          }
          // Never the loss tensor itself, which the caller keeps after disposing the rest.
          const h = magnitudes.reduce((acc, [, m]) => add(acc, m), mul(loss, 1));
          magnitudes.reverse();
          return h;
        });
    return { loss, dino, health, magnitudes, teacherOuts, teacherPatches, teacherEmbeds };
  });
}

/** The update of a step whose gradients are good: last-layer freeze, AdamW, teacher EMA, centers. */
export function applyStep(s: DinoState, g: StepGradients, sch: StepSchedule): void {
  const { cfg, student, teacher, optimizer, center } = s;
  for (const grp of optimizer.groups) grp.lr = sch.lr;
  optimizer.groups[0].weightDecay = sch.weightDecay; // group 0 holds the decayed parameters
  tidy(() => {
    if (sch.epoch < cfg.freeze_last_layer) zeroGrad(student.head.last_layer.parameters());
    optimizer.step();
    zeroGrad(student.trainableParameters());
    emaUpdate(teacher.parameters(), student.parameters(), sch.momentum);
    const N = g.teacherOuts.length;
    // Equal micro-batch sizes make the mean over the concatenation the mean of the batch means.
    if (center) updateCenter(center, N === 1 ? g.teacherOuts[0] : concat(g.teacherOuts, 0), cfg.center_momentum);
    if (s.center2 && g.teacherPatches.length > 0) {
      updatePatchCenter(
        s.center2,
        g.teacherPatches.length === 1 ? g.teacherPatches[0] : concat(g.teacherPatches, 0),
        cfg.center_momentum,
      );
    }
    if (s.em) {
      const E = g.teacherEmbeds;
      if (E.length !== N) throw new Error('--prototypes em: the step has no teacher features for the EM update');
      if (sch.step === undefined) throw new Error('--prototypes em: the EM annealing needs the step number');
      s.em.update(N === 1 ? E[0] : concat(E, 0), sch.step);
      // After the EMA: both heads hold exactly the fitted means, whatever the EMA made of them.
      s.em.writeMeans(student.head.last_layer.weight_v);
      s.em.writeMeans(teacher.head.last_layer.weight_v);
    }
  });
}

/** Drops a step's gradients without applying them (a skipped step). */
export function discardStep(s: DinoState): void {
  zeroGrad(s.student.trainableParameters());
}

/** Frees everything of `g` except its loss. */
export function disposeGradients(g: StepGradients): void {
  g.health?.dispose();
  g.dino?.dispose();
  for (const [, m] of g.magnitudes) m.dispose();
  for (const t of [...g.teacherOuts, ...g.teacherPatches, ...g.teacherEmbeds]) t.dispose();
}

/** [B, 1 + N, D] tokens → the CLS rows [B, D] and the patch rows [B·N, D]. */
function splitTokens(t: Tensor): { cls: Tensor; patches: Tensor } {
  const [B, T, D] = t.shape;
  return {
    cls: reshape(slice(t, [0, 0, 0], [B, 1, D]), [B, D]),
    patches: reshape(slice(t, [0, 1, 0], [B, T - 1, D]), [B * (T - 1), D]),
  };
}

/**
 * Forward of one micro-batch: its loss (recording), the teacher's global-crop logits and, with
 * --ibot, the teacher's patch logits [2B·N, K].
 */
function microLoss(
  s: DinoState,
  mb: MicroBatch,
  sch: StepSchedule,
): { loss: Tensor; dino: Tensor | null; tOut: Tensor; tPatch: Tensor | null; tEmb: Tensor | null } {
  const { cfg, student, teacher, center } = s;
  const { globals, locals } = mb;
  const G = cfg.global_crops_size;
  const B = globals.length / (2 * s.channels * G * G);
  if (!Number.isInteger(B))
    throw new Error(`dinoStep: ${globals.length} global-crop values are not 2·B crops of ${s.channels}x${G}x${G}`);
  const nCrops = 2 + (locals ? cfg.local_crops_number : 0);
  if (s.em && sch.step === undefined) throw new Error('--prototypes em: the EM annealing needs the step number');
  const be = student.backend;
  const g = tensor(globals, [2 * B, s.channels, G, G], be);
  let tOut: Tensor;
  let tPatch: Tensor | null = null,
    sPatch: Tensor | null = null,
    tEmb: Tensor | null = null,
    nPatches = 0;
  // --prototypes em needs the features the teacher's prototypes score (the head's bottleneck, or with
  // --prototypes_only the backbone's) as well as its logits.
  const teacherHead = (h: Tensor): { out: Tensor; emb: Tensor | null } => {
    if (!s.em) return { out: teacher.head.forward(h), emb: null };
    const emb = teacher.head.embed(h);
    return { out: teacher.head.last_layer.forward(emb), emb };
  };
  const feats: Tensor[] = [];
  if (cfg.ibot) {
    const sv = student.backbone,
      tv = teacher.backbone;
    if (!(sv instanceof VisionTransformer) || !(tv instanceof VisionTransformer))
      throw new Error('--ibot: the backbone is not a ViT');
    nPatches = (G / cfg.patch_size) ** 2;
    const masks = mb.masks;
    if (!masks || masks.length !== 2 * B * nPatches)
      throw new Error(
        `--ibot: expected ${2 * B * nPatches} mask values for the global crops, got ${masks?.length ?? 'none'}`,
      );
    // The teacher's activations are freed as soon as its outputs exist (tidy), not at the step's end.
    ({ tOut, tPatch, tEmb } = tidy(() =>
      noGrad(() => {
        const t = splitTokens(tv.forwardTokens(g));
        const cls = teacherHead(t.cls);
        return { tOut: cls.out, tEmb: cls.emb, tPatch: teacher.head.forward(t.patches) };
      }),
    ));
    const st = splitTokens(sv.forwardTokens(g, tensor(Float32Array.from(masks), [2 * B, nPatches], be)));
    feats.push(st.cls);
    sPatch = student.head.forward(st.patches);
  } else {
    // Freeing the teacher's activations here, not at the step's end, cuts the step's peak memory by
    // about a quarter (a vit_tiny step at batch 64 then fits in 4 GiB).
    if (s.em) {
      ({ out: tOut, emb: tEmb } = tidy(() => noGrad(() => teacherHead(teacher.features(g)))));
    } else {
      tOut = tidy(() => noGrad(() => teacher.forward(g)));
    }
    feats.push(student.features(g));
  }
  if (locals)
    feats.push(
      student.features(tensor(locals, [cfg.local_crops_number * B, s.channels, s.localSize, s.localSize], be)),
    );
  // The head runs once on every crop's features, as DINO's MultiCropWrapper does.
  const sOut = student.head.forward(feats.length > 1 ? concat(feats, 0) : feats[0]);
  const targets =
    s.em && cfg.em_target === 'responsibilities'
      ? s.em.responsibilities(tEmb!, s.em.beta(sch.step!))
      : cfg.centering === 'sinkhorn'
        ? sinkhornKnopp(tOut, sch.teacherTemp)
        : cfg.centering === 'centering'
          ? centeredTeacher(tOut, center!, sch.teacherTemp)
          : noGrad(() => softmax(mul(tOut, 1 / sch.teacherTemp), -1));
  const dino = dinoCrossEntropy(sOut, targets, { studentTemp: cfg.student_temp, nCrops });
  let total = dino;
  if (cfg.centering === 'memax') total = add(total, meMaxLoss(sOut, cfg.student_temp));
  if (cfg.koleo_proto > 0) {
    let cache: { cache: KoleoProtoCache; step: number } | undefined;
    if (s.koleoCache) {
      if (sch.step === undefined)
        throw new Error('the KoLeo-proto candidate cache needs the step number in the step schedule');
      cache = { cache: s.koleoCache, step: sch.step };
    }
    total = add(total, mul(koleoProtoLoss(student.head.last_layer.weight_v, 1e-8, cache), cfg.koleo_proto));
  }
  if (cfg.koleo_features > 0) {
    const first = slice(feats[0], [0, 0], [B, feats[0].shape[1]]);
    total = add(total, mul(koleoLoss(first), cfg.koleo_features));
  }
  if (sPatch && tPatch) {
    if (!s.center2) throw new Error('--ibot: the state has no patch center (center2)');
    const patch = ibotPatchLoss(sPatch, tPatch, s.center2, mb.masks!, nPatches, {
      studentTemp: cfg.ibot_student_patch_temp,
      teacherTemp: cfg.ibot_teacher_patch_temp,
    });
    total = add(total, mul(patch, cfg.ibot_loss_weight));
  }
  return { loss: total, dino: total === dino ? null : dino, tOut, tPatch, tEmb };
}
