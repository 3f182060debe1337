import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  EVALUATION_WEIGHTS,
  GRADE_CUTOFFS,
  efficiencyScore,
  evaluateTrade,
  gradeFor,
  profitScore,
  riskScore,
  timingScore,
  type Grade,
} from '../../../src/core/learning/evaluation';
import type { CloseReason } from '../../../src/core/types';
import { makeTrade } from './make-trade';

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: expected ${expected}, got ${actual}`);

describe('weights and grades', () => {
  test('the weights are the original 0.35 / 0.25 / 0.20 / 0.20 and sum to 1', () => {
    assert.deepEqual({ ...EVALUATION_WEIGHTS }, { profit: 0.35, risk: 0.25, timing: 0.2, efficiency: 0.2 });
    const sum = Object.values(EVALUATION_WEIGHTS).reduce((a, b) => a + b, 0);
    close(sum, 1, 'sum of weights');
  });

  test('every grade starts exactly at its cut-off and the value just below gets the next grade', () => {
    const expected: [Grade, number][] = [
      ['A+', 95],
      ['A', 90],
      ['A-', 85],
      ['B+', 80],
      ['B', 75],
      ['B-', 70],
      ['C+', 65],
      ['C', 60],
      ['C-', 55],
      ['D', 45],
      ['F', 0],
    ];
    assert.deepEqual(
      GRADE_CUTOFFS.map((c) => [c.grade, c.min]),
      expected,
    );
    for (let i = 0; i < expected.length; i += 1) {
      const [grade, min] = expected[i] ?? ['F', 0];
      assert.equal(gradeFor(min), grade, `total ${min}`);
      const next = expected[i + 1];
      if (next) assert.equal(gradeFor(min - 0.001), next[0], `total ${min - 0.001}`);
    }
    assert.equal(gradeFor(100), 'A+');
    assert.throws(() => gradeFor(Number.NaN), /gradeFor: total must be a finite number/);
  });
});

describe('component scores', () => {
  test('profit: 50 + 5 x pnlPct, clamped', () => {
    assert.equal(profitScore(0), 50);
    assert.equal(profitScore(6.2), 81); // 50 + 31
    assert.equal(profitScore(-4), 30); // 50 - 20
    assert.equal(profitScore(10), 100);
    assert.equal(profitScore(25), 100);
    assert.equal(profitScore(-10), 0);
    assert.equal(profitScore(-60), 0);
  });

  test('risk: MAE, leverage above 5x and protective exits cost points; a liquidation scores 0', () => {
    // 100 - 4 x 2.3 - 2 x (10 - 5) = 100 - 9.2 - 10 = 80.8
    close(riskScore({ maePct: -2.3, leverage: 10, exitReason: 'model' }), 80.8, 'model exit');
    // 100 - 4 x 5 - 2 x 3 - 30 = 44
    close(riskScore({ maePct: -5, leverage: 8, exitReason: 'emergency_stop' }), 44, 'emergency stop');
    // leverage at or under 5x is free
    assert.equal(riskScore({ maePct: 0, leverage: 5, exitReason: 'model' }), 100);
    // caps: MAE penalty 60 (not 4 x 20 = 80), leverage penalty 40 (not 2 x 95 = 190): 100 - 60 - 40 = 0
    assert.equal(riskScore({ maePct: -20, leverage: 100, exitReason: 'model' }), 0);
    // leverage cap alone: 100 - 40 = 60
    assert.equal(riskScore({ maePct: 0, leverage: 100, exitReason: 'model' }), 60);
    // 100 - 60 - 30 - 30 = -20, clamped
    assert.equal(riskScore({ maePct: -16, leverage: 20, exitReason: 'stop' }), 0);
    assert.equal(riskScore({ maePct: 0, leverage: 1, exitReason: 'liquidation' }), 0);
    // liquidation buffer is protective: 100 - 30
    assert.equal(riskScore({ maePct: 0, leverage: 1, exitReason: 'liquidation_buffer' }), 70);
    // the operator's force exit is not
    assert.equal(riskScore({ maePct: 0, leverage: 1, exitReason: 'force_exit' }), 100);
  });

  test('timing: favourable share of the total excursion, 50 without any', () => {
    close(timingScore(9.1, -2.3), (100 * 9.1) / 11.4, 'MFE 9.1, MAE -2.3');
    assert.equal(timingScore(3, -1), 75);
    assert.equal(timingScore(0, -4), 0);
    assert.equal(timingScore(4, 0), 100);
    assert.equal(timingScore(0, 0), 50);
  });

  test('efficiency: half kept share, half pace per hour (at least half an hour counted)', () => {
    const entryTime = 0;
    // kept = 100 x 6.2 / 9.1; pace = 50 + 25 x 6.2 / 5.5
    close(
      efficiencyScore({ pnlPct: 6.2, mfePct: 9.1, entryTime, exitTime: 5.5 * 3_600_000 }),
      0.5 * ((100 * 6.2) / 9.1) + 0.5 * (50 + (25 * 6.2) / 5.5),
      'winner',
    );
    // 10 minutes counted as 0.5 h: pace = 50 + 25 x 1 / 0.5 = 100; kept = 100 x 1 / 2 = 50
    assert.equal(efficiencyScore({ pnlPct: 1, mfePct: 2, entryTime, exitTime: 600_000 }), 75);
    // never in profit: kept 0; pace = 50 + 25 x (-3) / 10 = 42.5
    assert.equal(efficiencyScore({ pnlPct: -3, mfePct: 0, entryTime, exitTime: 10 * 3_600_000 }), 21.25);
    // closed at a loss after a peak: kept clamps to 0; pace = 50 - 25 x 2 / 2 = 25
    assert.equal(efficiencyScore({ pnlPct: -2, mfePct: 4, entryTime, exitTime: 2 * 3_600_000 }), 12.5);
  });
});

describe('evaluateTrade', () => {
  test('the default winner: total and grade by hand', () => {
    const e = evaluateTrade(makeTrade());
    const profit = 50 + 5 * 6.2; // 81
    const risk = 100 - 4 * 2.3 - 2 * (10 - 5); // 80.8
    const timing = (100 * 9.1) / (9.1 + 2.3); // 79.82
    const efficiency = 0.5 * ((100 * 6.2) / 9.1) + 0.5 * (50 + (25 * 6.2) / 5.5); // 73.16
    const total = 0.35 * profit + 0.25 * risk + 0.2 * timing + 0.2 * efficiency; // 79.15
    close(e.scores.profit, profit, 'profit');
    close(e.scores.risk, risk, 'risk');
    close(e.scores.timing, timing, 'timing');
    close(e.scores.efficiency, efficiency, 'efficiency');
    close(e.total, total, 'total');
    assert.equal(e.grade, 'B'); // 75 <= 79.15 < 80
    assert.equal(e.summary, 'Grade B (79.1/100): profit 81, risk 81, timing 80, efficiency 73.');
  });

  test('a clean, fast, low-leverage winner gets A+', () => {
    // profit 100; risk 100; timing 100; kept 100 x 12 / 12.5 = 96, pace 100 → efficiency 98
    // total = 35 + 25 + 20 + 0.2 x 98 = 99.6
    const e = evaluateTrade(
      makeTrade({ pnlPct: 12, mfePct: 12.5, maePct: 0, leverage: 5, exitTime: makeTrade().entryTime + 2 * 3_600_000 }),
    );
    close(e.total, 99.6, 'total');
    assert.equal(e.grade, 'A+');
  });

  test('a liquidation gets F', () => {
    const e = evaluateTrade(
      makeTrade({ pnlPct: -100, mfePct: 0.5, maePct: -100, leverage: 50, exitReason: 'liquidation' }),
    );
    assert.equal(e.scores.profit, 0);
    assert.equal(e.scores.risk, 0);
    assert.equal(e.grade, 'F');
  });

  test('scores and total stay within 0..100 for any valid trade', () => {
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
        fc.double({ min: -150, max: 300, noNaN: true }),
        fc.double({ min: 0, max: 300, noNaN: true }),
        fc.double({ min: -150, max: 0, noNaN: true }),
        fc.integer({ min: 1, max: 125 }),
        fc.integer({ min: 0, max: 30 * 24 * 3_600_000 }),
        fc.constantFrom(...reasons),
        (pnlPct, mfePct, maePct, leverage, durationMs, exitReason) => {
          const t = makeTrade({ pnlPct, mfePct, maePct, leverage, exitReason });
          const e = evaluateTrade({ ...t, exitTime: t.entryTime + durationMs });
          for (const v of [...Object.values(e.scores), e.total]) assert.ok(v >= 0 && v <= 100, `${v}`);
          assert.equal(e.grade, gradeFor(e.total));
        },
      ),
      { numRuns: 300 },
    );
  });
});
