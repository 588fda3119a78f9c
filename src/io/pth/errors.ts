// Every problem found in a .pth file, or in a value handed to the writer, is a PthError: callers
// (the CLI, tests, fuzzers) can tell "this checkpoint is bad" from a bug in our code.
export class PthError extends Error {
  /** `file`: the path read, when the input was one (readPth adds it, so messages name the file). */
  constructor(
    readonly detail: string,
    readonly file?: string,
  ) {
    super(`pth: ${file === undefined ? '' : `${file}: `}${detail}`);
    this.name = 'PthError';
  }
}
