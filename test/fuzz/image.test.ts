// Seeded fuzz of the image parser (see harness.ts; PROTODINO_FUZZ_CASES sets the case count).
import { fuzzSuite } from './harness.js';

fuzzSuite('image');
