/**
 * The ccxt adapter driven through the REAL ccxt `binanceusdm` class, offline: ccxt builds, signs and parses every
 * request as it would live; its HTTP goes to a local fake of the Binance USDⓈ-M API (fake-binance-usdm.ts) whose
 * markets come from the committed exchangeInfo fixture (test/fixtures/binanceusdm-exchange-info.json).
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { CcxtExchange, rewriteApiUrls, type CcxtExchangeOptions } from '../../src/exchange/ccxt-exchange';
import { ExchangeError, type ExchangeErrorType } from '../../src/exchange/errors';
import type { OrderRequest } from '../../src/exchange/port';
import {
  API_KEY,
  API_SECRET,
  FakeBinanceUsdm,
  fakeCandle,
  fakeFundingRate,
  FUNDING_INTERVAL_MS,
  TAKER_FEE,
} from './fake-binance-usdm';

const BTC = 'BTC/USDT:USDT';
const ETH = 'ETH/USDT:USDT';
const SOL = 'SOL/USDT:USDT';
const HOUR = 3_600_000;
const MIN30 = 1_800_000;

let fake: FakeBinanceUsdm;
let dir: string;

function adapter(extra: Partial<CcxtExchangeOptions> = {}): CcxtExchange {
  return new CcxtExchange({
    exchangeId: 'binanceusdm',
    apiKey: API_KEY,
    secret: API_SECRET,
    marketsCacheFile: join(dir, 'markets', 'binanceusdm.json'),
    fetchImplementation: fake.fetchImplementation,
    // a faster limiter than Binance's default 50 ms per weight unit keeps the suite quick; it is still on
    ccxtOptions: { rateLimit: 2, timeout: 3_000 },
    ...extra,
  });
}

/** `error` is an ExchangeError of `type` with the expected retryability; for assert.rejects */
function exchangeError(type: ExchangeErrorType, retryable: boolean, message?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ExchangeError, `expected an ExchangeError, got ${String(err)}`);
    assert.equal(err.type, type, err.message);
    assert.equal(err.retryable, retryable);
    if (message) assert.match(err.message, message);
    return true;
  };
}

function near(actual: number | null | undefined, expected: number, what: string): void {
  assert.ok(typeof actual === 'number' && Math.abs(actual - expected) < 1e-9, `${what}: ${actual} != ${expected}`);
}

/** The order-related requests, in order, as `METHOD path` */
function tradingRequests(): string[] {
  return fake.requests
    .filter((r) => !['/fapi/v1/exchangeInfo', '/fapi/v1/leverageBracket'].includes(r.path))
    .map((r) => `${r.method} ${r.path}`);
}

function entry(overrides: Partial<OrderRequest> = {}): OrderRequest {
  return {
    pair: BTC,
    side: 'buy',
    quantity: 0.0123,
    reduceOnly: false,
    clientOrderId: 'pt-BTC-1753099200000-0',
    referencePrice: 60_000,
    ...overrides,
  };
}

beforeEach(async () => {
  fake = new FakeBinanceUsdm();
  await fake.start();
  dir = mkdtempSync(join(tmpdir(), 'llm-trader-exchange-'));
});

afterEach(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(fake.unexpected, [], 'ccxt called endpoints the fake does not implement');
  assert.deepEqual(fake.pendingFaults, [], 'an injected fault was never triggered');
});

describe('markets', () => {
  test('trading rules come from the exchange info: steps, minimums, ticks (fixture values)', async () => {
    const ex = adapter();
    assert.deepEqual(await ex.market(BTC), {
      pair: BTC,
      exchangeSymbol: 'BTCUSDT',
      active: true,
      qtyStep: 0.001,
      minQty: 0.001,
      maxQty: 120, // MARKET_LOT_SIZE, not LOT_SIZE's 1000: all orders here are market orders
      minNotional: 100,
      tickSize: 0.1,
      maxLeverage: null,
      contractSize: 1,
    });
    const sol = await ex.market(SOL);
    assert.deepEqual([sol.qtyStep, sol.minQty, sol.maxQty, sol.minNotional, sol.tickSize], [1, 1, 5000, 5, 0.01]);
  });

  test('markets are fetched once, cached to disk atomically, and a second instance makes no request', async () => {
    const first = adapter();
    await first.market(BTC);
    await first.market(ETH);
    assert.equal(fake.requestsTo('/fapi/v1/exchangeInfo').length, 1);
    const cacheDir = join(dir, 'markets');
    assert.deepEqual(readdirSync(cacheDir), ['binanceusdm.json'], 'no temp file left behind');

    const before = fake.requests.length;
    const second = adapter();
    assert.equal((await second.market(ETH)).minNotional, 20);
    assert.equal(fake.requests.length, before, 'the second instance sent no request at all');
  });

  test('a cache older than the maximum age is refetched', async () => {
    await adapter().market(BTC);
    const twoDaysLater = Date.now() + 2 * 24 * HOUR;
    await adapter({ now: () => twoDaysLater }).market(BTC);
    assert.equal(fake.requestsTo('/fapi/v1/exchangeInfo').length, 2);
  });

  test('a pair missing from the cache triggers one refetch, then a non-retryable ExchangeBadSymbol', async () => {
    await adapter().market(BTC);
    const cached = adapter();
    await assert.rejects(cached.market('FOO/USDT:USDT'), exchangeError('ExchangeBadSymbol', false, /FOO\/USDT:USDT/));
    await assert.rejects(cached.market('FOO/USDT:USDT'), exchangeError('ExchangeBadSymbol', false));
    assert.equal(fake.requestsTo('/fapi/v1/exchangeInfo').length, 2, 'one refetch per instance');
  });
});

describe('environments and configuration', () => {
  test('demo trading sends every request to the demo host and does not reuse the live markets cache', async () => {
    await adapter().market(BTC);
    assert.deepEqual([...new Set(fake.requests.map((r) => r.host))], ['fapi.binance.com']);
    fake.requests.length = 0;
    const demo = adapter({ demoTrading: true });
    await demo.market(BTC);
    await demo.fetchBalance();
    assert.deepEqual(
      fake.requests.map((r) => `${r.host}${r.path}`),
      ['demo-fapi.binance.com/fapi/v1/exchangeInfo', 'demo-fapi.binance.com/fapi/v3/account'],
    );
  });

  test('sandbox reads markets from the futures testnet; ccxt refuses private futures testnet calls', async () => {
    const sandbox = adapter({ sandbox: true });
    await sandbox.market(BTC);
    assert.deepEqual(
      fake.requests.map((r) => `${r.host}${r.path}`),
      ['testnet.binancefuture.com/fapi/v1/exchangeInfo'],
    );
    // ccxt 4.5: "testnet/sandbox mode is not supported for futures anymore ... consider using the demo trading"
    await assert.rejects(sandbox.fetchBalance(), exchangeError('ExchangeNotSupported', false, /demo trading/));
  });

  test('configuration mistakes fail at construction with the key to fix', () => {
    assert.throws(() => adapter({ sandbox: true, demoTrading: true }), /sandbox and exchange\.demo_trading/);
    assert.throws(() => adapter({ ccxtOptions: { enableRateLimit: false } }), /enableRateLimit cannot be false/);
    assert.throws(() => adapter({ ccxtOptions: { secret: 'x' } }), /ccxt_options\.secret is not allowed/);
    assert.throws(() => adapter({ ccxtOptions: { verbose: true } }), /verbose/);
    assert.throws(() => adapter({ exchangeId: 'binance-futures' }), /not a ccxt exchange id/);
  });

  test('exchange.api_url rewrites every API URL keeping its path; plain http only on loopback, no credentials', () => {
    assert.deepEqual(
      rewriteApiUrls(
        { fapiPublic: 'https://fapi.binance.com/fapi/v1', sapi: 'https://api.binance.com/sapi/v1/' },
        'http://127.0.0.1:8900',
      ),
      { fapiPublic: 'http://127.0.0.1:8900/fapi/v1', sapi: 'http://127.0.0.1:8900/sapi/v1' },
    );
    assert.deepEqual(rewriteApiUrls({ a: 'https://fapi.binance.com/fapi/v2' }, 'https://gw.example/binance/'), {
      a: 'https://gw.example/binance/fapi/v2',
    });
    assert.throws(() => rewriteApiUrls({}, 'http://10.0.0.5:8900'), /unencrypted; use https/);
    assert.throws(() => rewriteApiUrls({}, 'https://user:pw@gw.example'), /must not carry a user name or password/);
    assert.throws(() => rewriteApiUrls({}, 'not a url'), /is not a URL/);
    assert.throws(() => adapter({ apiUrl: 'http://127.0.0.1:1', demoTrading: true }), /cannot be combined/);
    assert.equal(adapter({ apiUrl: 'http://127.0.0.1:1' }).environment, 'custom');
  });

  test('fromConfig maps the exchange section of the configuration', async () => {
    const ex = CcxtExchange.fromConfig(
      {
        name: 'binanceusdm',
        api_key: API_KEY,
        api_secret: API_SECRET,
        sandbox: false,
        demo_trading: true,
        api_url: null,
        ccxt_options: { rateLimit: 2 },
      },
      { marketsCacheFile: null, fetchImplementation: fake.fetchImplementation },
    );
    assert.equal(ex.environment, 'demo');
    await ex.fetchBalance();
    assert.equal(fake.requests.at(-1)?.host, 'demo-fapi.binance.com');
    assert.equal(existsSync(join(dir, 'markets')), false, 'no cache file without marketsCacheFile');
  });

  test('the rate limiter is on: requests are spaced by ccxt rateLimit', async () => {
    const ex = adapter({ ccxtOptions: { rateLimit: 100 } });
    await ex.market(BTC);
    const started = performance.now();
    for (let i = 0; i < 4; i++) await ex.fetchFundingRate(BTC);
    // leaky bucket with capacity 1 and cost 1 per premiumIndex call: at least 2 waits of 100 ms for 4 calls
    assert.ok(performance.now() - started >= 180, `4 calls took ${performance.now() - started} ms`);
  });

  test('keys never show in String(), JSON.stringify() or util.inspect() of the adapter', () => {
    const ex = adapter();
    for (const text of [String(ex), JSON.stringify(ex), inspect(ex, { depth: 10, showHidden: true })]) {
      assert.equal(text.includes(API_KEY), false, text);
      assert.equal(text.includes(API_SECRET), false, text);
    }
    assert.deepEqual(JSON.parse(JSON.stringify(ex)), { exchangeId: 'binanceusdm', environment: 'live', keys: true });
  });
});

describe('entries and idempotent orders', () => {
  test('ACCEPTANCE: an entry sets isolated margin, then leverage, then sends the order with its client order id', async () => {
    const ex = adapter();
    await ex.prepareEntry(BTC, 5);
    const result = await ex.createOrder(entry());

    assert.deepEqual(tradingRequests(), [
      'POST /fapi/v1/marginType',
      'POST /fapi/v1/leverage',
      'GET /fapi/v1/order', // look-up by client order id: not found
      'POST /fapi/v1/order',
      'GET /fapi/v1/userTrades', // fills and fees
    ]);
    assert.equal(fake.requestsTo('/fapi/v1/marginType')[0]?.params.marginType, 'ISOLATED');
    assert.equal(fake.requestsTo('/fapi/v1/leverage')[0]?.params.leverage, '5');
    assert.equal(fake.requestsTo('/fapi/v1/order', 'GET')[0]?.params.origClientOrderId, 'pt-BTC-1753099200000-0');
    const sent = fake.requestsTo('/fapi/v1/order', 'POST')[0]?.params;
    assert.equal(sent?.newClientOrderId, 'pt-BTC-1753099200000-0');
    assert.equal(sent?.symbol, 'BTCUSDT');
    assert.equal(sent?.side, 'BUY');
    assert.equal(sent?.type, 'MARKET');
    assert.equal(sent?.quantity, '0.012', '0.0123 BTC rounded down to the 0.001 step');
    assert.equal(sent?.reduceOnly, undefined);
    assert.equal(fake.marginType.get('BTCUSDT'), 'ISOLATED');
    assert.equal(fake.leverage.get('BTCUSDT'), 5);

    // filled at the fake's mark 60000; fee 0.012 x 60000 x 0.0005 = 0.36 USDT
    assert.equal(result.status, 'filled');
    assert.equal(result.clientOrderId, 'pt-BTC-1753099200000-0');
    assert.equal(result.exchangeOrderId, String(fake.orders.get('BTCUSDT|pt-BTC-1753099200000-0')?.orderId));
    assert.equal(result.quantity, 0.012);
    assert.equal(result.filledQuantity, 0.012);
    assert.equal(result.averagePrice, 60_000);
    near(result.fee, 0.36, 'fee');
    assert.equal(result.fills.length, 1);
    const fill = result.fills[0]!;
    assert.deepEqual(
      { ...fill, fee: 0, time: 0 },
      {
        clientOrderId: 'pt-BTC-1753099200000-0',
        pair: BTC,
        side: 'buy',
        price: 60_000,
        quantity: 0.012,
        fee: 0,
        time: 0,
        reduceOnly: false,
      },
    );
    near(fill.fee, 0.012 * 60_000 * TAKER_FEE, 'fill fee');
  });

  test('prepareEntry is idempotent ("No need to change margin type" is success)', async () => {
    const ex = adapter();
    await ex.prepareEntry(BTC, 5);
    await ex.prepareEntry(BTC, 5);
    assert.equal(fake.requestsTo('/fapi/v1/marginType').length, 2);
    assert.equal(fake.marginType.get('BTCUSDT'), 'ISOLATED');
  });

  test('ACCEPTANCE: the same create sent again returns the first order; exactly one order exists', async () => {
    const ex = adapter();
    const first = await ex.createOrder(entry());
    const second = await ex.createOrder(entry());
    assert.equal(second.exchangeOrderId, first.exchangeOrderId);
    assert.equal(second.status, 'filled');
    assert.equal(fake.requestsTo('/fapi/v1/order', 'POST').length, 1);
    assert.equal(fake.orders.size, 1);
  });

  test('ACCEPTANCE: a create whose response was lost is retried into the same single order', async () => {
    const ex = adapter();
    fake.fault({ method: 'POST', path: '/fapi/v1/order', kind: 'drop-after' });
    await assert.rejects(ex.createOrder(entry()), exchangeError('ExchangeNetworkError', true));
    assert.equal(fake.orders.size, 1, 'the order did reach the exchange');
    const retried = await ex.createOrder(entry());
    assert.equal(retried.exchangeOrderId, String(fake.orders.get('BTCUSDT|pt-BTC-1753099200000-0')?.orderId));
    assert.equal(retried.filledQuantity, 0.012);
    assert.equal(fake.requestsTo('/fapi/v1/order', 'POST').length, 1, 'the retry did not send a second order');
    assert.equal(fake.orders.size, 1);
  });

  test('ACCEPTANCE: a create that timed out is retried into the same single order', async () => {
    const ex = adapter({ ccxtOptions: { rateLimit: 2, timeout: 300 } });
    await ex.market(BTC);
    fake.fault({ method: 'POST', path: '/fapi/v1/order', kind: 'delay-after', delayMs: 1_000 });
    await assert.rejects(ex.createOrder(entry()), exchangeError('ExchangeTimeout', true));
    const retried = await ex.createOrder(entry());
    assert.equal(retried.status, 'filled');
    assert.equal(fake.requestsTo('/fapi/v1/order', 'POST').length, 1);
    assert.equal(fake.orders.size, 1);
  });

  test('ACCEPTANCE: when the look-up misses an order that exists, the duplicate id answer returns that order', async () => {
    const ex = adapter();
    const first = await ex.createOrder(entry());
    fake.fault({ method: 'GET', path: '/fapi/v1/order', kind: 'not-found' });
    const again = await ex.createOrder(entry());
    assert.equal(again.exchangeOrderId, first.exchangeOrderId);
    // second attempt: GET (missed) -> POST (-4116 ClientOrderId is duplicated) -> GET (found)
    assert.deepEqual(tradingRequests().slice(-4), [
      'GET /fapi/v1/order',
      'POST /fapi/v1/order',
      'GET /fapi/v1/order',
      'GET /fapi/v1/userTrades',
    ]);
    assert.equal(fake.orders.size, 1);
  });

  test('a client order id already used by an order of the other side is refused, not returned', async () => {
    const ex = adapter();
    await ex.createOrder(entry());
    await assert.rejects(
      ex.createOrder(entry({ side: 'sell' })),
      exchangeError('ExchangeDuplicateOrderId', false, /already names a buy order/),
    );
    assert.equal(fake.requestsTo('/fapi/v1/order', 'POST').length, 1);
  });
});

describe('checks before sending', () => {
  test('quantity below the minimum after rounding, notional below the minimum, bad ids: refused without a request', async () => {
    const ex = adapter();
    await ex.market(BTC);
    const before = fake.requests.length;
    // 0.0009 BTC rounds down to 0 with a 0.001 step
    await assert.rejects(
      ex.createOrder(entry({ quantity: 0.0009 })),
      exchangeError('ExchangeInvalidOrder', false, /minimum order quantity 0\.001/),
    );
    // 0.001 BTC x 60000 = 60 USDT < 100 USDT
    await assert.rejects(
      ex.createOrder(entry({ quantity: 0.001 })),
      exchangeError('ExchangeInvalidOrder', false, /notional 0\.001 x 60000 = 60 USDT is below the minimum 100 USDT/),
    );
    // 121 BTC > MARKET_LOT_SIZE max 120
    await assert.rejects(
      ex.createOrder(entry({ quantity: 121 })),
      exchangeError('ExchangeInvalidOrder', false, /maximum 120/),
    );
    await assert.rejects(
      ex.createOrder(entry({ clientOrderId: 'x'.repeat(37) })),
      exchangeError('ExchangeInvalidOrder', false, /1 to 36 characters/),
    );
    await assert.rejects(
      ex.createOrder(entry({ clientOrderId: 'has space' })),
      exchangeError('ExchangeInvalidOrder', false),
    );
    await assert.rejects(ex.createOrder(entry({ referencePrice: 0 })), exchangeError('ExchangeInvalidOrder', false));
    assert.equal(fake.requests.length, before, 'nothing was sent');
  });

  test('a reduce-only order below the minimum notional is allowed (exits must always be possible)', async () => {
    const ex = adapter();
    await ex.createOrder(entry({ quantity: 0.002, clientOrderId: 'open-1' })); // 0.002 x 60000 = 120 >= 100
    const exit = await ex.createOrder(
      entry({ side: 'sell', quantity: 0.001, reduceOnly: true, clientOrderId: 'exit-1' }), // 60 USDT < 100
    );
    assert.equal(exit.status, 'filled');
    assert.equal(exit.reduceOnly, true);
    assert.equal(fake.requestsTo('/fapi/v1/order', 'POST')[1]?.params.reduceOnly, 'true');
    assert.equal(fake.positions.get('BTCUSDT')?.amount, 0.001);
  });

  test('quantities are rounded down to the step (SOL step 1: 2.7 -> 2)', async () => {
    const ex = adapter();
    const result = await ex.createOrder(
      entry({ pair: SOL, quantity: 2.7, referencePrice: 150, clientOrderId: 'sol-1' }),
    );
    assert.equal(fake.requestsTo('/fapi/v1/order', 'POST')[0]?.params.quantity, '2');
    assert.equal(result.filledQuantity, 2);
  });
});

describe('exchange errors through HTTP', () => {
  test('Binance error answers reach the caller classified, with the documented retryability', async () => {
    const ex = adapter();
    await ex.market(BTC);
    fake.walletBalance = 10; // 0.012 BTC at 20x needs 36 USDT of margin
    await assert.rejects(
      ex.createOrder(entry()),
      exchangeError('ExchangeInsufficientFunds', false, /Margin is insufficient/),
    );

    const cases: Array<[number, number, string, ExchangeErrorType, boolean]> = [
      [429, -1003, 'Too many requests.', 'ExchangeRateLimited', true],
      [418, -1003, 'IP banned until 1753120800000.', 'ExchangeRateLimited', true],
      [400, -1021, 'Timestamp for this request is outside of the recvWindow.', 'ExchangeInvalidNonce', true],
      [
        500,
        -1001,
        'Internal error; unable to process your request. Please try again.',
        'ExchangeOperationFailed',
        true,
      ],
      [400, -1007, 'Timeout waiting for response from backend server.', 'ExchangeTimeout', true],
      [401, -2015, 'Invalid API-key, IP, or permissions for action.', 'ExchangeAuthenticationFailed', false],
      [400, -1121, 'Invalid symbol.', 'ExchangeBadSymbol', false],
    ];
    for (const [status, code, msg, type, retryable] of cases) {
      fake.fault({ method: 'GET', path: '/fapi/v3/account', kind: 'error', status, code, msg });
      // a fresh client each time: after a 429 or 418 a client sends nothing until the back-off has passed
      await assert.rejects(adapter().fetchBalance(), exchangeError(type, retryable), `${status} ${code}`);
    }
  });

  test('a dropped connection is a retryable network error; wrong keys are not retryable and not quoted', async () => {
    const ex = adapter();
    fake.fault({ method: 'GET', path: '/fapi/v3/account', kind: 'drop-after' });
    await assert.rejects(ex.fetchBalance(), exchangeError('ExchangeNetworkError', true));

    const wrongSecret = 'wrong-secret-0123456789abcdef-XYZ';
    const wrongKey = adapter({ apiKey: 'wrong-key-0123456789abcdef-XYZ', secret: wrongSecret });
    await assert.rejects(wrongKey.fetchBalance(), (err: unknown) => {
      exchangeError('ExchangeAuthenticationFailed', false, /EXCHANGE_API_KEY/)(err);
      const message = (err as Error).message;
      assert.equal(message.includes(wrongSecret), false);
      assert.equal(message.includes('wrong-key-0123456789abcdef-XYZ'), false);
      return true;
    });
  });
});

describe('market data', () => {
  test('closed candles only: the candle still forming at asOf is never returned', async () => {
    const ex = adapter();
    fake.now = Date.UTC(2025, 6, 21, 12, 10); // the 12:00 candle is forming (closes 12:30)
    const asOf = fake.now;
    const since = asOf - 5 * HOUR; // 07:10 -> first candle opening at or after it: 07:30
    const candles = await ex.fetchClosedCandles(BTC, '30m', since, asOf);
    const expected = [];
    for (let t = Date.UTC(2025, 6, 21, 7, 30); t + MIN30 <= asOf; t += MIN30) {
      const [time, open, high, low, close, volume] = fakeCandle(t, MIN30);
      expected.push({ time, open, high, low, close, volume });
    }
    assert.equal(expected.length, 9); // 07:30 .. 11:30
    assert.deepEqual(candles, expected);

    // the fake did serve the forming candle: the adapter dropped it
    const served = fake.requestsTo('/fapi/v1/klines');
    assert.equal(served.length, 1);
    assert.equal(served[0]?.params.interval, '30m');
  });

  test('at a candle boundary the candle closing exactly at asOf is included', async () => {
    const ex = adapter();
    fake.now = Date.UTC(2025, 6, 21, 12, 0);
    const candles = await ex.fetchClosedCandles(BTC, '30m', fake.now - 2 * HOUR, fake.now);
    assert.deepEqual(
      candles.map((c) => c.time),
      [
        Date.UTC(2025, 6, 21, 10, 0),
        Date.UTC(2025, 6, 21, 10, 30),
        Date.UTC(2025, 6, 21, 11, 0),
        Date.UTC(2025, 6, 21, 11, 30),
      ],
    );
  });

  test('long ranges are paged through the per-request limit without gaps or duplicates', async () => {
    const ex = adapter();
    fake.now = Date.UTC(2025, 6, 21, 12, 10);
    const asOf = Date.UTC(2025, 6, 21, 12, 0);
    const since = asOf - 2_500 * HOUR;
    const candles = await ex.fetchClosedCandles(BTC, '1h', since, asOf);
    assert.equal(candles.length, 2_500); // opens since .. asOf - 1h, all closed at asOf
    assert.equal(candles[0]?.time, since);
    assert.equal(candles.at(-1)?.time, asOf - HOUR);
    for (let i = 1; i < candles.length; i++) assert.equal(candles[i]!.time - candles[i - 1]!.time, HOUR);
    assert.equal(fake.requestsTo('/fapi/v1/klines').length, 3, 'ccxt caps Binance klines at 1000 per request');
  });

  test('an invalid or unoffered timeframe is a non-retryable bad request', async () => {
    const ex = adapter();
    await assert.rejects(
      ex.fetchClosedCandles(BTC, '7x', 0, 1),
      exchangeError('ExchangeBadRequest', false, /timeframe/),
    );
    await assert.rejects(
      ex.fetchClosedCandles(BTC, '45m', 0, 1),
      exchangeError('ExchangeBadRequest', false, /no 45m candles/),
    );
  });

  test('funding: the current rate with its funding time, and the full history paged', async () => {
    const ex = adapter();
    fake.now = Date.UTC(2025, 6, 21, 12, 10);
    const next = Date.UTC(2025, 6, 21, 16, 0); // funding every 8 h at 00:00, 08:00, 16:00 UTC
    assert.deepEqual(await ex.fetchFundingRate(BTC), { rate: fakeFundingRate(next), time: next });

    const since = Date.UTC(2024, 0, 1);
    const history = await ex.fetchFundingRateHistory(BTC, since);
    const expected = [];
    for (let t = since; t <= fake.now; t += FUNDING_INTERVAL_MS) expected.push({ time: t, rate: fakeFundingRate(t) });
    assert.ok(expected.length > 1_000, 'more than one page');
    assert.deepEqual(history, expected);
  });
});

describe('account', () => {
  test('balance and positions after an isolated 5x entry and a price move', async () => {
    const ex = adapter();
    await ex.prepareEntry(BTC, 5);
    await ex.createOrder(entry());
    fake.markPrice.BTCUSDT = 61_000;
    // wallet 10000 - fee 0.36 = 9999.64; unrealised (61000 - 60000) x 0.012 = 12
    // initial margin 0.012 x 61000 / 5 = 146.4; available = 9999.64 + 12 - 146.4 = 9865.24
    const balance = await ex.fetchBalance();
    assert.equal(balance.currency, 'USDT');
    near(balance.equity, 10_011.64, 'equity');
    near(balance.available, 9_865.24, 'available');
    near(balance.usedMargin, 146.4, 'used margin');

    const positions = await ex.fetchPositions();
    assert.equal(positions.length, 1);
    const p = positions[0]!;
    assert.equal(p.pair, BTC);
    assert.equal(p.side, 'long');
    assert.equal(p.quantity, 0.012);
    assert.equal(p.entryPrice, 60_000);
    assert.equal(p.leverage, 5); // notional 732 / initial margin 146.4
    near(p.margin, 146.4, 'margin');
    near(p.notional, 732, 'notional');
    near(p.unrealizedPnl, 12, 'unrealised PnL');
    near(p.liquidationPrice, FakeBinanceUsdm.liquidationPrice(0.012, 60_000, 5), 'liquidation price');
  });

  test('no positions when flat', async () => {
    assert.deepEqual(await adapter().fetchPositions(), []);
  });
});

describe('stop orders and cancellation', () => {
  test('a protective stop is a reduce-only STOP_MARKET conditional order, placed once, found and cancelled by id', async () => {
    const ex = adapter();
    await ex.createOrder(entry());
    const stopRequest = {
      pair: BTC,
      side: 'sell' as const,
      quantity: 0.012,
      stopPrice: 57_000.04,
      clientOrderId: 'stop-1',
    };
    const stop = await ex.placeStopOrder(stopRequest);
    assert.ok(stop);
    const sent = fake.requestsTo('/fapi/v1/algoOrder', 'POST')[0]?.params;
    assert.equal(sent?.clientAlgoId, 'stop-1');
    assert.equal(sent?.algoType, 'CONDITIONAL');
    assert.equal(sent?.type, 'STOP_MARKET');
    assert.equal(sent?.side, 'SELL');
    assert.equal(sent?.quantity, '0.012');
    assert.equal(sent?.triggerPrice, '57000', '57000.04 rounded to the 0.1 tick');
    assert.equal(sent?.reduceOnly, 'true');
    assert.equal(stop.status, 'open');
    assert.equal(stop.stopPrice, 57_000);
    assert.equal(stop.quantity, 0.012);
    assert.equal(stop.filledQuantity, 0);
    assert.deepEqual(stop.fills, []);

    const again = await ex.placeStopOrder(stopRequest);
    assert.equal(again?.exchangeOrderId, stop.exchangeOrderId);
    assert.equal(fake.requestsTo('/fapi/v1/algoOrder', 'POST').length, 1, 'placed once');

    assert.equal((await ex.fetchOrderByClientId(BTC, 'stop-1'))?.exchangeOrderId, stop.exchangeOrderId);

    const cancelled = await ex.cancelOrder(BTC, 'stop-1');
    assert.equal(cancelled?.status, 'canceled');
    assert.equal(fake.algoOrders.get('BTCUSDT|stop-1')?.algoStatus, 'CANCELED');
    const cancelledAgain = await ex.cancelOrder(BTC, 'stop-1');
    assert.equal(cancelledAgain?.status, 'canceled', 'cancelling twice reports the final state');
  });

  test('cancelling a filled order returns it as filled; an unknown id gives null', async () => {
    const ex = adapter();
    await ex.createOrder(entry());
    const filled = await ex.cancelOrder(BTC, 'pt-BTC-1753099200000-0');
    assert.equal(filled?.status, 'filled');
    assert.equal(filled?.filledQuantity, 0.012);
    assert.equal(await ex.cancelOrder(BTC, 'never-placed'), null);
    assert.equal(await ex.fetchOrderByClientId(BTC, 'never-placed'), null);
  });
});
