// What one parser's fuzz target provides to the harness (harness.ts runs it in a worker).
import type { Fuzz } from './mutate.js';

export interface FuzzCase {
  /** Whatever run() needs (bytes, options, a source name). */
  input: unknown;
  /** Size of the bytes handed to the parser, for the memory bound. */
  bytes: number;
}

export interface FuzzTarget {
  name: string;
  /** The parser's own error class, by name, for the summary line. */
  errorName: string;
  /** Whether a thrown value is the parser's own error (anything else is a crash). */
  isOwnError(e: unknown): boolean;
  /** Builds a case from the case's random source; notes what it did in f.log. */
  make(f: Fuzz): FuzzCase;
  /** Calls the parser. */
  run(c: FuzzCase): unknown;
  /** Throws (a plain Error naming what is wrong) when an accepted result is not self-consistent. */
  check(result: unknown, c: FuzzCase): void;
  /** Text a rejection's message must contain (the file or source name), if any. */
  mustName?(c: FuzzCase): string | undefined;
  /**
   * Most bytes of ArrayBuffer memory a case may leave allocated: what the input can really back,
   * or the cap the case passes to the parser — never what the file merely declares.
   */
  memLimit(c: FuzzCase): number;
  /** At least this many distinct (normalised) error messages: evidence the fuzz reaches past the first check. */
  minErrorKinds: number;
}

export const MiB = 2 ** 20;
