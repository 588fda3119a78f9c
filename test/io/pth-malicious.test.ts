// Pickles that run code under torch.load(weights_only=False) must be refused by readPth, naming the
// global, without running anything. Each payload would create a marker file; the test checks that
// readPth leaves no marker, then (with Debian's torch) lets Python load the same bytes to prove the
// payloads are live: there the markers do appear.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALLOWED_GLOBALS, readPth } from '../../src/io/pth/index.js';
import { archive, f32Bytes, haveTorch, Op, Pk, python, tensorOps, throwsPth } from './pth-helpers.js';

const test = suite('pth malicious');
const dir = mkdtempSync(join(tmpdir(), 'protodino-pth-evil-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

interface Payload {
  name: string;
  global: string;
  marker: string;
  pickle: Uint8Array;
}

function payloads(): Payload[] {
  const m = (n: string): string => join(dir, `pwned-${n}`);
  return [
    {
      name: 'os.system via GLOBAL + REDUCE',
      global: 'os.system',
      marker: m('os-system'),
      pickle: new Pk()
        .op(...Op.PROTO2)
        .global('os', 'system')
        .ustr(`touch ${m('os-system')}`)
        .op(Op.TUPLE1, Op.REDUCE, Op.STOP)
        .bytes(),
    },
    {
      name: 'builtins.eval',
      global: 'builtins.eval',
      marker: m('eval'),
      pickle: new Pk()
        .op(...Op.PROTO2)
        .global('builtins', 'eval')
        .ustr(`open(${JSON.stringify(m('eval'))}, 'w').close()`)
        .op(Op.TUPLE1, Op.REDUCE, Op.STOP)
        .bytes(),
    },
    {
      name: 'posix.system via STACK_GLOBAL (protocol 4)',
      global: 'posix.system',
      marker: m('posix'),
      pickle: new Pk()
        .op(...Op.PROTO4)
        .str('posix')
        .str('system')
        .op(Op.STACK_GLOBAL)
        .str(`touch ${m('posix')}`)
        .op(Op.TUPLE1, Op.REDUCE, Op.STOP)
        .bytes(),
    },
    {
      name: 'subprocess.check_call inside a state dict, after a genuine tensor',
      global: 'subprocess.check_call',
      marker: m('subprocess'),
      pickle: tensorOps(
        new Pk()
          .op(...Op.PROTO2)
          .op(Op.EMPTY_DICT)
          .ustr('w'),
        '0',
        2,
        0,
        [2],
        [1],
      )
        .op(Op.SETITEM)
        .ustr('x')
        .global('subprocess', 'check_call')
        .op(Op.MARK)
        .ustr('touch')
        .ustr(m('subprocess'))
        .op(0x6c /* LIST */, Op.TUPLE1, Op.REDUCE, Op.SETITEM, Op.STOP)
        .bytes(),
    },
  ];
}

test('code-running globals are refused, named, and nothing runs; the same bytes do run under Python', () => {
  const list = payloads();
  const files: string[] = [];
  for (const p of list) {
    const bytes = archive(p.pickle, { 0: f32Bytes([1, 2]) });
    const file = join(dir, `${p.marker.split('/').pop()}.pth`);
    writeFileSync(file, bytes);
    files.push(file);
    const escaped = p.global.replace('.', '\\.');
    const e = throwsPth(() => readPth(bytes), new RegExp(`refused the global ${escaped}\\b`));
    assert.match(e.message, /malicious/, p.name);
    throwsPth(() => readPth(file), new RegExp(`refused the global ${escaped}\\b`));
    assert.not.ok(existsSync(p.marker), `${p.name}: nothing ran`);
  }
  if (!haveTorch()) {
    console.log('  note: /usr/bin/python3 has no torch; skipped proving the payloads are live');
    return;
  }
  python('import sys, torch\nfor f in sys.argv[1:]:\n    torch.load(f, weights_only=False)\n', files);
  for (const p of list)
    assert.ok(existsSync(p.marker), `${p.name}: the payload is live under torch.load(weights_only=False)`);
});

test('the refusal comes before any storage is read (a corrupt storage is never reached)', () => {
  const p = payloads()[3];
  const bytes = archive(p.pickle, { 0: f32Bytes([1, 2]) });
  // Corrupt the storage's data (its CRC no longer matches): reading it would fail differently.
  const at = Buffer.from(bytes).indexOf(Buffer.from(f32Bytes([1, 2])));
  bytes[at] ^= 0xff;
  throwsPth(() => readPth(bytes), /refused the global subprocess\.check_call/);
  // Without the payload the same corruption is caught, so the check above is meaningful.
  const clean = tensorOps(new Pk().op(...Op.PROTO2), '0', 2, 0, [2], [1])
    .op(Op.STOP)
    .bytes();
  const cleanBytes = archive(clean, { 0: f32Bytes([1, 2]) });
  cleanBytes[Buffer.from(cleanBytes).indexOf(Buffer.from(f32Bytes([1, 2])))] ^= 0xff;
  throwsPth(() => readPth(cleanBytes), /CRC-32 mismatch/);
});

test('a refused global is refused even if it is never called', () => {
  const pk = new Pk()
    .op(...Op.PROTO2)
    .global('os', 'system')
    .op(Op.POP, Op.NONE, Op.STOP)
    .bytes();
  throwsPth(() => readPth(archive(pk)), /refused the global os\.system/);
  const inst = new Pk()
    .op(...Op.PROTO2, Op.MARK)
    .raw('ibuiltins\nexec\n')
    .op(Op.STOP)
    .bytes(); // INST (protocol 0)
  throwsPth(() => readPth(archive(inst)), /refused the global builtins\.exec/);
  for (const [m, n] of [
    ['torch', 'load'],
    ['torch._utils', '_rebuild_qtensor'],
    ['numpy.core.multiarray', '_reconstruct'],
    ['collections', 'defaultdict'],
    ['__builtin__', 'getattr'],
  ]) {
    const bytes = archive(
      new Pk()
        .op(...Op.PROTO2)
        .global(m, n)
        .op(Op.STOP)
        .bytes(),
    );
    throwsPth(() => readPth(bytes), new RegExp(`refused the global ${`${m}.${n}`.replace(/\./g, '\\.')}`));
  }
  assert.ok(ALLOWED_GLOBALS.has('torch._utils._rebuild_tensor_v2') && !ALLOWED_GLOBALS.has('os.system'));
  const complex = archive(
    new Pk()
      .op(...Op.PROTO2)
      .global('torch', 'ComplexFloatStorage')
      .op(Op.STOP)
      .bytes(),
  );
  throwsPth(
    () => readPth(complex),
    /refused the global torch\.ComplexFloatStorage: tensors of this type are not supported/,
  );
});

test('allowed globals called the wrong way are refused', () => {
  const wrong: [string, Uint8Array, RegExp][] = [
    [
      '_rebuild_tensor_v2 on a string',
      new Pk()
        .op(...Op.PROTO2)
        .global('torch._utils', '_rebuild_tensor_v2')
        .op(Op.MARK)
        .ustr('storage')
        .int(0)
        .op(Op.MARK)
        .int(1)
        .op(Op.TUPLE, Op.MARK)
        .int(1)
        .op(Op.TUPLE, Op.FALSE, Op.NONE, Op.TUPLE, Op.REDUCE, Op.STOP)
        .bytes(),
      /storage argument is a str/,
    ],
    [
      '_rebuild_tensor_v2 with 2 args',
      new Pk()
        .op(...Op.PROTO2)
        .global('torch._utils', '_rebuild_tensor_v2')
        .int(1)
        .int(2)
        .op(Op.TUPLE2, Op.REDUCE, Op.STOP)
        .bytes(),
      /_rebuild_tensor_v2 called with 2 arguments/,
    ],
    [
      'a storage class called',
      new Pk()
        .op(...Op.PROTO2)
        .global('torch', 'FloatStorage')
        .ustr('rm -rf /')
        .op(Op.TUPLE1, Op.REDUCE, Op.STOP)
        .bytes(),
      /torch\.FloatStorage only names a storage type/,
    ],
    [
      'OrderedDict of a string',
      new Pk()
        .op(...Op.PROTO2)
        .global('collections', 'OrderedDict')
        .ustr('abc')
        .op(Op.TUPLE1, Op.REDUCE, Op.STOP)
        .bytes(),
      /OrderedDict called with 1 arguments that are not one list of pairs/,
    ],
    [
      '_codecs.encode with another codec',
      new Pk()
        .op(...Op.PROTO2)
        .global('_codecs', 'encode')
        .ustr('x')
        .ustr('rot13')
        .op(Op.TUPLE2, Op.REDUCE, Op.STOP)
        .bytes(),
      /only accepted as encode\(str, 'latin1'\)/,
    ],
    [
      'numpy object dtype',
      new Pk()
        .op(...Op.PROTO2)
        .global('numpy', 'dtype')
        .ustr('O8')
        .op(Op.FALSE, Op.TRUE, Op.TUPLE3, Op.REDUCE, Op.STOP)
        .bytes(),
      /numpy\.dtype\("O8"\) is not a supported scalar type/,
    ],
    [
      'NEWOBJ of a rebuild function',
      new Pk()
        .op(...Op.PROTO2)
        .global('torch._utils', '_rebuild_parameter')
        .op(Op.EMPTY_TUPLE, Op.NEWOBJ, Op.STOP)
        .bytes(),
      /cannot instantiate torch\._utils\._rebuild_parameter/,
    ],
    [
      'BUILD on a list',
      new Pk().op(...Op.PROTO2, Op.EMPTY_LIST, Op.EMPTY_DICT, Op.BUILD, Op.STOP).bytes(),
      /BUILD \(setting state\) on a list/,
    ],
    [
      'REDUCE on a string',
      new Pk()
        .op(...Op.PROTO2)
        .ustr('os.system')
        .op(Op.EMPTY_TUPLE, Op.REDUCE, Op.STOP)
        .bytes(),
      /REDUCE on a str, which is not callable/,
    ],
    [
      'a bare global as the result',
      new Pk()
        .op(...Op.PROTO2)
        .global('collections', 'OrderedDict')
        .op(Op.STOP)
        .bytes(),
      /global collections\.OrderedDict is left in the result/,
    ],
    [
      'a persistent id that is not a storage',
      new Pk()
        .op(...Op.PROTO2)
        .ustr('module')
        .ustr('os')
        .op(Op.TUPLE2, Op.BINPERSID, Op.STOP)
        .bytes(),
      /not \('storage', type, key, location, numel\)/,
    ],
  ];
  for (const [what, pkl, pattern] of wrong) {
    try {
      readPth(archive(pkl));
      assert.unreachable(`${what}: accepted`);
    } catch (e) {
      assert.ok(e instanceof Error && e.name === 'PthError', `${what}: ${e}`);
      assert.match((e as Error).message, pattern, what);
    }
  }
});

test.run();
