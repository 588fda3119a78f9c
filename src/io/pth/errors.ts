// Every problem found in a .pth file, or in a value handed to the writer, is a PthError: callers
// (the CLI, tests, fuzzers) can tell "this checkpoint is bad" from a bug in our code.
export class PthError extends Error {
  constructor(message: string) {
    super(`pth: ${message}`);
    this.name = 'PthError';
  }
}
