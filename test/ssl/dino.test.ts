// DINO loss (with its gradient and the center update), Sinkhorn-Knopp and me-max against an
// independent float64 PyTorch implementation of facebookresearch/dino, dinov2 and msn
// (test/fixtures/ssl/dino.safetensors, scripts/make-ssl-fixtures.py).
import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { backward, tidy, zeros } from '../../src/tensor/index.js';
import type { Backend } from '../../src/backend/backend.js';
import { centeredTeacher, dinoLoss, sinkhornKnopp, updateCenter } from '../../src/ssl/dino.js';
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
    const l = dinoLoss(student, q, { studentTemp: c.studentTemp, nCrops: c.nCrops });
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

conformance('ssl: DINO loss, Sinkhorn-Knopp, me-max vs PyTorch', (test, be) => {
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
