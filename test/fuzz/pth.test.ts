// Seeded fuzz of the pth parser (see harness.ts; PROTODINO_FUZZ_CASES sets the case count).
import { fuzzSuite } from './harness.js';

fuzzSuite('pth');
