// Child process of test/webgpu-faults.test.ts: creates a WebGPU backend, destroys it and has the
// garbage collector run at once (as `protodino info` does, with no op in between: a finished
// mapAsync changes Dawn's event state and hides the fault). Dawn resolves device.lost from a ProcessEvents call
// it schedules on the instance; when destroy() dropped the instance, GC freed it under that call
// and the process crashed or hung on its way out (about 1 `protodino info` in 15, every time with
// this immediate GC). Prints one JSON line; the parent checks the exit status.
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
