// Seeded fuzz of the checkpoint parser (see harness.ts; PROTODINO_FUZZ_CASES sets the case count).
import { fuzzSuite } from './harness.js';

fuzzSuite('checkpoint');
