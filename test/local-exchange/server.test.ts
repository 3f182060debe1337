/**
 * The local exchange itself: what the other live tests rely on. Signed-request checks as Binance documents them,
 * recorded market data served without anything from after the market clock, the matching engine's fills, fees, stops
 * and funding, and the request-weight limit with Retry-After and bans. Positive cases go through the real ccxt
 * `binanceusdm` (URLs rewritten by the adapter's `apiUrl`); requests ccxt would never send are made by hand.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { CcxtExchange } from '../../src/exchange/ccxt-exchange';
import { ExchangeError } from '../../src/exchange/errors';
import { RecordedMarketSource, csvRecordedData } from '../../src/exchange/market-source';
import { DATA_DIR, LOCAL_API_KEY, LOCAL_API_SECRET, startLocalExchange } from '../helpers/live-exchange';
import { crossingTime } from './engine';
import { IN_FLIGHT_MS, type LocalExchange } from './server';

const BTC = 'BTC/USDT:USDT';
const T = Date.parse('2025-06-22T07:00:05Z');
const HALF_HOUR = 1_800_000;

function adapter(ex: LocalExchange, keys: { apiKey?: string; secret?: string } = {}): CcxtExchange {
  return new CcxtExchange({
    exchangeId: 'binanceusdm',
    apiKey: keys.apiKey ?? LOCAL_API_KEY,
    secret: keys.secret ?? LOCAL_API_SECRET,
    apiUrl: ex.url,
    ccxtOptions: { rateLimit: 5 },
  });
}

/** A signed request made by hand (what ccxt does, with parameters ccxt would not send). */
async function signed(
  ex: LocalExchange,
  method: string,
  path: string,
  params: Record<string, string>,
  secret = LOCAL_API_SECRET,
): Promise<{
  status: number;
  body: { code?: number; msg?: string } & Record<string, unknown>;
  retryAfter: string | null;
}> {
  const query = new URLSearchParams(params).toString();
  const signature = createHmac('sha256', secret).update(query).digest('hex');
  const res = await fetch(`${ex.url}${path}?${query}&signature=${signature}`, {
    method,
    headers: { 'X-MBX-APIKEY': LOCAL_API_KEY },
  });
  return { status: res.status, body: (await res.json()) as never, retryAfter: res.headers.get('retry-after') };
}

function rejectsWith(type: string, message?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ExchangeError, String(err));
    assert.equal(err.type, type, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

describe('the local exchange', () => {
  let ex: LocalExchange;
  let clock: { now: number };

  before(async () => {
    ({ exchange: ex, clock } = await startLocalExchange(T));
  });
  after(async () => {
    await ex.close();
  });

  test('signed requests: the right key and HMAC-SHA256 pass; a wrong secret, key or timestamp is refused as Binance does', async () => {
    assert.equal((await adapter(ex).fetchBalance()).equity, 10_000);
    await assert.rejects(
      adapter(ex, { secret: 'not-the-secret-0123456789-abcdefghijkl' }).fetchBalance(),
      rejectsWith('ExchangeAuthenticationFailed', /-1022.*Signature for this request is not valid/),
    );
    await assert.rejects(
      adapter(ex, { apiKey: 'not-the-key-0123456789abcdef' }).fetchBalance(),
      rejectsWith('ExchangeAuthenticationFailed', /-2015/),
    );
    const stale = await signed(ex, 'GET', '/fapi/v3/account', { timestamp: String(Date.now() - 10_000) });
    assert.deepEqual([stale.status, stale.body.code], [400, -1021]);
    const widened = await signed(ex, 'GET', '/fapi/v3/account', {
      timestamp: String(Date.now() - 10_000),
      recvWindow: '20000',
    });
    assert.equal(widened.status, 200, 'inside a wider recvWindow');
    const ahead = await signed(ex, 'GET', '/fapi/v3/account', { timestamp: String(Date.now() + 5_000) });
    assert.deepEqual([ahead.status, ahead.body.code], [400, -1021]);
    const unsigned = await fetch(`${ex.url}/fapi/v3/account?timestamp=${Date.now()}`, {
      headers: { 'X-MBX-APIKEY': LOCAL_API_KEY },
    });
    assert.equal(unsigned.status, 400);
  });

  test('klines are the recorded candles up to the market clock; the forming one shows only what is known then', async () => {
    const recorded = new RecordedMarketSource(csvRecordedData(DATA_DIR));
    const a = adapter(ex);
    for (const tf of ['30m', '1h', '4h', '1d']) {
      const since = T - 40 * 86_400_000;
      const served = await a.fetchClosedCandles(BTC, tf, since, T);
      const expected = (await recorded.history(BTC, tf)).filter(
        (c) => c.time >= since && c.time + (served[1]!.time - served[0]!.time) <= T,
      );
      assert.deepEqual(served, expected, `${tf} candles`);
    }
    // the raw answer ends with the candle forming at the clock: its open, nothing after the clock
    const res = await fetch(`${ex.url}/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=2`);
    const rows = (await res.json()) as [number, string, string, string, string, string][];
    const forming = rows.at(-1)!;
    assert.equal(forming[0], Date.parse('2025-06-22T07:00:00Z'));
    const open30 = (await recorded.history(BTC, '30m')).find((c) => c.time === forming[0])!;
    assert.deepEqual(forming.slice(1, 6).map(Number), [open30.open, open30.open, open30.open, open30.open, 0]);
  });

  test('a market order fills at the last close with a 0.05 % fee booked to 8 decimals; a stop fills at its trigger inside the candle', async () => {
    const a = adapter(ex);
    await a.prepareEntry(BTC, 10);
    const price = (await new RecordedMarketSource(csvRecordedData(DATA_DIR)).candles(BTC, '30m', T, 1))[0]!.close;
    const order = await a.createOrder({
      pair: BTC,
      side: 'buy',
      quantity: 0.02,
      reduceOnly: false,
      clientOrderId: 'server-test-1',
      referencePrice: price,
    });
    assert.equal(order.averagePrice, price);
    assert.equal(order.fee, Math.round(0.02 * price * 0.0005 * 1e8) / 1e8);
    const stopPrice = Math.round(price * 0.985 * 10) / 10;
    await a.placeStopOrder({ pair: BTC, side: 'sell', quantity: 0.02, stopPrice, clientOrderId: 'server-test-1s' });
    // the market moves on until a candle's low reaches the stop
    const candles = ex.market.closedBetween('BTCUSDT', T, T + 12 * 3_600_000);
    const hit = candles.find((c) => c.low <= stopPrice)!;
    assert.ok(hit, 'BTC fell 1.5 % that day');
    clock.now = hit.time + HALF_HOUR + 1;
    const stop = await a.fetchOrderByClientId(BTC, 'server-test-1s');
    assert.equal(stop?.status, 'filled');
    assert.equal(stop?.fills[0]?.price, stopPrice);
    assert.equal(stop?.fills[0]?.time, crossingTime(hit, stopPrice));
    assert.ok(stop!.fills[0]!.time > hit.time && stop!.fills[0]!.time < hit.time + HALF_HOUR);
    assert.deepEqual(await a.fetchPositions(), []);
  });

  test('funding: a position held over a funding time pays notional x rate at the recorded mark price', async () => {
    const a = adapter(ex);
    const at = Date.parse('2025-06-23T07:00:05Z');
    clock.now = at;
    const price = ex.market.lastPrice('BTCUSDT', at);
    await a.createOrder({
      pair: BTC,
      side: 'sell',
      quantity: 0.01,
      reduceOnly: false,
      clientOrderId: 'server-test-2',
      referencePrice: price,
    });
    clock.now = Date.parse('2025-06-23T08:00:05Z');
    const payments = await a.fetchFundingPayments(BTC, at);
    const funding = Date.parse('2025-06-23T08:00:00Z');
    const rate = ex.market.fundingAt('BTCUSDT', funding)!.rate;
    const mark = ex.market.markAt('BTCUSDT', funding);
    assert.deepEqual(payments, [{ time: funding, amount: Math.round(-0.01 * mark * rate * 1e8) / 1e8 }]);
    assert.notEqual(mark, ex.market.lastPrice('BTCUSDT', funding), 'the mark price, not the last trade');
    // held for nine more days: the adapter reads them back in windows of at most 7 days, every one
    clock.now = Date.parse('2025-07-02T08:00:05Z');
    const all = await a.fetchFundingPayments(BTC, at);
    const booked = ex.engine.income.filter(
      (r) => r.incomeType === 'FUNDING_FEE' && r.symbol === 'BTCUSDT' && r.time >= at,
    );
    assert.ok(booked.length >= 27, `${booked.length} payments`);
    assert.deepEqual(
      all,
      booked.map((r) => ({ time: r.time, amount: -r.income })),
    );
  });

  test('request weight: above the limit a 429 with Retry-After; a client that goes on sending is banned (418)', async () => {
    const { exchange: tight } = await startLocalExchange(T, { weightLimit: 3, weightWindowMs: 60_000, banSeconds: 60 });
    try {
      const time = () => fetch(`${tight.url}/fapi/v1/premiumIndex?symbol=BTCUSDT`);
      for (let i = 0; i < 3; i++) assert.equal((await time()).status, 200);
      const limited = await time();
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get('retry-after')) > 0);
      assert.equal((await time()).status, 429, 'refused, but on its way before the 429 could be read');
      await new Promise((r) => setTimeout(r, IN_FLIGHT_MS + 50));
      assert.equal((await time()).status, 429, 'a first violation');
      assert.equal((await time()).status, 429, 'a second one');
      const banned = await time();
      assert.equal(banned.status, 418);
      assert.equal(banned.headers.get('retry-after'), '60');
      assert.equal((await time()).status, 418, 'banned for the whole ban');
    } finally {
      await tight.close();
    }
  });
});
