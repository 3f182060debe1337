/**
 * One place where exchange failures are classified.
 *
 * Every error that leaves an `Exchange` implementation is an {@link ExchangeError} with a stable `type` name and a
 * `retryable` flag. The Temporal layer turns it into an `ApplicationFailure` with that type and
 * `nonRetryable = !retryable` (or lists {@link NON_RETRYABLE_EXCHANGE_ERROR_TYPES} as `nonRetryableErrorTypes` in a
 * retry policy), so the decision "retry or give up" is made here once, not at every call site.
 *
 * Retrying is safe for order placement because orders carry a client order id and `createOrder` looks that id up
 * before sending: a timed-out create that did reach the exchange is found, not placed twice.
 *
 * ccxt's error hierarchy (ccxt 4.5, `node_modules/ccxt/js/src/base/errorHierarchy.js`), with the type each class
 * maps to. A class not listed under its parent by name gets its own rule; the most specific rule wins.
 * ```
 * BaseError                                   ExchangeUnknownError        no
 * ├─ ExchangeError (unclassified rejection)   ExchangeRejected            no
 * │  ├─ AuthenticationError                   ExchangeAuthenticationFailed no
 * │  │  ├─ PermissionDenied                   ExchangeAuthenticationFailed no
 * │  │  │  └─ AccountNotEnabled               ExchangeAuthenticationFailed no
 * │  │  └─ AccountSuspended                   ExchangeAuthenticationFailed no
 * │  ├─ ArgumentsRequired                     ExchangeBadRequest          no
 * │  ├─ BadRequest                            ExchangeBadRequest          no
 * │  │  └─ BadSymbol                          ExchangeBadSymbol           no
 * │  ├─ OperationRejected                     ExchangeRejected            no
 * │  │  ├─ NoChange                           ExchangeNoChange            no
 * │  │  │  └─ MarginModeAlreadySet            ExchangeNoChange            no
 * │  │  ├─ MarketClosed                       ExchangeRejected            no
 * │  │  ├─ ManualInteractionNeeded            ExchangeRejected            no
 * │  │  └─ RestrictedLocation                 ExchangeRejected            no
 * │  ├─ InsufficientFunds                     ExchangeInsufficientFunds   no   (NOT a subclass of InvalidOrder)
 * │  ├─ InvalidAddress, AddressPending        ExchangeBadRequest          no
 * │  ├─ InvalidOrder                          ExchangeInvalidOrder        no
 * │  │  ├─ OrderNotFound                      ExchangeOrderNotFound       no
 * │  │  ├─ DuplicateOrderId                   ExchangeDuplicateOrderId    no
 * │  │  └─ OrderNotCached, OrderImmediatelyFillable, OrderNotFillable, ContractUnavailable
 * │  │                                        ExchangeInvalidOrder        no
 * │  ├─ NotSupported                          ExchangeNotSupported        no
 * │  ├─ InvalidProxySettings                  ExchangeMisconfigured       no
 * │  └─ ExchangeClosedByUser                  ExchangeMisconfigured       no
 * ├─ OperationFailed                          ExchangeOperationFailed     yes
 * │  ├─ NetworkError                          ExchangeNetworkError        yes
 * │  │  ├─ DDoSProtection                     ExchangeRateLimited         yes  (Binance HTTP 418 / 429)
 * │  │  ├─ RateLimitExceeded                  ExchangeRateLimited         yes
 * │  │  ├─ ExchangeNotAvailable               ExchangeUnavailable         yes  (HTTP 5xx)
 * │  │  │  └─ OnMaintenance                   ExchangeUnavailable         yes
 * │  │  ├─ InvalidNonce, ChecksumError        ExchangeInvalidNonce        yes  (clock skew; see adjustForTimeDifference)
 * │  │  └─ RequestTimeout                     ExchangeTimeout             yes
 * │  ├─ BadResponse, NullResponse             ExchangeBadResponse         yes
 * │  └─ CancelPending                         ExchangeOperationFailed     yes
 * └─ UnsubscribeError (websocket only)        ExchangeUnknownError        no
 * ```
 * Not from ccxt: an `ExchangeError` passes through unchanged; a Node socket error (ECONNRESET, ETIMEDOUT, ...) is
 * `ExchangeNetworkError`; anything else (a bug) is `ExchangeUnknownError`, not retried so it cannot loop forever.
 *
 * The classes are matched by name along the error's prototype chain (its own class first, then its ancestors: the
 * nearest listed class wins), not with `instanceof`: this module is loaded by the paper exchange and the activities
 * of a replay worker, which do not load ccxt (test/cli/lazy-loading.test.ts), and a ccxt error can only exist where
 * ccxt is loaded. By name also matches errors of another copy of the library (CJS and ESM builds).
 */
import { NON_RETRYABLE_EXCHANGE_ERROR_TYPES, RETRYABLE_EXCHANGE_ERROR_TYPES } from '../core/error-types';
import { Redactor } from '../core/redact';

/** Transient failures: the same call may succeed later. */
export { RETRYABLE_EXCHANGE_ERROR_TYPES, NON_RETRYABLE_EXCHANGE_ERROR_TYPES };

export type RetryableExchangeErrorType = (typeof RETRYABLE_EXCHANGE_ERROR_TYPES)[number];
export type NonRetryableExchangeErrorType = (typeof NON_RETRYABLE_EXCHANGE_ERROR_TYPES)[number];
export type ExchangeErrorType = RetryableExchangeErrorType | NonRetryableExchangeErrorType;

/** Every type name, retryable first. */
export const EXCHANGE_ERROR_TYPES: readonly ExchangeErrorType[] = [
  ...RETRYABLE_EXCHANGE_ERROR_TYPES,
  ...NON_RETRYABLE_EXCHANGE_ERROR_TYPES,
];

const RETRYABLE = new Set<string>(RETRYABLE_EXCHANGE_ERROR_TYPES);

/** What to do about each type: appended to messages so an operator reading a failure knows the next step. */
const HINTS: Record<ExchangeErrorType, string> = {
  ExchangeNetworkError: 'the exchange could not be reached; retried automatically',
  ExchangeTimeout:
    'the request timed out; retried automatically (an order is looked up by its client order id before it is re-sent)',
  ExchangeRateLimited:
    'the exchange rate limit was hit; retried with backoff (another client using the same key or IP also counts)',
  ExchangeUnavailable: 'the exchange is down or in maintenance; retried automatically',
  ExchangeInvalidNonce:
    'the request timestamp was rejected; retried automatically (if it persists, sync the clock or set ccxt_options.options.adjustForTimeDifference)',
  ExchangeBadResponse: 'the exchange sent an empty or malformed answer; retried automatically',
  ExchangeOperationFailed: 'the exchange could not process the request right now; retried automatically',
  ExchangeInsufficientFunds: 'not enough margin: reduce the order size or leverage, or add funds',
  ExchangeInvalidOrder:
    'the exchange refused the order parameters: check size, step, minimum notional and price filters',
  ExchangeOrderNotFound: 'no such order on the exchange for this pair and client order id',
  ExchangeDuplicateOrderId: 'the client order id is already used by a different order: client order ids must be unique',
  ExchangeAuthenticationFailed:
    'check EXCHANGE_API_KEY / EXCHANGE_API_SECRET, the key permissions (futures trading) and its IP whitelist',
  ExchangeBadSymbol: 'the pair is not listed on this exchange: use a ccxt perpetual symbol like BTC/USDT:USDT',
  ExchangeBadRequest: 'the request was malformed: this is a bug or an unsupported parameter',
  ExchangeNotSupported: 'this exchange (or its sandbox) does not support the operation',
  ExchangeNoChange: 'the setting already had the requested value',
  ExchangeRejected: 'the exchange rejected the request; read its message',
  ExchangeMisconfigured: 'the exchange client is misconfigured (proxy settings, closed client): fix the configuration',
  ExchangeUnknownError: 'an unexpected error: this is a bug, not retried',
};

/**
 * A classified exchange failure. `name` is `'ExchangeError'`; the stable classification is `type`.
 * `ccxtClass` is the ccxt error class it came from (`'InsufficientFunds'`), or null when it did not come from ccxt.
 */
export class ExchangeError extends Error {
  readonly type: ExchangeErrorType;
  readonly retryable: boolean;
  readonly ccxtClass: string | null;

  constructor(type: ExchangeErrorType, message: string, ccxtClass: string | null = null) {
    super(message);
    this.name = 'ExchangeError';
    this.type = type;
    this.retryable = RETRYABLE.has(type);
    this.ccxtClass = ccxtClass;
  }
}

/** True when `type` names a retryable failure. */
export function isRetryableExchangeErrorType(type: string): boolean {
  return RETRYABLE.has(type);
}

/**
 * ccxt class name -> type, grouped by subtree as in the hierarchy above. {@link typeOf} takes the nearest class of an
 * error's prototype chain that is listed, so a subclass's rule wins over its parent's (the tests check each class).
 */
const RULES: ReadonlyArray<readonly [string, ExchangeErrorType]> = [
  // OperationFailed subtree (retryable)
  ['RequestTimeout', 'ExchangeTimeout'],
  ['RateLimitExceeded', 'ExchangeRateLimited'],
  ['DDoSProtection', 'ExchangeRateLimited'],
  ['OnMaintenance', 'ExchangeUnavailable'],
  ['ExchangeNotAvailable', 'ExchangeUnavailable'],
  ['ChecksumError', 'ExchangeInvalidNonce'],
  ['InvalidNonce', 'ExchangeInvalidNonce'],
  ['NetworkError', 'ExchangeNetworkError'],
  ['NullResponse', 'ExchangeBadResponse'],
  ['BadResponse', 'ExchangeBadResponse'],
  ['CancelPending', 'ExchangeOperationFailed'],
  ['OperationFailed', 'ExchangeOperationFailed'],
  // ExchangeError subtree (not retryable)
  ['InsufficientFunds', 'ExchangeInsufficientFunds'],
  ['OrderNotFound', 'ExchangeOrderNotFound'],
  ['DuplicateOrderId', 'ExchangeDuplicateOrderId'],
  ['OrderNotCached', 'ExchangeInvalidOrder'],
  ['OrderImmediatelyFillable', 'ExchangeInvalidOrder'],
  ['OrderNotFillable', 'ExchangeInvalidOrder'],
  ['ContractUnavailable', 'ExchangeInvalidOrder'],
  ['InvalidOrder', 'ExchangeInvalidOrder'],
  ['AccountNotEnabled', 'ExchangeAuthenticationFailed'],
  ['PermissionDenied', 'ExchangeAuthenticationFailed'],
  ['AccountSuspended', 'ExchangeAuthenticationFailed'],
  ['AuthenticationError', 'ExchangeAuthenticationFailed'],
  ['BadSymbol', 'ExchangeBadSymbol'],
  ['BadRequest', 'ExchangeBadRequest'],
  ['ArgumentsRequired', 'ExchangeBadRequest'],
  ['AddressPending', 'ExchangeBadRequest'],
  ['InvalidAddress', 'ExchangeBadRequest'],
  ['NotSupported', 'ExchangeNotSupported'],
  ['MarginModeAlreadySet', 'ExchangeNoChange'],
  ['NoChange', 'ExchangeNoChange'],
  ['MarketClosed', 'ExchangeRejected'],
  ['ManualInteractionNeeded', 'ExchangeRejected'],
  ['RestrictedLocation', 'ExchangeRejected'],
  ['OperationRejected', 'ExchangeRejected'],
  ['InvalidProxySettings', 'ExchangeMisconfigured'],
  ['ExchangeClosedByUser', 'ExchangeMisconfigured'],
  ['ExchangeError', 'ExchangeRejected'],
  ['UnsubscribeError', 'ExchangeUnknownError'],
  ['BaseError', 'ExchangeUnknownError'],
];

const RULES_BY_NAME = new Map<string, ExchangeErrorType>(RULES);

/** Node / undici socket error codes that mean "the request did not get through". */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export interface ClassifyContext {
  /** what was being done, e.g. `createOrder BTC/USDT:USDT`; prefixed to the message */
  operation?: string;
  /** strings that must never appear in the message (API key, secret); replaced by `***` */
  secrets?: readonly string[];
}

/**
 * Removes secrets and request signatures from an error message: the project's redactor (src/core/redact.ts: every
 * secret value of 8 characters or more, URL credentials, bearer tokens), plus request signatures, which are not
 * secrets but make messages long and identify a signed request.
 */
export function redactSecrets(message: string, secrets: readonly string[] = []): string {
  return new Redactor(secrets).redact(message.replace(/(signature=)[0-9A-Za-z%+/=_-]+/g, '$1***'));
}

function typeOf(err: unknown): { type: ExchangeErrorType; ccxtClass: string | null } {
  if (err instanceof Error) {
    for (let proto: unknown = Object.getPrototypeOf(err); proto !== null && proto !== Error.prototype;) {
      const type = RULES_BY_NAME.get((proto as { constructor?: { name?: string } }).constructor?.name ?? '');
      if (type) return { type, ccxtClass: err.constructor.name };
      proto = Object.getPrototypeOf(proto);
    }
    const byName = RULES_BY_NAME.get(err.name);
    if (byName) return { type: byName, ccxtClass: err.name };
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code))
      return { type: 'ExchangeNetworkError', ccxtClass: null };
  }
  return { type: 'ExchangeUnknownError', ccxtClass: null };
}

/**
 * Classify any thrown value into an {@link ExchangeError}.
 *
 * - An `ExchangeError` is returned as it is (already classified; its message is not touched again).
 * - A ccxt error maps by class as documented at the top of this file (most specific class wins).
 * - A Node socket error (`code` ECONNRESET, ETIMEDOUT, ...) is a retryable `ExchangeNetworkError`.
 * - Anything else is a non-retryable `ExchangeUnknownError`.
 *
 * The message reads `<operation>: <original message> (<ccxt class>; <what to do>)` with secrets and request
 * signatures redacted.
 */
export function classifyError(err: unknown, context: ClassifyContext = {}): ExchangeError {
  if (err instanceof ExchangeError) return err;
  const { type, ccxtClass } = typeOf(err);
  const original = err instanceof Error ? err.message : String(err);
  const prefix = context.operation ? `${context.operation}: ` : '';
  const source = ccxtClass ? `${ccxtClass}; ` : '';
  const message = redactSecrets(`${prefix}${original} (${source}${HINTS[type]})`, context.secrets);
  return new ExchangeError(type, message, ccxtClass);
}
