// A pickle interpreter that never executes code. Python's unpickler is a small stack machine whose
// GLOBAL opcode imports any name and whose REDUCE opcode calls it, which is why loading an untrusted
// .pth with torch.load(weights_only=False) runs arbitrary code. Here the machine only builds data:
// GLOBAL/STACK_GLOBAL go through `hooks.global`, which returns a PyGlobal token for a name on the
// caller's allow-list and throws for any other (at that opcode, before the name could be used), and
// REDUCE/NEWOBJ/BUILD hand such tokens to hooks that rebuild the few objects they know in plain JS.
//
// Values: None → null, bool → boolean, int → number (bigint beyond ±2^53), float → number, str →
// string, bytes → Uint8Array, list/tuple/set → array, dict → plain object (keys made strings; see
// dictKey). Everything is bounded: stack, marks, memo, string and integer lengths, and the depth of
// the finished structure (checked without recursion, so downstream recursive code is safe too);
// cyclic structures are refused.
import { PthError } from './errors.js';

export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get fullName(): string {
    return `${this.module}.${this.name}`;
  }
}

export type Dict = Record<string, unknown>;

export interface PickleContext {
  /** A new, empty dict the machine will accept SETITEM(S) on. */
  dict(): Dict;
  isDict(v: unknown): v is Dict;
  isTuple(v: unknown): v is unknown[];
}

export interface PickleHooks {
  /** Must throw for any name not allowed; returns the token pushed on the stack. */
  global(module: string, name: string): PyGlobal;
  reduce(ctx: PickleContext, callable: PyGlobal, args: unknown[]): unknown;
  newobj(ctx: PickleContext, cls: PyGlobal, args: unknown[]): unknown;
  /** Applies BUILD's state to obj (mutating it); throws if obj does not take state. */
  build(ctx: PickleContext, obj: unknown, state: unknown): void;
  persistentLoad(ctx: PickleContext, pid: unknown): unknown;
  /** Objects the hooks made that may appear in the result as leaves (tensors); anything else they made (tokens) may not. */
  isLeaf(v: object): boolean;
}

export interface PickleLimits {
  maxStack: number;
  maxMarks: number;
  maxMemo: number;
  maxDepth: number;
}

export const DEFAULT_PICKLE_LIMITS: PickleLimits = {
  maxStack: 1 << 20,
  maxMarks: 1 << 16,
  maxMemo: 1 << 22,
  maxDepth: 256,
};

/** Python ints longer than this (in bytes) are refused: checkpoints hold counters, not bignums. */
const MAX_LONG_BYTES = 256;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function typeName(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyGlobal) return `the global ${v.fullName}`;
  if (Array.isArray(v)) return 'a list/tuple';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') return v.constructor?.name === 'Object' ? 'a dict' : `a ${v.constructor?.name ?? 'dict'}`;
  if (typeof v === 'number') return Number.isInteger(v) ? 'an int' : 'a float';
  if (typeof v === 'bigint') return 'an int';
  if (typeof v === 'string') return 'a str';
  return typeof v;
}

/** Python dict keys as JS property names: str as is, int/bool/None/float as Python prints them. */
function dictKey(k: unknown, isTuple: (v: unknown) => boolean): string {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'bigint') return String(k);
  if (typeof k === 'boolean') return k ? 'True' : 'False';
  if (k === null) return 'None';
  if (
    isTuple(k) &&
    (k as unknown[]).every((x) => x === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof x))
  ) {
    const parts = (k as unknown[]).map((x) => (typeof x === 'string' ? `'${x}'` : dictKey(x, isTuple)));
    return `(${parts.join(', ')}${parts.length === 1 ? ',' : ''})`;
  }
  throw new PthError(`pickle: dict key of type ${typeName(k)} is not supported`);
}

function setKey(d: Dict, k: unknown, v: unknown, isTuple: (v: unknown) => boolean): void {
  const key = dictKey(k, isTuple);
  // defineProperty: a key like "__proto__" stays plain data instead of reaching the prototype.
  Object.defineProperty(d, key, { value: v, enumerable: true, writable: true, configurable: true });
}

function readLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  if (bytes[bytes.length - 1] & 0x80) v -= 1n << BigInt(8 * bytes.length);
  return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export function unpickle(data: Uint8Array, hooks: PickleHooks, limits: PickleLimits = DEFAULT_PICKLE_LIMITS): unknown {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const dicts = new WeakSet<object>();
  const tuples = new WeakSet<object>();
  const lists = new WeakSet<object>();
  const ctx: PickleContext = {
    dict() {
      const d: Dict = {};
      dicts.add(d);
      return d;
    },
    isDict: (v): v is Dict => typeof v === 'object' && v !== null && dicts.has(v),
    isTuple: (v): v is unknown[] => typeof v === 'object' && v !== null && tuples.has(v),
  };
  const tuple = (items: unknown[]): unknown[] => {
    tuples.add(items);
    return items;
  };
  const list = (items: unknown[]): unknown[] => {
    lists.add(items);
    return items;
  };

  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  let depthTotal = 0; // items on the stack and all marked stacks below it
  const memo = new Map<number, unknown>();
  let pos = 0;
  let op = 0;
  let opAt = 0;

  const fail = (msg: string): never => {
    throw new PthError(`pickle: ${msg} (opcode 0x${op.toString(16).padStart(2, '0')} at byte ${opAt})`);
  };
  const need = (n: number): number => {
    if (pos + n > data.length) fail(`data ends inside an opcode (needs ${n} bytes, ${data.length - pos} left)`);
    const at = pos;
    pos += n;
    return at;
  };
  const push = (v: unknown): void => {
    if (++depthTotal > limits.maxStack) fail(`stack over ${limits.maxStack} items`);
    stack.push(v);
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    depthTotal--;
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = marks.pop();
    if (prev === undefined) fail('no MARK to pop to');
    stack = prev!;
    return items; // depthTotal unchanged: callers push a replacement or drop items explicitly
  };
  const dropItems = (n: number): void => {
    depthTotal -= n;
  };
  const str = (n: number): string => {
    const at = need(n);
    try {
      return utf8.decode(data.subarray(at, at + n));
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const bytes = (n: number): Uint8Array => {
    const at = need(n);
    return data.slice(at, at + n);
  };
  const line = (): string => {
    const nl = data.subarray(pos, pos + 1025).indexOf(0x0a);
    if (nl < 0) fail('GLOBAL name is not a newline-terminated line of at most 1024 bytes');
    const s = str(nl);
    pos++;
    return s;
  };
  const memoPut = (id: number): void => {
    if (!memo.has(id) && memo.size >= limits.maxMemo) fail(`memo over ${limits.maxMemo} entries`);
    memo.set(id, top());
  };
  const memoGet = (id: number): void => {
    if (!memo.has(id)) fail(`memo id ${id} was never stored`);
    push(memo.get(id));
  };
  const appendTo = (target: unknown, items: unknown[]): void => {
    if (!(Array.isArray(target) && lists.has(target))) fail(`APPEND to ${typeName(target)}, not a list`);
    for (const it of items) (target as unknown[]).push(it);
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!ctx.isDict(target)) fail(`SETITEM on ${typeName(target)}, not a dict`);
    if (items.length % 2) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) setKey(target as Dict, items[i], items[i + 1], ctx.isTuple);
  };
  const asGlobal = (v: unknown, what: string): PyGlobal => {
    if (!(v instanceof PyGlobal)) return fail(`${what} on ${typeName(v)}, which is not callable`);
    return v;
  };
  const args = (v: unknown, what: string): unknown[] => {
    if (!ctx.isTuple(v)) return fail(`${what} arguments are ${typeName(v)}, not a tuple`);
    return v;
  };

  for (;;) {
    opAt = pos;
    if (pos >= data.length) fail('data ended without a STOP opcode');
    op = data[pos++];
    switch (op) {
      case 0x80: // PROTO
        if (data[need(1)] > 5) fail(`protocol ${data[pos - 1]} is newer than 5`);
        break;
      case 0x95: {
        // FRAME: a length hint only
        const n = u64(view, need(8));
        if (n > data.length - pos) fail(`FRAME of ${n} bytes runs past the end`);
        break;
      }
      case 0x2e: {
        // STOP
        const result = pop();
        checkStructure(result, hooks, ctx, limits.maxDepth);
        return result;
      }
      case 0x28: // MARK
        if (marks.length >= limits.maxMarks) fail(`more than ${limits.maxMarks} nested MARKs`);
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length === 0 && marks.length > 0)
          dropItems(popMark().length); // pops a MARK, as CPython does
        else pop();
        break;
      case 0x31: // POP_MARK
        dropItems(popMark().length);
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e:
        push(null);
        break; // NONE
      case 0x88:
        push(true);
        break; // NEWTRUE
      case 0x89:
        push(false);
        break; // NEWFALSE
      case 0x4a:
        push(view.getInt32(need(4), true));
        break; // BININT
      case 0x4b:
        push(data[need(1)]);
        break; // BININT1
      case 0x4d:
        push(view.getUint16(need(2), true));
        break; // BININT2
      case 0x8a: {
        // LONG1
        const n = data[need(1)];
        push(readLong(bytes(n)));
        break;
      }
      case 0x8b: {
        // LONG4
        const n = view.getInt32(need(4), true);
        if (n < 0 || n > MAX_LONG_BYTES) fail(`LONG4 of ${n} bytes (limit ${MAX_LONG_BYTES})`);
        push(readLong(bytes(n)));
        break;
      }
      case 0x47:
        push(view.getFloat64(need(8), false));
        break; // BINFLOAT (big-endian)
      case 0x58:
        push(str(view.getUint32(need(4), true)));
        break; // BINUNICODE
      case 0x8c:
        push(str(data[need(1)]));
        break; // SHORT_BINUNICODE
      case 0x8d:
        push(str(u64(view, need(8))));
        break; // BINUNICODE8
      case 0x54: {
        // BINSTRING (Python 2 str): latin-1
        const n = view.getInt32(need(4), true);
        if (n < 0) fail('negative BINSTRING length');
        push(Buffer.from(bytes(n)).toString('latin1'));
        break;
      }
      case 0x55:
        push(Buffer.from(bytes(data[need(1)])).toString('latin1'));
        break; // SHORT_BINSTRING
      case 0x42:
        push(bytes(view.getUint32(need(4), true)));
        break; // BINBYTES
      case 0x43:
        push(bytes(data[need(1)]));
        break; // SHORT_BINBYTES
      case 0x8e:
      case 0x96:
        push(bytes(u64(view, need(8))));
        break; // BINBYTES8, BYTEARRAY8
      case 0x29:
        push(tuple([]));
        break; // EMPTY_TUPLE
      case 0x5d:
        push(list([]));
        break; // EMPTY_LIST
      case 0x7d:
        push(ctx.dict());
        break; // EMPTY_DICT
      case 0x8f:
        push(list([]));
        break; // EMPTY_SET: a list, filled by ADDITEMS
      case 0x85:
      case 0x86:
      case 0x87: {
        // TUPLE1..3
        const n = op - 0x84;
        if (stack.length < n) fail('stack underflow');
        const items = stack.splice(stack.length - n, n);
        stack.push(tuple(items));
        depthTotal -= n - 1;
        break;
      }
      case 0x74: {
        // TUPLE
        const items = popMark();
        dropItems(items.length);
        push(tuple(items));
        break;
      }
      case 0x6c: {
        // LIST
        const items = popMark();
        dropItems(items.length);
        push(list(items));
        break;
      }
      case 0x91: {
        // FROZENSET
        const items = popMark();
        dropItems(items.length);
        push(tuple(items));
        break;
      }
      case 0x64: {
        // DICT
        const items = popMark();
        dropItems(items.length);
        const d = ctx.dict();
        setItems(d, items);
        push(d);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        appendTo(top(), [v]);
        break;
      }
      case 0x65:
      case 0x90: {
        // APPENDS, ADDITEMS
        const items = popMark();
        dropItems(items.length);
        appendTo(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        dropItems(items.length);
        setItems(top(), items);
        break;
      }
      case 0x71:
        memoPut(data[need(1)]);
        break; // BINPUT
      case 0x72:
        memoPut(view.getUint32(need(4), true));
        break; // LONG_BINPUT
      case 0x94:
        memoPut(memo.size);
        break; // MEMOIZE
      case 0x68:
        memoGet(data[need(1)]);
        break; // BINGET
      case 0x6a:
        memoGet(view.getUint32(need(4), true));
        break; // LONG_BINGET
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        push(hooks.global(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(hooks.global(module as string, name as string));
        break;
      }
      case 0x69: {
        // INST (protocol 0): name the global first, so a refusal says what it was
        const module = line();
        const name = line();
        hooks.global(module, name);
        fail(`INST ${module}.${name} is not supported`);
        break;
      }
      case 0x52: {
        // REDUCE
        const a = args(pop(), 'REDUCE');
        const f = asGlobal(pop(), 'REDUCE');
        push(hooks.reduce(ctx, f, a));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const a = args(pop(), 'NEWOBJ');
        const cls = asGlobal(pop(), 'NEWOBJ');
        push(hooks.newobj(ctx, cls, a));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const a = args(pop(), 'NEWOBJ_EX');
        const cls = asGlobal(pop(), 'NEWOBJ_EX');
        if (!ctx.isDict(kwargs) || Object.keys(kwargs).length > 0)
          fail(`NEWOBJ_EX of ${cls.fullName} with keyword arguments is not supported`);
        push(hooks.newobj(ctx, cls, a));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        hooks.build(ctx, top(), state);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        push(hooks.persistentLoad(ctx, pid));
        break;
      }
      case 0x50:
        fail('text persistent ids (PERSID) are not supported');
        break;
      case 0x82:
      case 0x83:
      case 0x84:
        fail('extension-registry globals (EXT1/2/4) are refused');
        break;
      case 0x97:
      case 0x98:
        fail('out-of-band buffers (protocol 5) are not supported');
        break;
      case 0x6f:
        fail('OBJ (protocol 1 object construction) is not supported');
        break;
      default:
        fail(`unsupported or unknown opcode`);
    }
  }
}

function u64(view: DataView, at: number): number {
  const v = view.getBigUint64(at, true);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/**
 * Depth-first walk without recursion: refuses cycles, nesting deeper than maxDepth, and any token
 * (a global, a storage) left in the result instead of being consumed by a rebuild. Each container
 * is expanded once and remembers its height, so shared sub-structures cost nothing extra and are
 * still measured along the deepest path that reaches them.
 */
function checkStructure(root: unknown, hooks: PickleHooks, ctx: PickleContext, maxDepth: number): void {
  const onPath = new Set<object>();
  const height = new Map<object, number>(); // levels of containers at and below a finished one
  const isContainer = (v: unknown): v is object =>
    typeof v === 'object' && v !== null && (Array.isArray(v) || ctx.isDict(v));
  const children = (v: object): unknown[] => (Array.isArray(v) ? v : Object.values(v));
  const tooDeep = (): never => {
    throw new PthError(`pickle: nesting deeper than ${maxDepth} levels`);
  };
  const leafOk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return;
    if (!hooks.isLeaf(v))
      throw new PthError(`pickle: ${typeName(v)} is left in the result; only data and tensors may be`);
  };
  if (!isContainer(root)) {
    leafOk(root);
    return;
  }
  const work: { node: object; kids: unknown[]; i: number; h: number }[] = [
    { node: root, kids: children(root), i: 0, h: 1 },
  ];
  onPath.add(root);
  while (work.length > 0) {
    const frame = work[work.length - 1];
    if (frame.i < frame.kids.length) {
      const kid = frame.kids[frame.i++];
      if (!isContainer(kid)) {
        leafOk(kid);
        continue;
      }
      if (onPath.has(kid)) throw new PthError('pickle: the structure contains itself (a cycle); checkpoints are trees');
      const h = height.get(kid);
      if (h !== undefined) {
        if (work.length + h > maxDepth) tooDeep();
        frame.h = Math.max(frame.h, h + 1);
        continue;
      }
      if (work.length >= maxDepth) tooDeep();
      onPath.add(kid);
      work.push({ node: kid, kids: children(kid), i: 0, h: 1 });
    } else {
      work.pop();
      onPath.delete(frame.node);
      height.set(frame.node, frame.h);
      const parent = work[work.length - 1];
      if (parent) parent.h = Math.max(parent.h, frame.h + 1);
    }
  }
}
