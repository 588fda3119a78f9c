// Reads the wasm kernels' signatures out of source text: AssemblyScript's `export function`s (the
// module's exports) and the methods of the TypeScript `KernelExports` interface that calls them.
// Both are compared as text (parameter names and AssemblyScript type names), so a parameter added,
// dropped, renamed, reordered or changed between i32 and f32 on one side shows up as a difference.

export interface Param {
  name: string;
  type: string;
}
export interface Signature {
  name: string;
  params: Param[];
  ret: string;
}

/** The source without comments, so commented-out code and doc examples are not read as declarations. */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, '');
}

function parseParams(list: string, where: string): Param[] {
  const parts = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return parts.map((p) => {
    const m = /^(\w+)\s*:\s*(\w+)$/.exec(p);
    // A default value or an optional parameter would make the arity a range; the calls assume one.
    if (!m) throw new Error(`${where}: cannot read parameter "${p}" (want "name: type", no defaults)`);
    return { name: m[1], type: m[2] };
  });
}

/**
 * Every top-level `export function name(p: t, …): r` of one AssemblyScript file. `@inline` ones are
 * read too: AssemblyScript still exports them from the module when their file is re-exported whole.
 */
export function assemblyExports(src: string, file = 'source'): Signature[] {
  const out: Signature[] = [];
  const re = /^(?:@inline\s+)?export function (\w+)\s*\(([^)]*)\)\s*:\s*(\w+)/gm;
  for (const m of stripComments(src).matchAll(re)) {
    out.push({ name: m[1], params: parseParams(m[2], `${file} ${m[1]}`), ret: m[3] });
  }
  return out;
}

/**
 * The wasm module's exports as assembly/index.ts re-exports them: `export * from './x'` takes all of
 * x's exported functions, `export { a, b } from './x'` only those.
 */
export function moduleExports(index: string, read: (module: string) => string): Signature[] {
  const out: Signature[] = [];
  for (const line of stripComments(index).split('\n')) {
    const all = /^export \* from '\.\/([\w-]+)';?\s*$/.exec(line.trim());
    const some = /^export \{([^}]*)\} from '\.\/([\w-]+)';?\s*$/.exec(line.trim());
    if (all) {
      out.push(...assemblyExports(read(all[1]), all[1]));
    } else if (some) {
      const names = some[1]
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      const sigs = assemblyExports(read(some[2]), some[2]);
      for (const n of names) {
        const s = sigs.find((x) => x.name === n);
        if (!s) throw new Error(`assembly/index.ts re-exports ${n} from ./${some[2]}, which does not export it`);
        out.push(s);
      }
    } else if (line.trim() !== '') {
      throw new Error(`assembly/index.ts: cannot read "${line.trim()}"`);
    }
  }
  return out;
}

/** The methods of `interface <name> { … }` in a TypeScript file. */
export function interfaceMethods(src: string, name: string): Signature[] {
  const text = stripComments(src);
  const start = text.search(new RegExp(`interface ${name}\\s*\\{`));
  if (start < 0) throw new Error(`no interface ${name}`);
  const open = text.indexOf('{', start);
  const close = text.indexOf('\n}', open);
  const body = text.slice(open + 1, close);
  const out: Signature[] = [];
  for (const m of body.matchAll(/(\w+)\s*\(([^)]*)\)\s*:\s*(\w+)\s*;/g)) {
    out.push({ name: m[1], params: parseParams(m[2], `${name}.${m[1]}`), ret: m[3] });
  }
  return out;
}

export const formatSignature = (s: Signature): string =>
  `${s.name}(${s.params.map((p) => `${p.name}: ${p.type}`).join(', ')}): ${s.ret}`;

/** Differences between the declared exports and the TypeScript side's interface, one line each. */
export function compareSignatures(declared: Signature[], ts: Signature[]): string[] {
  const problems: string[] = [];
  const byName = new Map(ts.map((s) => [s.name, s]));
  const seen = new Set<string>();
  for (const s of ts) {
    if (seen.has(s.name)) problems.push(`${s.name}: declared twice on the TypeScript side`);
    seen.add(s.name);
  }
  for (const d of declared) {
    const t = byName.get(d.name);
    if (!t) problems.push(`${d.name}: missing on the TypeScript side; declare ${formatSignature(d)}`);
    else if (formatSignature(t) !== formatSignature(d)) {
      problems.push(`${d.name}: the TypeScript side has ${formatSignature(t)}; assembly has ${formatSignature(d)}`);
    }
  }
  const names = new Set(declared.map((d) => d.name));
  for (const t of ts)
    if (!names.has(t.name)) problems.push(`${t.name}: on the TypeScript side but not exported by assembly/`);
  return problems;
}
