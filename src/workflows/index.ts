/** The workflow bundle's entry point: every workflow the worker registers. */
export { pairTrader } from './pair-trader';
export { tradeReview } from './trade-review';
export { account } from './account';
