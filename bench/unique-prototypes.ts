// Times countUniquePrototypes at a DINO head's size (K = 65536 prototypes of D = 256) on the wasm
// backend, for two heads: random prototypes (nothing within ε: only the nearest-neighbour pass
// runs) and a partially collapsed one (every prototype a near copy of one of 2048 directions: all
// of them go through the blocked pairwise pass as well). Run: node dist/bench/unique-prototypes.js
import { pathToFileURL } from 'node:url';
import type { Backend } from '../src/backend/backend.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { add, gatherRows, Generator, mul, noGrad, type Tensor } from '../src/tensor/index.js';
import { countUniquePrototypes } from '../src/eval/unique.js';

export interface UniqueBenchOptions {
  prototypes?: number;
  dim?: number;
  /** Distinct directions of the collapsed head. */
  groups?: number;
}

export interface UniqueBenchCase {
  name: string;
  seconds: number;
  greedy: number;
  components: number;
  candidates: number;
  tiles: number;
}

function collapsedHead(be: Backend, k: number, d: number, groups: number, gen: Generator): Tensor {
  return noGrad(() => {
    const base = gen.randn([groups, d], be);
    const idx = Int32Array.from({ length: k }, (_, i) => (i * 7919) % groups);
    const rows = gatherRows(base, idx);
    // Relative noise 0.004 per row: near copies lie ≈ 0.006 apart, well inside ε = 0.025.
    const noise = gen.randn([k, d], be, 0, 0.004);
    const out = add(rows, noise);
    for (const t of [base, rows, noise]) t.dispose();
    return out;
  });
}

export async function uniquePrototypesBench(opts: UniqueBenchOptions = {}): Promise<UniqueBenchCase[]> {
  const k = opts.prototypes ?? 65536,
    d = opts.dim ?? 256,
    groups = opts.groups ?? 2048;
  const be = await WasmBackend.create();
  console.log(`countUniquePrototypes, K = ${k}, D = ${d}, ε = 0.025, both rules [${be.description}]`);
  const out: UniqueBenchCase[] = [];
  try {
    const gen = new Generator(1);
    const heads: [string, () => Tensor][] = [
      [
        'random',
        () =>
          noGrad(() => {
            const r = gen.randn([k, d], be);
            const s = mul(r, 0.02);
            r.dispose();
            return s;
          }),
      ],
      [`collapsed to ${groups}`, () => collapsedHead(be, k, d, groups, gen)],
    ];
    for (const [name, make] of heads) {
      const x = make();
      await be.sync();
      const t0 = performance.now();
      const r = await countUniquePrototypes(x, { eps: 0.025, rule: 'both' });
      const seconds = (performance.now() - t0) / 1000;
      x.dispose();
      const e = r.perEps[0];
      const c: UniqueBenchCase = {
        name,
        seconds,
        greedy: e.greedy!.unique,
        components: e.components!.unique,
        candidates: r.tiling.candidates,
        tiles: r.tiling.tiles,
      };
      out.push(c);
      console.log(
        `  ${name}: ${seconds.toFixed(1)} s — unique ${c.greedy} (greedy), ${c.components} (components); ` +
          `${c.candidates} candidates in ${c.tiles} tiles of ≤ ${r.tiling.blockRows}×${r.tiling.blockCols}`,
      );
    }
  } finally {
    be.destroy();
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  uniquePrototypesBench().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
