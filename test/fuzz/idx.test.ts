// Seeded fuzz of the idx parser (see harness.ts; PROTODINO_FUZZ_CASES sets the case count).
import { fuzzSuite } from './harness.js';

fuzzSuite('idx');
