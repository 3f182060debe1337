import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertReviewableTrade,
  isProtectiveExit,
  peakKept,
  reviewTrade,
  tradeOutcome,
} from '../../../src/core/learning/review';
import type { CloseReason } from '../../../src/core/types';
import { HOUR, makeTrade } from './make-trade';

describe('reviewTrade', () => {
  test('summarises a winning model exit with every number a reader needs', () => {
    const review = reviewTrade(makeTrade());
    assert.equal(review.outcome, 'win');
    assert.equal(review.pnl, 12.4);
    assert.equal(review.pnlPct, 6.2);
    assert.equal(review.durationMs, 5.5 * HOUR);
    assert.equal(review.durationHours, 5.5);
    assert.equal(review.mfePct, 9.1);
    assert.equal(review.maePct, -2.3);
    // kept = 6.2 / 9.1 = 0.68131...
    assert.ok(Math.abs((review.peakKept ?? NaN) - 6.2 / 9.1) < 1e-12);
    // given back = 9.1 - 6.2 = 2.9 points
    assert.ok(Math.abs(review.givenBackPct - 2.9) < 1e-12);
    assert.equal(review.protectiveExit, false);
    assert.equal(review.exitReason, 'model');
    assert.equal(review.tradeScore, 78);
    assert.equal(
      review.summary,
      'BTC/USDT:USDT long 10x: a win of +12.40 USDT (+6.2% of margin) over 5h 30m. Best +9.1%, worst -2.3%; ' +
        'kept 68% of the +9.1% peak. Closed by the model (self-score 78) after 9 holds and 1 adjustment.',
    );
  });

  test('a protective exit that was never in profit has no kept share and no self-score', () => {
    const review = reviewTrade(
      makeTrade({
        side: 'short',
        leverage: 20,
        pnlPct: -15.5,
        mfePct: 0,
        maePct: -16,
        exitReason: 'emergency_stop',
        tradeScore: null,
        holds: 1,
        adjustments: 0,
        exitTime: makeTrade().entryTime + 45 * 60_000,
      }),
    );
    assert.equal(review.outcome, 'loss');
    assert.equal(review.peakKept, null);
    assert.equal(review.protectiveExit, true);
    assert.equal(
      review.summary,
      // pnl = -15.5 x 200 / 100 = -31 USDT
      'BTC/USDT:USDT short 20x: a loss of -31.00 USDT (-15.5% of margin) over 45m. Best 0.0%, worst -16.0%; ' +
        'never in profit. Closed by the emergency stop after 1 hold and 0 adjustments.',
    );
  });

  test('a net PnL of exactly zero is breakeven', () => {
    const review = reviewTrade(makeTrade({ pnlPct: 0, pnl: 0 }));
    assert.equal(review.outcome, 'breakeven');
    assert.match(review.summary, /: breakeven \(0\.00 USDT\) over/);
  });
});

describe('tradeOutcome and peakKept', () => {
  test('the outcome follows the sign of the net PnL', () => {
    assert.equal(tradeOutcome({ pnl: 0.01 }), 'win');
    assert.equal(tradeOutcome({ pnl: -0.01 }), 'loss');
    assert.equal(tradeOutcome({ pnl: 0 }), 'breakeven');
  });

  test('kept share is negative when a profitable trade closed at a loss, null without a peak', () => {
    // -2 / 4 = -0.5
    assert.equal(peakKept({ pnlPct: -2, mfePct: 4 }), -0.5);
    assert.equal(peakKept({ pnlPct: 3, mfePct: 3 }), 1);
    assert.equal(peakKept({ pnlPct: -1, mfePct: 0 }), null);
  });
});

describe('isProtectiveExit', () => {
  test('stops and liquidations are protective; the model, the operator and outside closes are not', () => {
    const expected: Record<CloseReason, boolean> = {
      model: false,
      emergency_stop: true,
      liquidation_buffer: true,
      force_exit: false,
      stop: true,
      liquidation: true,
      external: false,
    };
    for (const [reason, protective] of Object.entries(expected)) {
      assert.equal(isProtectiveExit(reason as CloseReason), protective, reason);
    }
  });
});

describe('assertReviewableTrade', () => {
  test('rejects inconsistent records with the trade id, the field and the fix', () => {
    const base = makeTrade({ tradeId: 'bad-7' });
    const cases: [Partial<typeof base>, RegExp][] = [
      [{ exitTime: base.entryTime - 1 }, /trade bad-7 .*exits .* before it enters/],
      [{ leverage: 0.5 }, /leverage 0\.5; leverage must be >= 1/],
      [{ margin: 0 }, /margin 0; margin must be > 0/],
      [{ maePct: 0.4 }, /maePct 0\.4/],
      [{ mfePct: -1 }, /mfePct -1/],
      [{ pnlPct: Number.NaN }, /non-finite pnlPct/],
      [{ tradeScore: 120 }, /tradeScore 120/],
    ];
    for (const [overrides, message] of cases) {
      assert.throws(
        () => assertReviewableTrade({ ...base, ...overrides }, 'reviewTrade'),
        (err: unknown) =>
          err instanceof RangeError && message.test(err.message) && /fix the trade record/.test(err.message),
        JSON.stringify(overrides),
      );
    }
    assert.throws(() => reviewTrade({ ...base, margin: -5 }), /reviewTrade: trade bad-7/);
  });
});
