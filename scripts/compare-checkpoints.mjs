#!/usr/bin/env node
// Compares the tensors of two safetensors files byte for byte: the check a restructuring must pass
// (a fixed-seed run gives bit-identical checkpoints before and after). Reads the format directly,
// so it does not depend on the code under change. Metadata is compared and reported, not required
// to match (a restructure may add keys).
//   node scripts/compare-checkpoints.mjs A.safetensors B.safetensors   (or two run directories:
//   every *.safetensors present in both is compared)
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function parse(path) {
  const buf = readFileSync(path);
  if (buf.length < 8) throw new Error(`${path}: shorter than a safetensors header`);
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) throw new Error(`${path}: header length ${n} runs past the end of the file`);
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const meta = header.__metadata__ ?? {};
  delete header.__metadata__;
  const body = buf.subarray(8 + n);
  const tensors = new Map();
  for (const [name, t] of Object.entries(header)) {
    tensors.set(name, { dtype: t.dtype, shape: t.shape, bytes: body.subarray(t.data_offsets[0], t.data_offsets[1]) });
  }
  return { meta, tensors };
}

function compare(a, b) {
  const A = parse(a),
    B = parse(b);
  const problems = [];
  for (const [name, t] of A.tensors) {
    const u = B.tensors.get(name);
    if (!u) {
      problems.push(`${name}: only in ${a}`);
      continue;
    }
    if (t.dtype !== u.dtype || JSON.stringify(t.shape) !== JSON.stringify(u.shape)) {
      problems.push(`${name}: ${t.dtype}${JSON.stringify(t.shape)} against ${u.dtype}${JSON.stringify(u.shape)}`);
    } else if (!t.bytes.equals(u.bytes)) {
      let first = 0;
      while (t.bytes[first] === u.bytes[first]) first++;
      problems.push(`${name}: bytes differ from offset ${first}`);
    }
  }
  for (const name of B.tensors.keys()) if (!A.tensors.has(name)) problems.push(`${name}: only in ${b}`);
  const metaDiff = [...new Set([...Object.keys(A.meta), ...Object.keys(B.meta)])].filter(
    (k) => A.meta[k] !== B.meta[k],
  );
  return { tensors: A.tensors.size, problems, metaDiff };
}

const [x, y] = process.argv.slice(2);
if (!x || !y) {
  console.error('usage: node scripts/compare-checkpoints.mjs A B   (two .safetensors files or two run directories)');
  process.exit(2);
}
const pairs = statSync(x).isDirectory()
  ? readdirSync(x)
      .filter((f) => f.endsWith('.safetensors') && existsSync(join(y, f)))
      .sort()
      .map((f) => [join(x, f), join(y, f)])
  : [[x, y]];
if (pairs.length === 0) {
  console.error(`no .safetensors file in both ${x} and ${y}`);
  process.exit(2);
}
let bad = 0;
for (const [a, b] of pairs) {
  const r = compare(a, b);
  const meta = r.metaDiff.length ? `; metadata differs in ${r.metaDiff.join(', ')}` : '';
  if (r.problems.length) {
    bad++;
    console.log(`DIFFER ${a}: ${r.problems.length} of ${r.tensors} tensors${meta}`);
    for (const p of r.problems.slice(0, 20)) console.log(`  ${p}`);
  } else {
    console.log(`same   ${a}: all ${r.tensors} tensors bit-identical${meta}`);
  }
}
process.exit(bad ? 1 : 0);
