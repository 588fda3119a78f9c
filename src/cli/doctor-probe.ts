// The GPU half of `protodino doctor`, run as a child process: Dawn writes its own warnings straight
// to the process's stderr from C++, so the parent reads them there as part of the report instead of
// letting them interleave with it, and a driver that crashes the process cannot take doctor with it.
// Prints one JSON object: { adapters, auto }.
import { autoChoice } from '../backend/index.js';
import { listAdapters } from '../backend/webgpu/adapters.js';

const adapters = await listAdapters();
const auto = await autoChoice();
process.stdout.write(JSON.stringify({ adapters, auto }) + '\n');
