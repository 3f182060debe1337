import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  entryQuality,
  exitQuality,
  profitBucket,
  reflectOnTrade,
  type ProfitBucket,
  type Quality,
} from '../../../src/core/learning/reflection';
import type { CloseReason } from '../../../src/core/types';
import { HOUR, makeTrade } from './make-trade';

describe('profitBucket', () => {
  test('edges at ±2 % and ±5 % of margin: wins include the lower edge, losses include the upper edge', () => {
    const cases: [number, ProfitBucket][] = [
      [12, 'big_win'],
      [5, 'big_win'],
      [4.99, 'win'],
      [2, 'win'],
      [1.99, 'small_win'],
      [0.01, 'small_win'],
      [0, 'small_loss'],
      [-1.99, 'small_loss'],
      [-2, 'loss'],
      [-4.99, 'loss'],
      [-5, 'big_loss'],
      [-40, 'big_loss'],
    ];
    for (const [pnlPct, bucket] of cases) assert.equal(profitBucket(pnlPct), bucket, `pnlPct ${pnlPct}`);
  });
});

describe('entryQuality', () => {
  test('good, fair and poor at their thresholds (MFE, MAE in % of margin)', () => {
    const cases: [number, number, Quality][] = [
      [6, -3, 'good'], // adverse 3 <= 0.5 x 6 and < 5
      [6, -3.01, 'fair'], // adverse just above half the MFE
      [10, -4.99, 'good'],
      [20, -6, 'fair'], // small relative to MFE, but 6 >= 5 is deep
      [0, -2, 'poor'], // adverse 2 >= 2 and >= 2 x 0
      [0, -1.99, 'fair'], // too shallow to blame the entry, never in profit either
      [1, -2, 'poor'], // adverse 2 >= 2 x 1
      [1.01, -2, 'fair'], // 2 < 2 x 1.01
      [4, -5, 'poor'], // deep (5 >= 5) and deeper than the MFE
      [5, -5, 'fair'], // deep but not deeper than the MFE, and 5 < 2 x 5
      [0, 0, 'fair'], // the price never moved
    ];
    for (const [mfe, mae, quality] of cases) assert.equal(entryQuality(mfe, mae), quality, `MFE ${mfe}, MAE ${mae}`);
  });
});

describe('exitQuality', () => {
  test('share of the peak kept when the trade reached +1 % or more', () => {
    assert.equal(exitQuality(7, 10), 'good'); // kept 0.7
    assert.equal(exitQuality(6.99, 10), 'fair');
    assert.equal(exitQuality(3, 10), 'fair'); // kept 0.3
    assert.equal(exitQuality(2.99, 10), 'poor');
    assert.equal(exitQuality(-2, 4), 'poor'); // kept -0.5
    assert.equal(exitQuality(1, 1), 'good'); // MFE exactly at the +1 % threshold
  });

  test('loss containment when the trade never reached +1 %', () => {
    assert.equal(exitQuality(-1.99, 0.99), 'good');
    assert.equal(exitQuality(-2, 0.99), 'fair');
    assert.equal(exitQuality(-4.99, 0), 'fair');
    assert.equal(exitQuality(-5, 0), 'poor');
  });
});

describe('reflectOnTrade', () => {
  test('a big win with a good entry and a fair exit', () => {
    // pnl +6.2 (>= 5: big win); adverse 2.3 <= 0.5 x 9.1 = 4.55: good entry; kept 6.2 / 9.1 = 0.68: fair exit
    const r = reflectOnTrade(makeTrade());
    assert.equal(r.bucket, 'big_win');
    assert.equal(r.entryQuality, 'good');
    assert.equal(r.exitQuality, 'fair');
    assert.deepEqual(r.lessons, [
      'Good entry timing on the long: it went at most -2.3% against and up to +9.1% in favour.',
      'Kept 68% of the +9.1% peak (closed at +6.2%); trail the stop or take partial profit to keep more.',
    ]);
    assert.equal(
      r.summary,
      'Big win (+6.2% of margin) on a long at 10x over 5h 30m: good entry, fair exit; closed by the model.',
    );
  });

  test('an emergency stop gives a risk lesson first and a leverage lesson for the big loss', () => {
    const r = reflectOnTrade(
      makeTrade({ side: 'short', leverage: 20, pnlPct: -15.6, mfePct: 0.4, maePct: -16, exitReason: 'emergency_stop' }),
    );
    assert.equal(r.bucket, 'big_loss');
    assert.equal(r.entryQuality, 'poor');
    // MFE 0.4 < 1: judged on the loss, -15.6 <= -5
    assert.equal(r.exitQuality, 'poor');
    assert.equal(
      r.lessons[0],
      'The emergency stop closed the trade at -15.6% of margin (worst -16.0%) before the model exited; ' +
        'decide the invalidation level at entry and exit when it breaks.',
    );
    // price move = -15.6 / 20 = -0.78 %
    assert.equal(
      r.lessons[1],
      'At 20x leverage a -0.78% price move cost -15.6% of margin; size leverage to the distance of the stop.',
    );
    assert.match(
      r.lessons[2] ?? '',
      /^Poor entry timing on the short \(MAE -16\.0%, MFE \+0\.4%\).*bounce to resistance/,
    );
    // the protective lesson already covers the exit: no separate "never in profit" lesson
    assert.equal(r.lessons.length, 3);
    assert.match(
      r.summary,
      /^Big loss \(-15\.6% of margin\) on a short at 20x .*: poor entry, poor exit; closed by the emergency stop\.$/,
    );
  });

  test('a liquidation names the leverage and gets no extra price-move lesson', () => {
    const r = reflectOnTrade(
      makeTrade({ leverage: 50, pnlPct: -100, mfePct: 0, maePct: -100, exitReason: 'liquidation' }),
    );
    assert.match(r.lessons[0] ?? '', /^The position was liquidated at 50x leverage \(-100\.0% of margin\)/);
    assert.ok(!r.lessons.some((l) => l.includes('price move cost')));
  });

  test('a winner turned into a loser', () => {
    // MFE 4 >= 1; kept -2 / 4 = -0.5 < 0.3: poor exit, closed below zero
    const r = reflectOnTrade(makeTrade({ pnlPct: -2, mfePct: 4, maePct: -2.5 }));
    assert.equal(r.bucket, 'loss');
    assert.equal(r.exitQuality, 'poor');
    assert.ok(
      r.lessons.includes(
        'A winner turned into a loser: peak +4.0%, closed at -2.0%; move the stop to breakeven once the trade is up +2% or more.',
      ),
      r.lessons.join(' | '),
    );
  });

  test('giving back most of a profit and exiting near the peak', () => {
    // kept 1.5 / 8 = 0.1875
    const gaveBack = reflectOnTrade(makeTrade({ pnlPct: 1.5, mfePct: 8, maePct: -0.5 }));
    assert.ok(
      gaveBack.lessons.some((l) =>
        l.startsWith('Gave back most of the profit: peak +8.0%, closed at +1.5% (kept 19%)'),
      ),
    );
    // kept 6 / 7 = 0.857
    const nearPeak = reflectOnTrade(makeTrade({ pnlPct: 6, mfePct: 7, maePct: -0.5 }));
    assert.equal(nearPeak.exitQuality, 'good');
    assert.ok(nearPeak.lessons.includes('Good exit: kept 86% of the +7.0% peak (closed at +6.0%).'));
  });

  test('a loss cut early by the model is a good exit', () => {
    const r = reflectOnTrade(makeTrade({ pnlPct: -1.5, mfePct: 0.4, maePct: -1.8 }));
    assert.equal(r.exitQuality, 'good');
    assert.ok(r.lessons.includes('The trade never got above +0.4% and the loss was cut early at -1.5%.'));
  });

  test('holding lessons start at 10 holds', () => {
    const held = (holds: number, pnlPct: number) =>
      reflectOnTrade(
        makeTrade({
          holds,
          pnlPct,
          mfePct: Math.max(pnlPct, 0.5),
          maePct: -3,
          exitTime: makeTrade().entryTime + 26 * HOUR,
        }),
      ).lessons;
    assert.ok(!held(9, -3).some((l) => l.includes('holds over')));
    assert.ok(
      held(10, -3).includes(
        'Held a losing trade through 10 holds over 1d 2h (closed at -3.0%); holding did not help, exit when the reason for the trade is gone.',
      ),
    );
    assert.ok(held(12, 0.5).some((l) => l.startsWith('12 holds over 1d 2h for only +0.5%')));
    assert.ok(held(12, 2).includes('Patience paid: 12 holds over 1d 2h for +2.0%.'));
  });

  test('every lesson is one short sentence that carries a number', () => {
    const reasons: CloseReason[] = [
      'model',
      'emergency_stop',
      'liquidation_buffer',
      'stop',
      'liquidation',
      'force_exit',
      'external',
    ];
    fc.assert(
      fc.property(
        fc.double({ min: -100, max: 60, noNaN: true }),
        fc.double({ min: 0, max: 80, noNaN: true }),
        fc.double({ min: -100, max: 0, noNaN: true }),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 0, max: 40 }),
        fc.constantFrom(...reasons),
        (pnlPct, mfePct, maePct, leverage, holds, exitReason) => {
          const r = reflectOnTrade(makeTrade({ pnlPct, mfePct, maePct, leverage, holds, exitReason }));
          for (const lesson of r.lessons) {
            assert.match(lesson, /\d/, lesson);
            assert.ok(lesson.length <= 220, lesson);
            assert.ok(!lesson.includes('NaN') && !lesson.includes('undefined'), lesson);
          }
          assert.equal(r.bucket, profitBucket(pnlPct));
        },
      ),
      { numRuns: 300 },
    );
  });
});
