// Uniform blocks, declared once on this side per WGSL `struct` a kernel binds as var<uniform>: its
// fields in WGSL order with their WGSL types. The same declaration packs the bytes (fields by name,
// at the offsets WGSL's layout rules give) and is what test/abi/wgsl-params.test.ts compares with
// the struct in wgsl/, so a field added, dropped, moved or retyped on one side fails that test
// instead of shifting every later field. Fields named _x are padding and are written as 0.

export type Scalar = 'u32' | 'i32' | 'f32';
export type FieldType = Scalar | `vec${2 | 3 | 4}<${Scalar}>` | `array<vec4<${Scalar}>, ${number}>`;
export type Field = readonly [name: string, type: FieldType];

export interface ParamLayout<F extends readonly Field[] = readonly Field[]> {
  /** The WGSL file under wgsl/ and the struct's name there. */
  readonly file: string;
  readonly struct: string;
  readonly fields: F;
  /** Byte offset of each field. */
  readonly offsets: readonly number[];
  /** The struct's size by WGSL's rules. */
  readonly size: number;
}

type Value<T> = T extends Scalar ? number : readonly number[];
/** One value per field that is not padding, by name; arrays and vectors take their components flat. */
export type ParamValues<F extends readonly Field[]> = {
  [E in F[number] as E[0] extends `_${string}` ? never : E[0]]: Value<E[1]>;
};

interface TypeInfo {
  scalar: Scalar;
  components: number;
  size: number;
  align: number;
}

/**
 * Size and alignment of a field type in the uniform address space (WGSL spec, "Alignment and
 * Size"): scalars 4/4, vec2 8/8, vec3 12/16, vec4 16/16; an array's alignment is at least 16 there
 * and its stride a multiple of 16, so only arrays of vec4 (no gaps between components) are taken.
 */
export function typeInfo(type: string): TypeInfo {
  const t = type.replace(/\s+/g, '');
  let m = /^(u32|i32|f32)$/.exec(t);
  if (m) return { scalar: m[1] as Scalar, components: 1, size: 4, align: 4 };
  m = /^vec([234])<(u32|i32|f32)>$/.exec(t);
  if (m) {
    const n = Number(m[1]);
    return { scalar: m[2] as Scalar, components: n, size: 4 * n, align: n === 2 ? 8 : 16 };
  }
  m = /^array<vec4<(u32|i32|f32)>,(\d+)u?>$/.exec(t);
  if (m) return { scalar: m[1] as Scalar, components: 4 * Number(m[2]), size: 16 * Number(m[2]), align: 16 };
  throw new Error(`uniform field type ${type} is not supported (scalars, vec2-4 and array<vec4<T>, N>)`);
}

const roundUp = (align: number, n: number) => Math.ceil(n / align) * align;

/** Offsets of fields of these types in order, and the struct's size. */
export function structLayout(types: readonly string[]): { offsets: number[]; size: number } {
  const offsets: number[] = [];
  let end = 0,
    align = 4;
  for (const type of types) {
    const t = typeInfo(type);
    const offset = roundUp(t.align, end);
    offsets.push(offset);
    end = offset + t.size;
    align = Math.max(align, t.align);
  }
  return { offsets, size: roundUp(align, end) };
}

/** Every layout declared so far (each family file declares its own when it is loaded). */
export const PARAM_LAYOUTS: ParamLayout[] = [];

export function paramLayout<const F extends readonly Field[]>(file: string, struct: string, fields: F): ParamLayout<F> {
  if (PARAM_LAYOUTS.some((l) => l.file === file && l.struct === struct))
    throw new Error(`${file} ${struct} is declared twice`);
  const layout = { file, struct, fields, ...structLayout(fields.map((f) => f[1])) };
  PARAM_LAYOUTS.push(layout);
  return layout;
}

// packParams runs once per dispatch: parsing the field types there (regular expressions) took
// about 6 us of host time a dispatch, ~1200 dispatches in a vit_cpu DINO step (node --cpu-prof).
const typeInfos = new Map<string, TypeInfo>();
function cachedTypeInfo(type: string): TypeInfo {
  let t = typeInfos.get(type);
  if (!t) typeInfos.set(type, (t = typeInfo(type)));
  return t;
}

/** The uniform block's bytes, padded to a multiple of 16. */
export function packParams<F extends readonly Field[]>(layout: ParamLayout<F>, values: ParamValues<F>): Uint8Array {
  const buf = new ArrayBuffer(roundUp(16, Math.max(16, layout.size)));
  const u = new Uint32Array(buf),
    i = new Int32Array(buf),
    f = new Float32Array(buf);
  const byName = values as Record<string, number | readonly number[]>;
  layout.fields.forEach(([name, type], k) => {
    if (name.startsWith('_')) return;
    const t = cachedTypeInfo(type);
    const v = byName[name];
    const list = typeof v === 'number' ? [v] : v;
    if (list.length > t.components) {
      throw new Error(`${layout.struct}.${name}: ${list.length} values for a ${type} of ${t.components}`);
    }
    const w = layout.offsets[k] / 4;
    // Shorter lists leave the rest 0 (shapes and strides of fewer than the kernel's maximum rank).
    for (let j = 0; j < list.length; j++) {
      if (t.scalar === 'f32') f[w + j] = list[j];
      else if (t.scalar === 'u32') u[w + j] = list[j] >>> 0;
      else i[w + j] = list[j] | 0;
    }
  });
  return new Uint8Array(buf);
}
