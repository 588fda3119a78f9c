// DINO loss (with its gradient and the center update), Sinkhorn-Knopp and me-max against an
// independent float64 PyTorch implementation of facebookresearch/dino, dinov2 and msn
// (test/fixtures/ssl/dino.safetensors, scripts/make-ssl-fixtures.py).
import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { backward, tidy, zeros } from '../../src/tensor/index.js';
import type { Backend } from '../../src/backend/backend.js';
import { centeredTeacher, dinoCrossEntropy, dinoLoss, sinkhornKnopp, updateCenter } from '../../src/ssl/dino.js';
import { DINOLoss } from '../../src/ssl/dino-loss.js';
import { liveTensors, tensor } from '../../src/tensor/index.js';
import { meMaxLoss } from '../../src/ssl/regularizers.js';
import { agree, agreeTensor, disposeAll, Fixture, leakFree } from './fixtures.js';

const f = new Fixture('dino.safetensors');

interface DinoCase {
  prefix: string;
  nCrops: number;
  studentTemp: number;
  teacherTemp: number;
  momentum: number;
  /** false: a zero center, and the update is not checked. */
  center: boolean;
}

async function checkDino(be: Backend, c: DinoCase): Promise<void> {
  const student = f.param(`${c.prefix}student`, be);
  const teacher = f.tensor(`${c.prefix}teacher`, be);
  const center = c.center ? f.tensor(`${c.prefix}center`, be) : zeros([1, teacher.shape[1]], be);
  const loss = tidy(() => {
    const q = centeredTeacher(teacher, center, c.teacherTemp);
    const l = dinoCrossEntropy(student, q, { studentTemp: c.studentTemp, nCrops: c.nCrops });
    backward(l);
    return l;
  });
  agree([await loss.item()], [f.scalar(`${c.prefix}loss`)], `${c.prefix}loss`);
  await agreeTensor(student.grad, f.values(`${c.prefix}grad_student`), `${c.prefix}gradient w.r.t. the student logits`);
  if (c.center) {
    // DINOLoss.forward updates the center after computing the loss with the old one.
    updateCenter(center, teacher, c.momentum);
    await agreeTensor(center, f.values(`${c.prefix}center_after`), `${c.prefix}center after the update`);
  }
  disposeAll(student, teacher, center, loss);
}

/** DINOLoss.forward from raw teacher logits: the same loss, gradient and center update as the fixture. */
async function checkDINOLossClass(be: Backend, c: DinoCase): Promise<void> {
  const student = f.param(`${c.prefix}student`, be);
  const teacher = f.tensor(`${c.prefix}teacher`, be);
  const K = teacher.shape[1];
  const dl = new DINOLoss(be, {
    outDim: K,
    nCrops: c.nCrops,
    warmupTeacherTemp: 0.5,
    teacherTemp: c.teacherTemp,
    warmupTeacherTempEpochs: 2,
    nEpochs: 4,
    studentTemp: c.studentTemp,
    centerMomentum: c.momentum,
  });
  be.upload(dl.center.storage, f.values(`${c.prefix}center`));
  // Epoch 3 is past the warm-up: the temperature is teacherTemp.
  const loss = tidy(() => {
    const l = dl.forward(student, teacher, 3);
    backward(l);
    return l;
  });
  agree([await loss.item()], [f.scalar(`${c.prefix}loss`)], `${c.prefix}DINOLoss`);
  await agreeTensor(student.grad, f.values(`${c.prefix}grad_student`), `${c.prefix}DINOLoss gradient`);
  await agreeTensor(dl.center, f.values(`${c.prefix}center_after`), `${c.prefix}DINOLoss center after the call`);
  assert.throws(() => dl.forward(student, teacher, 4), /epoch 4 is outside the teacher temperature schedule's 0…3/);
  dl.dispose();
  disposeAll(student, teacher, loss);
}

conformance('ssl: DINO loss, Sinkhorn-Knopp, me-max vs PyTorch', (test, be) => {
  test(
    'DINOLoss takes raw teacher logits: centering, temperature schedule and center update in one call',
    leakFree(async () => {
      const c = { nCrops: f.num('ncrops'), studentTemp: f.num('student_temp'), teacherTemp: f.num('teacher_temp') };
      await checkDINOLossClass(be(), { prefix: '', ...c, momentum: f.num('center_momentum'), center: true });
      await checkDINOLossClass(be(), {
        prefix: 'odd.',
        nCrops: 3,
        studentTemp: 0.2,
        teacherTemp: 0.07,
        momentum: 0.8,
        center: true,
      });
    }),
  );

  test('dinoLoss refuses teacher rows that are not probability distributions', async () => {
    const b = be();
    const student = f.tensor('odd.student', b);
    const teacher = f.tensor('odd.teacher', b);
    const opts = { studentTemp: 0.2, nCrops: 3 };
    const center = f.tensor('odd.center', b);
    const q = tidy(() => centeredTeacher(teacher, center, 0.07));
    const checked = await dinoLoss(student, q, opts);
    const plain = tidy(() => dinoCrossEntropy(student, q, opts));
    assert.is(await checked.item(), await plain.item());
    const refuses = async (t: typeof q, re: RegExp) => {
      const before = liveTensors();
      try {
        await dinoLoss(student, t, opts);
      } catch (e) {
        assert.match((e as Error).message, re);
        assert.is(liveTensors(), before, 'a refusal leaves no tensor behind');
        return;
      } finally {
        if (t !== teacher) t.dispose();
      }
      assert.unreachable(`accepted (wanted ${re})`);
    };
    // The PyTorch habit: DINOLoss takes logits, so logits get passed here too.
    await refuses(teacher, /dinoLoss: the teacher targets must be probabilities, but row 0 (sums to|has a negative)/);
    const [B2, K] = q.shape;
    const data = new Float32Array(B2 * K).fill(1 / K);
    data[3 * K + 1] = -0.01;
    data[3 * K + 2] += 0.01;
    await refuses(tensor(data, [B2, K], b), /row 3 has a negative entry \(-0\.01\)/);
    data[3 * K + 1] = data[3 * K + 2] = 1 / K;
    data.subarray(5 * K, 6 * K).fill(2 / K);
    await refuses(tensor(data, [B2, K], b), /row 5 sums to 2, not 1 \(± 0\.001\)/);
    data.subarray(5 * K, 6 * K).fill(1 / K);
    data[0] = NaN;
    await refuses(tensor(data, [B2, K], b), /row 0 is not finite/);
    disposeAll(student, teacher, center, q, checked, plain);
  });

  test(
    'DINO loss, its gradient and the center update: B = 8, 2 global + 4 local crops, K = 256',
    leakFree(async () => {
      assert.equal(f.shape('student'), [f.num('ncrops') * f.num('B'), f.num('K')]);
      await checkDino(be(), {
        prefix: '',
        nCrops: f.num('ncrops'),
        studentTemp: f.num('student_temp'),
        teacherTemp: f.num('teacher_temp'),
        momentum: f.num('center_momentum'),
        center: true,
      });
    }),
  );

  test(
    'DINO loss at odd sizes: 2 global + 1 local crop, B = 5, K = 33, momentum 0.8',
    leakFree(async () => {
      await checkDino(be(), {
        prefix: 'odd.',
        nCrops: 3,
        studentTemp: 0.2,
        teacherTemp: 0.07,
        momentum: 0.8,
        center: true,
      });
    }),
  );

  test(
    'DINO loss with the 2 global crops only (each learns from the other)',
    leakFree(async () => {
      await checkDino(be(), {
        prefix: 'global.',
        nCrops: 2,
        studentTemp: 0.1,
        teacherTemp: 0.04,
        momentum: 0.9,
        center: false,
      });
    }),
  );

  test(
    'Sinkhorn-Knopp teacher (DINOv2): [16, 256] at temp 0.07, and [5, 13] with 3 and 1 iterations',
    leakFree(async () => {
      const t = f.tensor('teacher', be());
      const s = f.tensor('sk_small.teacher', be());
      // Like the other losses, SK leaves its intermediates to the caller's tidy() (the trainer's step).
      const [q, q3, q1] = tidy(() => [sinkhornKnopp(t, 0.07, 3), sinkhornKnopp(s, 0.05, 3), sinkhornKnopp(s, 0.05, 1)]);
      await agreeTensor(q, f.values('sk'), 'SK [16, 256]');
      await agreeTensor(q3, f.values('sk_small.iter3'), 'SK [5, 13], 3 iterations');
      await agreeTensor(q1, f.values('sk_small.iter1'), 'SK [5, 13], 1 iteration');
      disposeAll(t, s, q, q3, q1);
    }),
  );

  test(
    'me-max (MSN): value and gradient on the first global crop [8, 256]',
    leakFree(async () => {
      const x = f.paramRows('student', f.num('B'), be());
      const l = tidy(() => {
        const r = meMaxLoss(x, f.num('student_temp'));
        backward(r);
        return r;
      });
      agree([await l.item()], [f.scalar('memax.loss')], 'me-max');
      await agreeTensor(x.grad, f.values('memax.grad'), 'me-max gradient');
      disposeAll(x, l);
    }),
  );

  test(
    'me-max on a collapsed batch: near log K, with a vanishing gradient',
    leakFree(async () => {
      const x = f.param('memax_collapsed.logits', be());
      const l = tidy(() => {
        const r = meMaxLoss(x, 0.1);
        backward(r);
        return r;
      });
      const expected = f.scalar('memax_collapsed.loss');
      assert.ok(expected > 0.99 * Math.log(7), `the fixture is collapsed: ${expected}`);
      agree([await l.item()], [expected], 'collapsed me-max');
      // torch's float64 gradient is ~1e-11: below what float32 resolves next to the O(1) softmax
      // terms it cancels from, so the check is that ours vanishes too.
      const worst = Math.max(...Array.from(f.values('memax_collapsed.grad'), Math.abs));
      assert.ok(worst < 1e-9, `expected gradient ${worst}`);
      const g = await x.grad!.data();
      assert.ok(
        g.every((v) => Math.abs(v) < 1e-6),
        `gradient vanishes: max ${Math.max(...Array.from(g, Math.abs))}`,
      );
      disposeAll(x, l);
    }),
  );

  test(
    'me-max on a nearly collapsed batch [6, 7]: value and gradient',
    leakFree(async () => {
      const x = f.param('memax_peaked.logits', be());
      const l = tidy(() => {
        const r = meMaxLoss(x, 0.1);
        backward(r);
        return r;
      });
      agree([await l.item()], [f.scalar('memax_peaked.loss')], 'peaked me-max');
      await agreeTensor(x.grad, f.values('memax_peaked.grad'), 'peaked me-max gradient');
      disposeAll(x, l);
    }),
  );
});
