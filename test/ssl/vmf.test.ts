// DINO-vMF's log-normaliser log C_p(κ) against an independent float64 reference (the power series of
// I_ν summed in log space), its gradient against finite differences of that reference and against
// the closed form −I_{ν+1}/I_ν, and the vMF logits of the head on every backend.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { assertClose, gradCheck } from '../helpers/check.js';
import { backward, param, sum, tensor, tidy } from '../../src/tensor/index.js';
import { vmfLogits, vmfLogNormaliser, vmfLogNormaliserF64 } from '../../src/ssl/vmf.js';
import { leakFree } from './fixtures.js';

/** log Γ(x) for x a positive integer or half-integer, by the recurrence from Γ(1) or Γ(½). */
function lgammaHalf(x: number): number {
  let v = Number.isInteger(x) ? 0 : 0.5 * Math.log(Math.PI);
  for (let k = Number.isInteger(x) ? 1 : 0.5; k < x - 1e-9; k++) v += Math.log(k);
  return v;
}

/** log I_ν(κ) = log Σ_m (κ/2)^{2m+ν} / (m! Γ(m+ν+1)), summed with a running max (float64). */
function logBesselI(nu: number, kappa: number): number {
  const lk = Math.log(kappa / 2);
  const terms: number[] = [];
  let lgM = 0,
    lgMnu = lgammaHalf(nu + 1);
  for (let m = 0; m < 4000; m++) {
    if (m > 0) {
      lgM += Math.log(m);
      lgMnu += Math.log(m + nu);
    }
    terms.push((2 * m + nu) * lk - lgM - lgMnu);
  }
  const mx = Math.max(...terms);
  return mx + Math.log(terms.reduce((a, t) => a + Math.exp(t - mx), 0));
}

/** The exact log C_p(κ) = ν log κ − (p/2) log 2π − log I_ν(κ); at κ = 0 the uniform density's log. */
function logCRef(kappaSigned: number, p: number): number {
  const kappa = Math.abs(kappaSigned); // C_p depends on κ² only, which lets finite differences straddle 0
  const nu = p / 2 - 1;
  if (kappa === 0) return lgammaHalf(p / 2) - Math.log(2) - (p / 2) * Math.log(Math.PI);
  return nu * Math.log(kappa) - (p / 2) * Math.log(2 * Math.PI) - logBesselI(nu, kappa);
}

const KAPPAS = [0, 1e-3, 0.3, 1, 2.5, 7, 20, 55, 150, 400];

test('log C_p(κ): the expansion is within the documented error of the exact series (float64)', () => {
  const bound = (p: number) => (p < 12 ? 1e-4 : p < 16 ? 7e-6 : p < 32 ? 1.5e-6 : p < 64 ? 3e-8 : 1e-9);
  for (const p of [8, 9, 12, 16, 24, 32, 64, 256]) {
    for (let k = 0; k <= 400; k = k < 0.01 ? k + 0.005 : k * 1.07) {
      const got = vmfLogNormaliserF64(k, p),
        want = logCRef(k, p);
      assert.ok(Math.abs(got - want) < bound(p), `p=${p} κ=${k}: ${got} vs ${want} (error ${Math.abs(got - want)})`);
    }
  }
  // Sanity of the reference itself: p = 3 has the closed form C_3(κ) = κ / (4π sinh κ).
  for (const k of [0.5, 2, 10])
    assert.ok(Math.abs(logCRef(k, 3) - Math.log(k / (4 * Math.PI * Math.sinh(k)))) < 1e-12, `C_3(${k})`);
});

test('d/dκ log C_p(κ) of the reference is −I_{p/2}(κ)/I_{p/2−1}(κ)', () => {
  for (const p of [8, 64]) {
    for (const k of [0.5, 5, 80]) {
      const h = 1e-4;
      const fd = (logCRef(k + h, p) - logCRef(k - h, p)) / (2 * h);
      const ratio = -Math.exp(logBesselI(p / 2, k) - logBesselI(p / 2 - 1, k));
      assert.ok(Math.abs(fd - ratio) < 1e-7, `p=${p} κ=${k}: ${fd} vs ${ratio}`);
    }
  }
});

conformance('ssl: DINO-vMF', (test, be) => {
  for (const p of [8, 64]) {
    test(
      `log C_${p}(κ) value and gradient vs the float64 series`,
      leakFree(async () => {
        const ks = Float64Array.from(KAPPAS);
        await gradCheck(
          be(),
          (k) => vmfLogNormaliser(k, p),
          (k) => Float64Array.from(k, (v) => logCRef(v, p)),
          [{ shape: [ks.length], data: ks }],
          // Values reach ~|300|: float32 holds them to ~3e-5 absolute; p = 8 adds the expansion's 8e-5.
          {
            fwd: { rtol: 2e-6, atol: p === 8 ? 1.5e-4 : 1e-4 },
            grad: { rtol: 2e-3, atol: 2e-3 },
            h: 1e-3,
            what: `log C_${p}`,
          },
        );
      }),
    );
  }

  test(
    'the gradient is −I_{p/2}/I_{p/2−1} at κ from 0.5 to 300 (p = 32)',
    leakFree(async () => {
      const ks = [0.5, 3, 30, 300];
      const k = param(tensor(ks, [ks.length], be()));
      tidy(() => backward(sum(vmfLogNormaliser(k, 32))));
      const want = ks.map((v) => -Math.exp(logBesselI(16, v) - logBesselI(15, v)));
      assertClose(await k.grad!.data(), want, { rtol: 1e-4, atol: 1e-6 }, 'dlogC/dκ');
      k.dispose();
    }),
  );

  test(
    'vMF logits y·w_k + log C_p(‖w_k‖): value and gradients in y and w',
    leakFree(async () => {
      const B = 3,
        K = 5,
        p = 8;
      // Unit-norm rows of y, as the head feeds them.
      const y = Float64Array.from({ length: B * p }, (_, i) => Math.sin(1.3 * i + 0.2));
      for (let b = 0; b < B; b++) {
        const n = Math.hypot(...y.subarray(b * p, (b + 1) * p));
        for (let j = 0; j < p; j++) y[b * p + j] /= n;
      }
      const w = Float64Array.from({ length: K * p }, (_, i) => (1 + (i % 5)) * Math.cos(0.7 * i));
      const ref = (yy: Float64Array, ww: Float64Array) => {
        const out = new Float64Array(B * K);
        for (let k = 0; k < K; k++) {
          const row = ww.subarray(k * p, (k + 1) * p);
          const lc = logCRef(Math.hypot(...row), p);
          for (let b = 0; b < B; b++) {
            let d = 0;
            for (let j = 0; j < p; j++) d += yy[b * p + j] * row[j];
            out[b * K + k] = d + lc;
          }
        }
        return out;
      };
      await gradCheck(
        be(),
        (yy, ww) => vmfLogits(yy, ww),
        ref,
        [
          { shape: [B, p], data: y },
          { shape: [K, p], data: w },
        ],
        { fwd: { rtol: 1e-5, atol: 1e-4 }, what: 'vmfLogits' },
      );
    }),
  );
});

test.run();
