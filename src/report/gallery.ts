// Gallery: which images each shown prototype stands for. Shown are the largest collapsed groups
// (every member, so a reader sees twins sharing images) and a sample of the busiest lone prototypes.
import { PNG } from 'pngjs';
import type { Dataset } from '../data/index.js';
import type { UniqueGroups } from '../eval/index.js';
import type { Assignments } from './assign.js';

export interface GalleryImage {
  index: number;
  label: string;
  /** data:image/png;base64,... */
  src: string;
}

export interface GalleryPrototype {
  prototype: number;
  assigned: number;
  images: GalleryImage[];
}

export interface GalleryGroup {
  /** 'group': a collapsed group (size > 1 at ε); 'single': a prototype with no twin. */
  kind: 'group' | 'single';
  representative: number;
  size: number;
  /** Images of all members together. */
  assigned: number;
  members: GalleryPrototype[];
  /** Members not shown (groups larger than maxMembers). */
  hiddenMembers: number;
}

export interface GalleryOptions {
  maxGroups?: number;
  maxMembers?: number;
  singles?: number;
  perPrototype?: number;
}

/** One image as a PNG data URI at its native size (CSS scales it up, pixelated). */
export function thumbnail(ds: Dataset, i: number): string {
  const { channels: C, height: H, width: W } = ds;
  const png = new PNG({ width: W, height: H });
  const base = i * C * H * W;
  for (let p = 0; p < H * W; p++) {
    for (let c = 0; c < 3; c++) png.data[p * 4 + c] = ds.images[base + (C === 1 ? 0 : c) * H * W + p];
    png.data[p * 4 + 3] = 255;
  }
  return `data:image/png;base64,${PNG.sync.write(png).toString('base64')}`;
}

/**
 * Builds the gallery from greedy groups at one ε. Members of a group have their own assigned
 * images; images are ordered by teacher score, best first.
 */
export function buildGallery(
  groups: UniqueGroups,
  memberOf: Int32Array,
  a: Assignments,
  opts: GalleryOptions = {},
): GalleryGroup[] {
  const maxGroups = opts.maxGroups ?? 4,
    maxMembers = opts.maxMembers ?? 4,
    singles = opts.singles ?? 8,
    per = opts.perPrototype ?? 8;
  const byProto = new Map<number, number[]>();
  a.argmax.forEach((k, i) => {
    const l = byProto.get(k);
    if (l) l.push(i);
    else byProto.set(k, [i]);
  });
  for (const l of byProto.values()) l.sort((x, y) => a.score[y] - a.score[x] || x - y);
  const cache = new Map<number, string>();
  const img = (i: number): GalleryImage => {
    let src = cache.get(i);
    if (!src) cache.set(i, (src = thumbnail(a.dataset, i)));
    return { index: i, label: a.dataset.classes[a.dataset.labels[i]] ?? String(a.dataset.labels[i]), src };
  };
  const proto = (k: number): GalleryPrototype => {
    const l = byProto.get(k) ?? [];
    return { prototype: k, assigned: l.length, images: l.slice(0, per).map(img) };
  };
  // Members of each group, by representative.
  const members = new Map<number, number[]>();
  memberOf.forEach((rep, k) => {
    const l = members.get(rep);
    if (l) l.push(k);
    else members.set(rep, [k]);
  });
  const out: GalleryGroup[] = [];
  for (let g = 0; g < groups.unique && out.length < maxGroups; g++) {
    if (groups.groupSizes[g] < 2) break; // sizes are descending
    const rep = groups.representatives[g];
    const all = (members.get(rep) ?? [rep]).slice().sort((x, y) => (a.counts[y] ?? 0) - (a.counts[x] ?? 0) || x - y);
    out.push({
      kind: 'group',
      representative: rep,
      size: groups.groupSizes[g],
      assigned: all.reduce((s, k) => s + (a.counts[k] ?? 0), 0),
      members: all.slice(0, maxMembers).map(proto),
      hiddenMembers: Math.max(0, all.length - maxMembers),
    });
  }
  const lone: number[] = [];
  for (let g = 0; g < groups.unique; g++) if (groups.groupSizes[g] === 1) lone.push(groups.representatives[g]);
  lone.sort((x, y) => (a.counts[y] ?? 0) - (a.counts[x] ?? 0) || x - y);
  for (const k of lone.slice(0, singles)) {
    out.push({
      kind: 'single',
      representative: k,
      size: 1,
      assigned: a.counts[k] ?? 0,
      members: [proto(k)],
      hiddenMembers: 0,
    });
  }
  return out;
}
