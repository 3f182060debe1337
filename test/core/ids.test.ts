import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { clientOrderId, decisionId } from '../../src/core/ids';
import { CLIENT_ORDER_ID_RE } from '../../src/exchange/port';

describe('client order ids', () => {
  test('the same workflow, candle and index always give the same id (a retry finds its order)', () => {
    const id = clientOrderId('pair:binanceusdm:BTC/USDT:USDT', Date.UTC(2025, 6, 1), 0);
    assert.equal(clientOrderId('pair:binanceusdm:BTC/USDT:USDT', Date.UTC(2025, 6, 1), 0), id);
  });

  test('ids fit Binance rules and differ across owners, candles and indices', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 80 }),
        fc.string({ minLength: 1, maxLength: 80 }),
        fc.integer({ min: 1_500_000_000_000, max: 4_000_000_000_000 }),
        fc.integer({ min: 0, max: 35 }),
        (a, b, time, index) => {
          const id = clientOrderId(a, time, index);
          assert.ok(id.length <= 36 && CLIENT_ORDER_ID_RE.test(id), id);
          assert.notEqual(clientOrderId(a, time + 1, index), id);
          assert.notEqual(clientOrderId(a, time, (index + 1) % 36), id);
          if (a !== b) assert.notEqual(clientOrderId(b, time, index), id);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('the 17 pair workflows of ../shared/data get distinct ids for the same candle', () => {
    const bases = 'ADA AVAX BCH BNB BTC DOGE DOT ETC ETH FIL LINK LTC SOL TRX UNI USDC XRP'.split(' ');
    const ids = new Set(bases.map((b) => clientOrderId(`pair:binanceusdm:${b}/USDT:USDT`, Date.UTC(2025, 6, 1), 0)));
    assert.equal(ids.size, 17);
  });

  test('bad inputs are refused with the reason', () => {
    assert.throws(() => clientOrderId('x', 1.5, 0), /closeTime must be a Unix ms integer/);
    assert.throws(() => clientOrderId('x', 1, 36), /index must be 0..35/);
  });
});

describe('decision ids', () => {
  const owner = 'pair:binanceusdm:BTC/USDT:USDT';
  const close = Date.UTC(2025, 5, 1, 10, 0);

  test('the same owner, pair and candle close always give the same id, in the documented format', () => {
    const id = decisionId(owner, 'BTC/USDT:USDT', close);
    assert.equal(decisionId(owner, 'BTC/USDT:USDT', close), id);
    assert.match(id, /^d[0-9a-f]{12}[0-9a-z]+$/);
    assert.ok(id.endsWith(close.toString(36)), id);
    assert.equal(id.length, 21);
  });

  test('ids differ across owners, pairs and candle closes', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 60 }),
        fc.string({ minLength: 1, maxLength: 60 }),
        fc.string({ minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1_500_000_000_000, max: 4_000_000_000_000 }),
        (a, b, pair, time) => {
          const id = decisionId(a, pair, time);
          assert.notEqual(decisionId(a, pair, time + 1), id);
          if (a !== b) assert.notEqual(decisionId(b, pair, time), id);
        },
      ),
      { numRuns: 2000 },
    );
    // the separator keeps (owner, pair) apart from a shifted split of the same characters
    assert.notEqual(decisionId('ab', 'c', close), decisionId('a', 'bc', close));
  });

  test('a time that is not a Unix ms integer is refused with the reason', () => {
    assert.throws(() => decisionId(owner, 'BTC/USDT:USDT', 1.5), /time must be the candle close in Unix ms/);
    assert.throws(() => decisionId(owner, 'BTC/USDT:USDT', -1), /time must be the candle close in Unix ms/);
  });
});
