import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { errors as ccxtErrors } from 'ccxt';
import {
  classifyError,
  EXCHANGE_ERROR_TYPES,
  ExchangeError,
  NON_RETRYABLE_EXCHANGE_ERROR_TYPES,
  RETRYABLE_EXCHANGE_ERROR_TYPES,
  redactSecrets,
  type ExchangeErrorType,
} from '../../src/exchange/errors';

/**
 * The documented mapping (src/exchange/errors.ts header), written out independently of the implementation: every
 * class ccxt exports in `errors`, with the type it must classify to and whether that type is retried.
 */
const EXPECTED: Record<string, [ExchangeErrorType, boolean]> = {
  BaseError: ['ExchangeUnknownError', false],
  ExchangeError: ['ExchangeRejected', false],
  AuthenticationError: ['ExchangeAuthenticationFailed', false],
  PermissionDenied: ['ExchangeAuthenticationFailed', false],
  AccountNotEnabled: ['ExchangeAuthenticationFailed', false],
  AccountSuspended: ['ExchangeAuthenticationFailed', false],
  ArgumentsRequired: ['ExchangeBadRequest', false],
  BadRequest: ['ExchangeBadRequest', false],
  BadSymbol: ['ExchangeBadSymbol', false],
  OperationRejected: ['ExchangeRejected', false],
  NoChange: ['ExchangeNoChange', false],
  MarginModeAlreadySet: ['ExchangeNoChange', false],
  MarketClosed: ['ExchangeRejected', false],
  ManualInteractionNeeded: ['ExchangeRejected', false],
  RestrictedLocation: ['ExchangeRejected', false],
  InsufficientFunds: ['ExchangeInsufficientFunds', false],
  InvalidAddress: ['ExchangeBadRequest', false],
  AddressPending: ['ExchangeBadRequest', false],
  InvalidOrder: ['ExchangeInvalidOrder', false],
  OrderNotFound: ['ExchangeOrderNotFound', false],
  OrderNotCached: ['ExchangeInvalidOrder', false],
  OrderImmediatelyFillable: ['ExchangeInvalidOrder', false],
  OrderNotFillable: ['ExchangeInvalidOrder', false],
  DuplicateOrderId: ['ExchangeDuplicateOrderId', false],
  ContractUnavailable: ['ExchangeInvalidOrder', false],
  NotSupported: ['ExchangeNotSupported', false],
  InvalidProxySettings: ['ExchangeMisconfigured', false],
  ExchangeClosedByUser: ['ExchangeMisconfigured', false],
  OperationFailed: ['ExchangeOperationFailed', true],
  NetworkError: ['ExchangeNetworkError', true],
  DDoSProtection: ['ExchangeRateLimited', true],
  RateLimitExceeded: ['ExchangeRateLimited', true],
  ExchangeNotAvailable: ['ExchangeUnavailable', true],
  OnMaintenance: ['ExchangeUnavailable', true],
  InvalidNonce: ['ExchangeInvalidNonce', true],
  ChecksumError: ['ExchangeInvalidNonce', true],
  RequestTimeout: ['ExchangeTimeout', true],
  BadResponse: ['ExchangeBadResponse', true],
  NullResponse: ['ExchangeBadResponse', true],
  CancelPending: ['ExchangeOperationFailed', true],
  UnsubscribeError: ['ExchangeUnknownError', false],
};

const ccxtClasses = ccxtErrors as unknown as Record<string, new (message: string) => Error>;

describe('classifyError', () => {
  test('every ccxt error class maps to its documented type and retryability', () => {
    for (const [name, [type, retryable]] of Object.entries(EXPECTED)) {
      const Cls = ccxtClasses[name];
      assert.ok(Cls, `ccxt no longer exports ${name}`);
      const classified = classifyError(new Cls(`binanceusdm {"msg":"${name} happened"}`));
      assert.equal(classified.type, type, `${name} -> ${classified.type}, expected ${type}`);
      assert.equal(classified.retryable, retryable, `${name} retryable`);
      assert.equal(classified.ccxtClass, name);
    }
  });

  test('the mapping covers every error class ccxt exports, so a new ccxt class forces a decision', () => {
    const exported = Object.entries(ccxtClasses)
      .filter(([, value]) => typeof value === 'function' && value.prototype instanceof Error)
      .map(([name]) => name)
      .sort();
    assert.deepEqual(exported, Object.keys(EXPECTED).sort());
  });

  test('subclass order: a class is not swallowed by its parent rule (InsufficientFunds is not an InvalidOrder)', () => {
    // InsufficientFunds extends ExchangeError directly in ccxt 4.5; OrderNotFound extends InvalidOrder
    assert.equal(new ccxtErrors.InsufficientFunds('x') instanceof ccxtErrors.InvalidOrder, false);
    assert.equal(new ccxtErrors.OrderNotFound('x') instanceof ccxtErrors.InvalidOrder, true);
    assert.equal(classifyError(new ccxtErrors.OrderNotFound('x')).type, 'ExchangeOrderNotFound');
    assert.equal(classifyError(new ccxtErrors.RequestTimeout('x')).type, 'ExchangeTimeout');
    assert.equal(new ccxtErrors.RequestTimeout('x') instanceof ccxtErrors.NetworkError, true);
  });

  test('the exported type lists partition the types and agree with each error retryable flag', () => {
    const retryable = new Set<string>(RETRYABLE_EXCHANGE_ERROR_TYPES);
    const nonRetryable = new Set<string>(NON_RETRYABLE_EXCHANGE_ERROR_TYPES);
    for (const t of retryable) assert.equal(nonRetryable.has(t), false, `${t} is in both lists`);
    assert.equal(EXCHANGE_ERROR_TYPES.length, retryable.size + nonRetryable.size);
    for (const type of EXCHANGE_ERROR_TYPES) {
      assert.equal(new ExchangeError(type, 'm').retryable, retryable.has(type), type);
    }
    // every type the mapping produces is listed
    for (const [type] of Object.values(EXPECTED)) assert.ok(EXCHANGE_ERROR_TYPES.includes(type), type);
  });

  test('errors from another copy of ccxt (not instanceof these classes) are classified by name', () => {
    const foreign = new Error('binanceusdm {"code":-2019,"msg":"Margin is insufficient."}');
    foreign.name = 'InsufficientFunds';
    const classified = classifyError(foreign);
    assert.equal(classified.type, 'ExchangeInsufficientFunds');
    assert.equal(classified.retryable, false);
  });

  test('non-ccxt errors: socket errors retry, anything else is an unknown, non-retryable bug', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    assert.equal(classifyError(reset).type, 'ExchangeNetworkError');
    assert.equal(classifyError(reset).retryable, true);
    const bug = classifyError(new TypeError("Cannot read properties of undefined (reading 'id')"));
    assert.equal(bug.type, 'ExchangeUnknownError');
    assert.equal(bug.retryable, false);
    assert.equal(classifyError('a string').type, 'ExchangeUnknownError');
  });

  test('an ExchangeError passes through unchanged', () => {
    const original = new ExchangeError('ExchangeInvalidOrder', 'quantity below minimum');
    assert.equal(classifyError(original, { operation: 'createOrder' }), original);
  });

  test('the message names the operation, the ccxt class and what to do', () => {
    const e = classifyError(
      new ccxtErrors.InsufficientFunds('binanceusdm {"code":-2019,"msg":"Margin is insufficient."}'),
      {
        operation: 'createOrder BTC/USDT:USDT',
      },
    );
    assert.match(e.message, /^createOrder BTC\/USDT:USDT: binanceusdm \{"code":-2019/);
    assert.match(e.message, /InsufficientFunds/);
    assert.match(e.message, /reduce the order size or leverage, or add funds/);
  });

  test('secrets and request signatures never reach the message', () => {
    const key = 'AbCdEf0123456789AbCdEf0123456789';
    const secret = 'sEcReT9876543210sEcReT9876543210';
    const raw = new ccxtErrors.AuthenticationError(
      `binanceusdm GET https://fapi.binance.com/fapi/v3/account?timestamp=1&signature=9f86d081884c7d65 key=${key} ${secret}`,
    );
    const e = classifyError(raw, { secrets: [key, secret] });
    assert.equal(e.message.includes(key), false);
    assert.equal(e.message.includes(secret), false);
    assert.equal(e.message.includes('9f86d081884c7d65'), false);
    assert.match(e.message, /signature=\*\*\*/);
    // short strings are not treated as secrets (they would blank unrelated words)
    assert.equal(redactSecrets('order abc placed', ['abc']), 'order abc placed');
  });
});
