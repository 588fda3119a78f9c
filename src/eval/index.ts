// Evaluation and prototype-collapse diagnostics, written once on the tensor ops (any backend).
export { countUniquePrototypes, cosineThreshold, EPS_METRICS } from './unique.js';
export type {
  UniqueRule,
  EpsMetric,
  UniquePrototypesOptions,
  UniquePrototypesResult,
  UniqueAtEps,
  UniqueGroups,
} from './unique.js';
export { prototypeUsage } from './usage.js';
export type { PrototypeUsage, PrototypeUsageOptions } from './usage.js';
export { knnClassify, rankVotes } from './knn.js';
export type { KnnOptions, KnnResult } from './knn.js';
export { linearProbe, epochLr } from './linear.js';
export type { LinearProbeOptions, LinearProbeResult } from './linear.js';
export { sampleEpisodes, fewShotEval } from './fewshot.js';
export type { Episode, EpisodeOptions, FewShotOptions, FewShotResult } from './fewshot.js';
export { perClassAccuracy, longTailGroups, longTailAccuracy } from './classes.js';
export type { PerClassAccuracy, LongTailSplit, GroupAccuracy, LongTailAccuracy } from './classes.js';
export type { HostMatrix } from './common.js';
export { prototypeSpread, principalPlane } from './spread.js';
export type { PrototypeSpread, PrototypeSpreadOptions } from './spread.js';
