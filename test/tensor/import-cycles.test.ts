// The tensor core's import graph has no cycle, autograd.ts in particular imports no op (the ops
// import record() from it; add reaches it through setGradientAdd). Read from the sources, where
// `import type` and type-only specifiers are not edges: TypeScript erases them, so they cannot
// change the order in which modules are evaluated.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TENSOR = fileURLToPath(new URL('../../../src/tensor/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of a module that exist at run time, as paths of .ts files. */
export function runtimeImports(file: string, text: string): string[] {
  const out: string[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?([^;]*?)\s*from\s*['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) {
    const spec = m[4] ?? m[5];
    if (!spec.startsWith('.')) continue;
    if (m[2]) continue;
    const clause = m[3] ?? '';
    const braces = /^\{([\s\S]*)\}$/.exec(clause.trim());
    if (braces) {
      const names = braces[1]
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (names.length > 0 && names.every((n) => n.startsWith('type '))) continue;
    }
    out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

/** One cycle of the graph as a path that starts and ends at the same node, or null. */
export function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (n: string): string[] | null => {
    if (state.get(n) === 'done') return null;
    if (state.get(n) === 'open') return [...path.slice(path.indexOf(n)), n];
    state.set(n, 'open');
    path.push(n);
    for (const m of graph.get(n) ?? []) {
      const c = visit(m);
      if (c) return c;
    }
    path.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of graph.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

function tensorGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of sources(TENSOR)) graph.set(f, runtimeImports(f, readFileSync(f, 'utf8')));
  return graph;
}

const name = (f: string) => relative(TENSOR, f);

test('the cycle finder finds a cycle and passes a DAG', () => {
  assert.equal(
    findCycle(
      new Map([
        ['a', ['b']],
        ['b', ['c']],
        ['c', ['a']],
        ['d', []],
      ]),
    ),
    ['a', 'b', 'c', 'a'],
  );
  assert.is(
    findCycle(
      new Map([
        ['a', ['b', 'c']],
        ['b', ['c']],
        ['c', []],
      ]),
    ),
    null,
  );
});

test('type-only imports are not edges; value imports and re-exports are', () => {
  const text = [
    "import type { A } from './a.js';",
    "import { type B, type C } from './b.js';",
    "import { D, type E } from './d.js';",
    "export { F } from './f.js';",
    "export type { G } from './g.js';",
    "export * from './h.js';",
    "import {\n  I,\n  J,\n} from './i.js';",
    "import { K } from '../../backend/k.js';",
  ].join('\n');
  assert.equal(
    runtimeImports('/x/y.ts', text).map((p) => relative('/x', p)),
    ['d.ts', 'f.ts', 'h.ts', 'i.ts', '../backend/k.ts'],
  );
});

test('src/tensor has no import cycle', () => {
  const graph = tensorGraph();
  // Guards against a parser that finds nothing (and so no cycle).
  assert.ok(graph.size >= 15, `only ${graph.size} modules found under ${TENSOR}`);
  assert.ok(
    graph.get(join(TENSOR, 'ops/elementwise.ts'))?.includes(join(TENSOR, 'autograd.ts')),
    'elementwise imports autograd',
  );
  const cycle = findCycle(graph);
  assert.is(cycle, null, `import cycle: ${cycle?.map(name).join(' → ')}`);
});

test('autograd.ts imports no op', () => {
  const imports = tensorGraph().get(join(TENSOR, 'autograd.ts')) ?? [];
  assert.ok(imports.length > 0);
  const ops = imports.filter((f) => name(f).startsWith('ops/'));
  assert.equal(ops.map(name), []);
});

test.run();
