/** Every reader and loader failure: the message names the file (or dataset) and what is wrong with it. */
export class DataError extends Error {
  constructor(
    readonly source: string,
    problem: string,
  ) {
    super(`${source}: ${problem}`);
    this.name = 'DataError';
  }
}
