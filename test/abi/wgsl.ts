// Reads the uniform structs out of WGSL source: every `struct` some `var<uniform>` binds, with its
// fields in order, and compares one with the TypeScript side's declaration of it (params.ts).
import { structLayout, type ParamLayout } from '../../src/backend/webgpu/params.js';

export interface WgslField {
  name: string;
  type: string;
}

const stripComments = (src: string) => src.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, '');

/** Splits at commas outside <…> (array<vec4<u32>, 2> holds one). */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0,
    cur = '';
  for (const ch of s) {
    if (ch === '<') depth++;
    if (ch === '>') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

export function wgslStructs(src: string): Map<string, WgslField[]> {
  const out = new Map<string, WgslField[]>();
  for (const m of stripComments(src).matchAll(/struct\s+(\w+)\s*\{([^}]*)\}/g)) {
    out.set(
      m[1],
      splitTopLevel(m[2]).map((f) => {
        // @align/@size would move fields away from the offsets params.ts computes.
        const fm = /^(\w+)\s*:\s*([\w<>,\s]+)$/.exec(f);
        if (!fm) throw new Error(`struct ${m[1]}: cannot read field "${f}"`);
        return { name: fm[1], type: fm[2].replace(/\s+/g, ' ').trim() };
      }),
    );
  }
  return out;
}

/** Names of the structs bound as var<uniform> in this source. */
export function uniformStructNames(src: string): Set<string> {
  return new Set([...stripComments(src).matchAll(/var<uniform>\s+\w+\s*:\s*(\w+)\s*;/g)].map((m) => m[1]));
}

const norm = (t: string) => t.replace(/\s+/g, '');

/** Differences between a WGSL struct and its TypeScript declaration, one line each. */
export function compareLayout(wgsl: WgslField[], ts: ParamLayout): string[] {
  const where = `${ts.file} ${ts.struct}`;
  const problems: string[] = [];
  const w = structLayout(wgsl.map((f) => f.type));
  const n = Math.max(wgsl.length, ts.fields.length);
  for (let i = 0; i < n; i++) {
    const a = wgsl[i],
      b = ts.fields[i];
    if (!a) problems.push(`${where}: field ${i} ${b[0]}: ${b[1]} is not in the WGSL struct`);
    else if (!b) problems.push(`${where}: field ${i} ${a.name}: ${a.type} is not declared on the TypeScript side`);
    else if (a.name !== b[0] || norm(a.type) !== norm(b[1]) || w.offsets[i] !== ts.offsets[i]) {
      problems.push(
        `${where}: field ${i} is ${a.name}: ${a.type} at byte ${w.offsets[i]} in WGSL, ${b[0]}: ${b[1]} at byte ${ts.offsets[i]} on the TypeScript side`,
      );
    }
  }
  if (w.size !== ts.size) problems.push(`${where}: ${w.size} bytes in WGSL, ${ts.size} on the TypeScript side`);
  return problems;
}
