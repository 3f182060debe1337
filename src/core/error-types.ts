/**
 * Stable failure type names, classified once. Pure (no ccxt/openai imports) so that workflow retry policies can list
 * the non-retryable ones as `nonRetryableErrorTypes`. The classifiers live with their I/O: src/exchange/errors.ts
 * (ccxt errors) and src/llm/errors.ts (LLM transport errors).
 */

/** Transient exchange failures: the same call may succeed later. */
export const RETRYABLE_EXCHANGE_ERROR_TYPES = [
  'ExchangeNetworkError',
  'ExchangeTimeout',
  'ExchangeRateLimited',
  'ExchangeUnavailable',
  'ExchangeInvalidNonce',
  'ExchangeBadResponse',
  'ExchangeOperationFailed',
] as const;

/** Permanent exchange failures: repeating the same call gives the same answer. */
export const NON_RETRYABLE_EXCHANGE_ERROR_TYPES = [
  'ExchangeInsufficientFunds',
  'ExchangeInvalidOrder',
  'ExchangeOrderNotFound',
  'ExchangeDuplicateOrderId',
  'ExchangeAuthenticationFailed',
  'ExchangeBadSymbol',
  'ExchangeBadRequest',
  'ExchangeNotSupported',
  'ExchangeNoChange',
  'ExchangeRejected',
  'ExchangeMisconfigured',
  'ExchangeUnknownError',
] as const;

/** Every LLM transport failure type (an invalid answer is not an error: it is repaired or falls back). */
export const LLM_ERROR_TYPES = [
  'LlmTimeout',
  'LlmRateLimited',
  'LlmUnavailable',
  'LlmAuthentication',
  'LlmBadRequest',
] as const;

/** LLM failures that retrying cannot fix (a bad key, a request the server refuses). */
export const NON_RETRYABLE_LLM_ERROR_TYPES = ['LlmAuthentication', 'LlmBadRequest'] as const;

/** Market data that does not exist (e.g. a replay past the end of its recorded data): retrying cannot help. */
export const MARKET_DATA_UNAVAILABLE = 'MarketDataUnavailable';
/**
 * A gap in recorded market data: the latest candle at a decision time is missing although later ones are recorded.
 * The cycle makes no decision (never on a stale snapshot) and the pair goes on at the next candle close.
 */
export const MARKET_DATA_GAP = 'MarketDataGap';
/** A configuration problem detected by an activity (missing key, unknown pair): retrying cannot help. */
export const CONFIGURATION_ERROR = 'ConfigurationError';
