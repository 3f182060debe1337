import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { clientOrderId } from '../../src/core/ids';
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
