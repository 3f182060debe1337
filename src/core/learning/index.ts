/**
 * The learning loop's pure functions: trade review, self-reflection, evaluation, reward, pattern statistics and
 * decision-quality warnings. The trade-review workflow and the context builder use these through activities.
 */
export * from './format';
export * from './review';
export * from './reflection';
export * from './evaluation';
export * from './reward';
export * from './patterns';
export * from './warnings';
