// Child process of test/webgpu-faults.test.ts: creates a WebGPU backend, destroys it and has the
// garbage collector run at once, the case WebGPURuntime.destroy() keeps Dawn's instance alive for
// (before, the process crashed or hung on its way out every time). No op runs in between, as in
// `protodino info`: a finished mapAsync changes Dawn's event state and hides the fault. Prints one
// JSON line; the parent checks the exit status.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebGPUBackend } from '../../src/backend/webgpu/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const be = await WebGPUBackend.create({ adapter: 'any' });
const description = be.description;
be.destroy();
gc();
console.log(JSON.stringify({ description }));
