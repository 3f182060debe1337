import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  appendReward,
  computeReward,
  emptyRewardHistory,
  rewardForTrade,
  rewardStats,
  type RewardEntry,
  type RewardHistory,
} from '../../../src/core/learning/reward';
import { makeTrade } from './make-trade';

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: expected ${expected}, got ${actual}`);

const reward = (pnlPct: number, leverage: number, tradeScore: number | null) =>
  computeReward({ pnlPct, leverage, tradeScore }).reward;

const scoreArb = fc.option(fc.integer({ min: 0, max: 100 }), { nil: null });

describe('computeReward: the stated formula', () => {
  test('a calibrated winner at 10x', () => {
    // m = 10 / 10 = 1 %; q = 1 / 2 = 0.5; c = 1 - |0.5 - 0.5| = 1
    // argument = 1/2 + 0.25 x (1 - 0.5) - 0.05 x ln 10 = 0.625 - 0.11513 = 0.50987
    const r = computeReward({ pnlPct: 10, leverage: 10, tradeScore: 50 });
    close(r.priceMovePct, 1, 'm');
    close(r.outcomeQuality, 0.5, 'q');
    close(r.calibration ?? NaN, 1, 'c');
    close(r.profitTerm, 0.5, 'profit term');
    close(r.calibrationTerm, 0.125, 'calibration term');
    close(r.riskPenalty, 0.05 * Math.log(10), 'risk penalty');
    close(r.reward, Math.tanh(0.625 - 0.05 * Math.log(10)), 'reward');
  });

  test('a protective exit has no score: neutral calibration', () => {
    // m = -15 / 10 = -1.5; q = 0; argument = -0.75 + 0 - 0.05 ln 10
    const r = computeReward({ pnlPct: -15, leverage: 10, tradeScore: null });
    assert.equal(r.calibration, null);
    assert.equal(r.calibrationTerm, 0);
    close(r.reward, Math.tanh(-0.75 - 0.05 * Math.log(10)), 'reward');
  });

  test('an over-rated loser: q = 0 so a score of 90 has calibration 0.1', () => {
    // m = -5 / 5 = -1; c = 1 - 0.9 = 0.1; argument = -0.5 + 0.25 x (0.1 - 0.5) - 0.05 ln 5 = -0.6 - 0.05 ln 5
    const r = computeReward({ pnlPct: -5, leverage: 5, tradeScore: 90 });
    close(r.calibration ?? NaN, 0.1, 'c');
    close(r.reward, Math.tanh(-0.6 - 0.05 * Math.log(5)), 'reward');
  });

  test('q saturates at a 2 % price move', () => {
    // m = 30 / 10 = 3 % > 2 %: q = 1
    assert.equal(computeReward({ pnlPct: 30, leverage: 10, tradeScore: 100 }).outcomeQuality, 1);
  });

  test('rewardForTrade reads pnlPct, leverage and tradeScore from the trade', () => {
    const t = makeTrade({ pnlPct: 8, leverage: 4, tradeScore: 70 });
    assert.deepEqual(rewardForTrade(t), computeReward({ pnlPct: 8, leverage: 4, tradeScore: 70 }));
    assert.throws(() => rewardForTrade({ ...t, leverage: 0 }), /rewardForTrade: trade trade-1/);
  });

  test('invalid inputs are rejected with the field and the allowed range', () => {
    assert.throws(() => reward(Number.NaN, 5, 50), /pnlPct must be a finite number, got NaN/);
    assert.throws(() => reward(1, 0.5, 50), /leverage must be a finite number >= 1, got 0\.5/);
    assert.throws(() => reward(1, 5, 101), /tradeScore must be in 0\.\.100 or null/);
    assert.throws(() => reward(1, 5, -1), /tradeScore must be in 0\.\.100 or null/);
  });
});

describe('computeReward: properties', () => {
  // PnL in hundredths of a percent so that two draws differ by at least 0.01 %
  const pnlArb = fc.integer({ min: -20_000, max: 20_000 }).map((x) => x / 100);
  const leverageArb = fc.integer({ min: 1, max: 125 });

  test('bounded in [-1, 1] for any valid input', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.double({ min: 1, max: 1000, noNaN: true }),
        scoreArb,
        (p, l, s) => {
          const r = reward(p, l, s);
          assert.ok(r >= -1 && r <= 1, `${r}`);
        },
      ),
    );
  });

  test('increasing in profit at a fixed leverage and score', () => {
    fc.assert(
      fc.property(pnlArb, pnlArb, leverageArb, scoreArb, (a, b, leverage, score) => {
        fc.pre(a !== b);
        const [lo, hi] = a < b ? [a, b] : [b, a];
        // strictly increasing while |m| <= 10 %; beyond that tanh may round to ±1 and only >= can hold
        const strict = Math.abs(hi / leverage) <= 10 && Math.abs(lo / leverage) <= 10;
        const rLo = reward(lo, leverage, score);
        const rHi = reward(hi, leverage, score);
        assert.ok(
          strict ? rHi > rLo : rHi >= rLo,
          `pnl ${lo} → ${rLo}, ${hi} → ${rHi} at ${leverage}x, score ${score}`,
        );
      }),
      { numRuns: 500 },
    );
  });

  test('a higher score on a losing (or flat) trade never raises the reward', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -20_000, max: 0 }).map((x) => x / 100),
        leverageArb,
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        (pnl, leverage, s1, s2) => {
          fc.pre(s1 !== s2);
          const [lo, hi] = s1 < s2 ? [s1, s2] : [s2, s1];
          const strict = Math.abs(pnl / leverage) <= 10;
          const rLo = reward(pnl, leverage, lo);
          const rHi = reward(pnl, leverage, hi);
          assert.ok(
            strict ? rHi < rLo : rHi <= rLo,
            `pnl ${pnl} at ${leverage}x: score ${lo} → ${rLo}, ${hi} → ${rHi}`,
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  test('on a winner, the score that matches the outcome quality beats over- and under-rating', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }).map((x) => x / 100),
        leverageArb,
        fc.integer({ min: 0, max: 100 }),
        (pnl, leverage, s) => {
          const q = Math.min(1, pnl / leverage / 2);
          assert.ok(reward(pnl, leverage, 100 * q) >= reward(pnl, leverage, s));
        },
      ),
      { numRuns: 300 },
    );
    // concretely: a 0.5 % price move (q = 0.25) rated 100 earns less than the same trade rated 25
    assert.ok(reward(5, 10, 100) < reward(5, 10, 25));
  });

  test('the same price move at a higher leverage earns less', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1000, max: 1000 }).map((x) => x / 100),
        leverageArb,
        leverageArb,
        scoreArb,
        (move, l1, l2, score) => {
          fc.pre(l1 !== l2);
          const [lo, hi] = l1 < l2 ? [l1, l2] : [l2, l1];
          // pnlPct = leverage x price move
          const rLo = reward(lo * move, lo, score);
          const rHi = reward(hi * move, hi, score);
          assert.ok(rHi < rLo, `move ${move} %: ${lo}x → ${rLo}, ${hi}x → ${rHi}`);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('reward history', () => {
  const entry = (i: number, r: number): RewardEntry => ({
    tradeId: `t${i}`,
    pair: 'ETH/USDT:USDT',
    time: 1_700_000_000_000 + i * 3_600_000,
    reward: r,
    pnlPct: r * 10,
    leverage: 5,
    tradeScore: 50,
  });
  const build = (rewards: number[], cap?: number) =>
    rewards.reduce<RewardHistory>((h, r, i) => appendReward(h, entry(i, r), cap), emptyRewardHistory());

  test('append returns a new history and leaves the input untouched', () => {
    const empty = emptyRewardHistory();
    const one = appendReward(empty, entry(0, 0.3));
    assert.deepEqual(empty, { entries: [], count: 0, total: 0 });
    assert.equal(one.entries.length, 1);
    assert.equal(one.count, 1);
    assert.equal(one.total, 0.3);
  });

  test('appending the same trade twice counts it once', () => {
    const h = appendReward(appendReward(emptyRewardHistory(), entry(0, 0.3)), entry(0, 0.3));
    assert.equal(h.count, 1);
    assert.equal(h.entries.length, 1);
  });

  test('the cap drops the oldest entries but all-time count and total keep them', () => {
    const h = build([0.1, 0.2, 0.3, 0.4, 0.5], 3);
    assert.deepEqual(
      h.entries.map((e) => e.tradeId),
      ['t2', 't3', 't4'],
    );
    assert.equal(h.count, 5);
    close(h.total, 1.5, 'total'); // 0.1 + 0.2 + 0.3 + 0.4 + 0.5
    close(rewardStats(h).mean ?? NaN, 0.3, 'all-time mean'); // 1.5 / 5
    assert.throws(() => appendReward(h, entry(9, 0.1), 0), /cap must be a positive integer, got 0/);
    assert.throws(() => appendReward(h, entry(9, Number.NaN)), /reward of trade t9 must be a finite number/);
  });

  test('stats of an empty history', () => {
    assert.deepEqual(rewardStats(emptyRewardHistory()), {
      count: 0,
      total: 0,
      mean: null,
      last10Mean: null,
      trendDelta: null,
      trend: 'insufficient_data',
    });
  });

  test('a trend needs two windows of at least 2 entries', () => {
    assert.equal(rewardStats(build([0.1, 0.5, 0.9])).trend, 'insufficient_data');
    // w = 2: recent [0.2, 0.2] vs previous [0, 0] → delta 0.2 > 0.05
    const up = rewardStats(build([0, 0, 0.2, 0.2]));
    close(up.trendDelta ?? NaN, 0.2, 'delta');
    assert.equal(up.trend, 'improving');
    close(up.last10Mean ?? NaN, 0.1, 'last 10 mean'); // (0 + 0 + 0.2 + 0.2) / 4
    // w = 2: recent [0.1, 0.1] vs previous [0.2, 0.2] → delta -0.1
    assert.equal(rewardStats(build([0.2, 0.2, 0.1, 0.1])).trend, 'declining');
    // delta 0.04 is within ±0.05
    assert.equal(rewardStats(build([0, 0, 0.04, 0.04])).trend, 'flat');
  });

  test('with 25 entries: last 10 versus the 10 before', () => {
    // rewards 0.00, 0.01, ..., 0.24
    const rewards = Array.from({ length: 25 }, (_, i) => i / 100);
    const s = rewardStats(build(rewards));
    assert.equal(s.count, 25);
    // last 10: 0.15..0.24, mean 0.195; previous 10: 0.05..0.14, mean 0.095
    close(s.last10Mean ?? NaN, 0.195, 'last 10 mean');
    close(s.trendDelta ?? NaN, 0.1, 'delta');
    assert.equal(s.trend, 'improving');
    close(s.mean ?? NaN, 0.12, 'mean'); // (0 + 0.24) / 2
  });
});
