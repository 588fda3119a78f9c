// The WebGPU binary interface: every struct a WGSL kernel binds as var<uniform> has exactly one
// declaration on the TypeScript side (paramLayout in the family files), with the same fields in
// the same order and types, and packParams writes each field at the offset WGSL reads it from.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { packagePath } from '../../src/util/paths.js';
import { PARAM_LAYOUTS, packParams, paramLayout, structLayout, typeInfo } from '../../src/backend/webgpu/params.js';
// Loads every family file, which declares its layouts.
import '../../src/backend/webgpu/index.js';
import { compareLayout, uniformStructNames, wgslStructs } from './wgsl.js';

const files = readdirSync(packagePath('wgsl'))
  .filter((f) => f.endsWith('.wgsl'))
  .sort();
const source = (f: string) => readFileSync(packagePath('wgsl', f), 'utf8');

test('every uniform struct in wgsl/ is declared once on the TypeScript side, and matches', () => {
  let checked = 0;
  for (const file of files) {
    const src = source(file);
    const structs = wgslStructs(src);
    for (const name of uniformStructNames(src)) {
      const fields = structs.get(name);
      assert.ok(fields, `${file}: var<uniform> of an undeclared struct ${name}`);
      const ts = PARAM_LAYOUTS.filter((l) => l.file === file && l.struct === name);
      assert.is(ts.length, 1, `${file} ${name}: ${ts.length} paramLayout declarations on the TypeScript side`);
      const problems = compareLayout(fields!, ts[0]);
      assert.equal(problems, [], problems.join('\n'));
      checked++;
    }
  }
  assert.ok(checked >= 15, `only ${checked} uniform structs found`);
  assert.is(checked, PARAM_LAYOUTS.length, 'a layout declared on the TypeScript side binds no WGSL uniform');
});

test('offsets follow WGSL alignment rules', () => {
  // The WGSL spec's example: a vec2 aligns to 8; the struct's size rounds up to its alignment.
  assert.equal(structLayout(['f32', 'f32', 'vec2<f32>', 'f32']), { offsets: [0, 4, 8, 16], size: 24 });
  // vec3 aligns to 16 but is 12 bytes: a scalar after it fills the gap.
  assert.equal(structLayout(['u32', 'vec3<f32>', 'f32']), { offsets: [0, 16, 28], size: 32 });
  assert.equal(structLayout(['u32', 'vec4<i32>']), { offsets: [0, 16], size: 32 });
  assert.equal(structLayout(['array<vec4<u32>, 2>', 'array<vec4<i32>, 2>', 'i32', 'u32']), {
    offsets: [0, 32, 64, 68],
    size: 80,
  });
  assert.equal(structLayout(['u32', 'f32', 'f32']), { offsets: [0, 4, 8], size: 12 });
  // Uniform arrays need a 16-byte stride; scalar arrays would not match a flat packing.
  assert.throws(() => typeInfo('array<u32, 4>'), /not supported/);
});

const T = paramLayout('abi-test.wgsl', 'T', [
  ['n', 'u32'],
  ['shape', 'array<vec4<u32>, 2>'],
  ['off', 'i32'],
  ['x', 'f32'],
  ['_pad', 'u32'],
  ['v', 'vec3<f32>'],
  ['last', 'f32'],
]);
PARAM_LAYOUTS.splice(PARAM_LAYOUTS.indexOf(T), 1); // not a kernel's: kept out of the test above

test('packParams writes each field at its offset with its type, zero elsewhere', () => {
  assert.equal(T.offsets, [0, 16, 48, 52, 56, 64, 76]);
  const bytes = packParams(T, {
    n: 2 ** 32 + 7,
    shape: [1, 2, 3, 4, 5, 6],
    off: -3,
    x: 0.1,
    v: [1.5, -2],
    last: -Infinity,
  });
  assert.is(bytes.byteLength, 80);
  const u = new Uint32Array(bytes.buffer),
    i = new Int32Array(bytes.buffer),
    f = new Float32Array(bytes.buffer);
  assert.is(u[0], 7); // u32 wraps as the old packer did (x >>> 0)
  assert.equal([...u.subarray(1, 4)], [0, 0, 0]);
  assert.equal([...u.subarray(4, 12)], [1, 2, 3, 4, 5, 6, 0, 0]);
  assert.is(i[12], -3);
  assert.is(f[13], Math.fround(0.1));
  assert.equal([...u.subarray(14, 16)], [0, 0]);
  assert.equal([...f.subarray(16, 20)], [1.5, -2, 0, -Infinity]);
  assert.throws(() => packParams(T, { n: 1, shape: new Array(9).fill(1), off: 0, x: 0, v: [], last: 0 }), /9 values/);
  // Blocks are whole 16-byte units, as the runtime's uniform arena copies them.
  assert.is(packParams(paramLayout('abi-test.wgsl', 'S', [['a', 'u32']]), { a: 1 }).byteLength, 16);
  PARAM_LAYOUTS.pop();
});

const NORM_WGSL = `
struct P { rows: u32, cols: u32, eps: f32, _pad: u32 }; // a comment, with: colons
struct Copy {
  shape: array<vec4<u32>, 2>,
  srcOffset: i32, n: u32,
};
@group(0) @binding(6) var<uniform> fP: P;
@group(0) @binding(2) var<uniform> cP : Copy;
`;

test('the checker reports a moved, retyped, renamed, missing or extra field', () => {
  const structs = wgslStructs(NORM_WGSL);
  assert.equal([...uniformStructNames(NORM_WGSL)], ['P', 'Copy']);
  assert.equal(structs.get('Copy'), [
    { name: 'shape', type: 'array<vec4<u32>, 2>' },
    { name: 'srcOffset', type: 'i32' },
    { name: 'n', type: 'u32' },
  ]);
  const ts = paramLayout('norm-test.wgsl', 'P', [
    ['rows', 'u32'],
    ['cols', 'u32'],
    ['eps', 'f32'],
    ['_pad', 'u32'],
  ]);
  PARAM_LAYOUTS.pop();
  assert.equal(compareLayout(structs.get('P')!, ts), []);
  const cases: [string, RegExp][] = [
    ['struct P { cols: u32, rows: u32, eps: f32, _pad: u32 };', /field 0 is cols: u32/],
    ['struct P { rows: u32, cols: u32, eps: u32, _pad: u32 };', /field 2 is eps: u32/],
    ['struct P { rows: u32, cols: u32, epsilon: f32, _pad: u32 };', /field 2 is epsilon/],
    [
      'struct P { rows: u32, cols: u32, eps: f32 };',
      /field 3 _pad: u32 is not in the WGSL struct[\s\S]*12 bytes in WGSL, 16/,
    ],
    ['struct P { rows: u32, cols: u32, eps: f32, _pad: u32, extra: u32 };', /field 4 extra: u32 is not declared/],
    ['struct P { rows: u32, cols: u32, eps: vec2<f32>, _pad: u32 };', /field 2 is eps: vec2<f32> at byte 8/],
  ];
  for (const [wgsl, want] of cases) {
    const problems = compareLayout(wgslStructs(wgsl).get('P')!, ts);
    assert.ok(want.test(problems.join('\n')), `${want} not in:\n${problems.join('\n')}`);
  }
  assert.throws(() => wgslStructs('struct Q { @align(16) a: u32 };'), /cannot read field/);
});

// Type-level checks: never called, only compiled. A field left out, misspelt or not in the struct
// must not compile; padding is never passed.
export function wrongValuesDoNotCompile(): void {
  const P = paramLayout('x.wgsl', 'P', [
    ['rows', 'u32'],
    ['eps', 'f32'],
    ['shape', 'array<vec4<u32>, 2>'],
    ['_pad', 'u32'],
  ]);
  // @ts-expect-error eps missing
  packParams(P, { rows: 1, shape: [] });
  // @ts-expect-error a field the struct does not have
  packParams(P, { rows: 1, eps: 0, shape: [], cols: 2 });
  // @ts-expect-error padding is not a value
  packParams(P, { rows: 1, eps: 0, shape: [], _pad: 0 });
  // @ts-expect-error an array field takes a list
  packParams(P, { rows: 1, eps: 0, shape: 3 });
  packParams(P, { rows: 1, eps: 0, shape: [3] });
}

test.run();
