// The wasm binary interface: the AssemblyScript declarations in assembly/, the TypeScript interface
// src/backend/wasm/exports.ts that the family files call through, and the compiled modules must name
// the same functions with the same parameters. A kernel's arguments are positional numbers, so a
// parameter added on one side only would shift every later argument without any error at run time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { packagePath } from '../../src/util/paths.js';
import { WasmRuntime, relaxedSimdAvailable, type WasmBuild } from '../../src/backend/wasm/runtime.js';
import { assemblyExports, compareSignatures, interfaceMethods, moduleExports, type Signature } from './signatures.js';

const read = (...p: string[]) => readFileSync(packagePath(...p), 'utf8');
const declared = (): Signature[] => moduleExports(read('assembly', 'index.ts'), (m) => read('assembly', `${m}.ts`));
const tsSide = (): Signature[] => interfaceMethods(read('src', 'backend', 'wasm', 'exports.ts'), 'KernelExports');

test('the parser reads every kernel module of assembly/', () => {
  const sigs = declared();
  assert.ok(sigs.length >= 45, `only ${sigs.length} exports read`);
  for (const name of ['fill', 'layerNorm', 'matmulCompute', 'convGradWeight', 'attention', 'heapBase']) {
    assert.ok(
      sigs.some((s) => s.name === name),
      name,
    );
  }
  const ln = sigs.find((s) => s.name === 'layerNorm')!;
  assert.is(ln.params.length, 10); // declared over two lines
  assert.equal(ln.params[7], { name: 'eps', type: 'f32' });
});

test('src/backend/wasm/exports.ts declares exactly the AssemblyScript exports', () => {
  const problems = compareSignatures(declared(), tsSide());
  assert.equal(problems, [], problems.join('\n'));
});

test('kernels run over rows return nothing and take (start, end) last; the others do not', () => {
  for (const s of declared()) {
    const tail = s.params
      .slice(-2)
      .map((p) => `${p.name}: ${p.type}`)
      .join(', ');
    if (s.ret === 'void')
      assert.is(tail, 'start: i32, end: i32', `${s.name} returns void but does not end in (start, end)`);
    else assert.is.not(tail, 'start: i32, end: i32', `${s.name} takes a row range but returns ${s.ret}`);
  }
});

for (const build of ['simd', 'relaxed'] as WasmBuild[]) {
  test(`build/kernels-${build}.wasm exports those functions with those arities`, async () => {
    if (build === 'relaxed' && !relaxedSimdAvailable()) return; // the backend refuses this build too
    const rt = await WasmRuntime.create({ threads: 1, build });
    try {
      const exports = rt.exports as unknown as Record<string, unknown>;
      const functions = Object.keys(exports)
        .filter((k) => typeof exports[k] === 'function')
        .sort();
      const sigs = declared();
      assert.equal(functions, sigs.map((s) => s.name).sort(), 'stale build? run `npm run build:wasm`');
      for (const s of sigs) assert.is((exports[s.name] as (...a: number[]) => unknown).length, s.params.length, s.name);
    } finally {
      rt.destroy();
    }
  });
}

// The checker itself, on altered copies of real declarations: each kind of drift has to be reported.
const LAYER_NORM = `
/** doc */
export function layerNorm(x: usize, gamma: usize, beta: usize, out: usize, mean: usize, rstd: usize, cols: i32, eps: f32,
  start: i32, end: i32): void {
  const n = <f32>cols;
}
// @ts-ignore: decorator
@inline function hsum(v: v128): f32 { return 0; }
`;
const LAYER_NORM_TS = `
export interface KernelExports {
  // assembly/norm.ts
  layerNorm(x: usize, gamma: usize, beta: usize, out: usize, mean: usize, rstd: usize, cols: i32, eps: f32,
    start: i32, end: i32): void;
}
`;

test('the checker reports a type, a count, a name, an order and a missing or extra export', () => {
  const base = assemblyExports(LAYER_NORM);
  assert.equal(
    base.map((s) => s.name),
    ['layerNorm'],
  );
  const ts = interfaceMethods(LAYER_NORM_TS, 'KernelExports');
  assert.equal(compareSignatures(base, ts), []);
  const drift = (as: string) => compareSignatures(assemblyExports(as), ts);
  const cases: [string, RegExp][] = [
    [LAYER_NORM.replace('eps: f32', 'eps: i32'), /eps: i32/],
    [LAYER_NORM.replace('cols: i32, eps: f32', 'cols: i32'), /layerNorm: the TypeScript side has/],
    [LAYER_NORM.replace('rstd: usize', 'invStd: usize'), /invStd/],
    [
      LAYER_NORM.replace('gamma: usize, beta: usize', 'beta: usize, gamma: usize'),
      /layerNorm: the TypeScript side has/,
    ],
    [
      LAYER_NORM.replace('layerNorm(', 'layerNorm2('),
      /layerNorm2: missing on the TypeScript side[\s\S]*layerNorm: on the TypeScript side but not exported/,
    ],
    [LAYER_NORM.replace('@inline function', '@inline export function'), /hsum: missing on the TypeScript side/],
  ];
  for (const [as, want] of cases) {
    const problems = drift(as);
    assert.ok(want.test(problems.join('\n')), `${want} not in:\n${problems.join('\n')}`);
  }
  const tsDrift = compareSignatures(
    base,
    interfaceMethods(LAYER_NORM_TS.replace('eps: f32', 'eps: f64'), 'KernelExports'),
  );
  assert.match(tsDrift.join('\n'), /eps: f64/);
  assert.throws(() => assemblyExports('export function f(a: i32 = 0): void {}'), /no defaults/);
  assert.throws(() => moduleExports(`export { nope } from './x';`, () => LAYER_NORM), /does not export it/);
});

// Type-level checks: never called, only compiled. If WasmRuntime.run stopped checking its argument
// list against KernelExports, these @ts-expect-error lines would themselves fail to compile.
export function wrongCallsDoNotCompile(rt: WasmRuntime): void {
  // @ts-expect-error one argument short (eps)
  rt.run('layerNorm', [0, 0, 0, 0, 0, 0, 8], 1);
  // @ts-expect-error one argument too many
  rt.run('fill', [0, 1, 2], 1);
  // @ts-expect-error not an export
  rt.run('layerNormm', [0], 1);
  // @ts-expect-error returns a value: called directly, not over rows
  rt.run('reduceUnits', [], 1);
  rt.run('fill', [0, 1], 1); // the right count compiles
}

test.run();
