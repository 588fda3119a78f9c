// Runs the uvu suites under dist/test and ends with one plain "N passed, N failed" line,
// preceded by every failure's heading and message: CI keeps only a log's tail.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = [
  join(root, 'node_modules/uvu/bin.js'),
  join(root, process.env.PROTODINO_DIST ?? 'dist', 'test'),
  process.argv[2] ?? '\\.test\\.js$',
];
const env = {
  ...process.env,
  EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless',
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
  // Tests run today's kernel constants (a test that tunes asks for it), so no test measures the host
  // or reads a cache another run wrote; no value changes a result (test/backend/tuning.test.ts).
  PROTODINO_TUNE: process.env.PROTODINO_TUNE ?? 'off',
};
const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (d) => {
  process.stdout.write(d);
  out += d.toString();
});
child.on('close', (code) => {
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
  if (Number.isNaN(total) || Number.isNaN(passed)) {
    console.log(`\n0 passed, 1 failed`);
    console.error('run-tests: uvu did not report a total (crashed?)');
    process.exit(code || 1);
  }
  const failures = failureBlocks(plain);
  if (failures.length > 0)
    console.log(`\nfailures (repeated here so a log's tail shows them):\n${failures.join('\n')}`);
  console.log(`\n${passed} passed, ${total - passed} failed`);
  process.exit(code !== 0 ? code : total === passed ? 0 : 1);
});

// uvu prints a failure inside its file's section; keep the file name and the first lines of each.
function failureBlocks(plain) {
  const lines = plain.split('\n');
  const blocks = [];
  let file = '';
  for (let i = 0; i < lines.length; i++) {
    if (/^\S+\.test\.js$/.test(lines[i].trim()) && !lines[i].startsWith(' ')) file = lines[i].trim();
    if (!/^\s+FAIL\s/.test(lines[i])) continue;
    const block = [`  ${file}:`, lines[i]];
    for (let j = i + 1; j < Math.min(lines.length, i + 12) && lines[j].trim() !== ''; j++) block.push(lines[j]);
    blocks.push(block.join('\n'));
  }
  return blocks;
}
