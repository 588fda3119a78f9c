// The paper's comparison at this machine's scale (protodino experiments): the grid, one run, the
// aggregation over seeds, the whole-grid driver and its summary plots.
export * from './grid.js';
export * from './run.js';
export * from './aggregate.js';
export * from './results.js';
export * from './driver.js';
export { writeExperimentPlots } from './plots.js';
export * from './compare.js';
export * from './sweep.js';
