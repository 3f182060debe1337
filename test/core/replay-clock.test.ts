import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReplayClock } from '../../src/core/replay-clock';

const MIN = 60_000;
const HOUR = 60 * MIN;
// 2025-06-01T00:00:00Z = 1748736000000 (20240 days x 86_400_000), a 30m boundary
const RECORDED = 1_748_736_000_000;
const WALL = 1_800_000_000_000;

describe('ReplayClock: speed', () => {
  const clock = new ReplayClock({ recordedStart: RECORDED, wallStart: WALL, secondsPerCandle: 2, timeframe: '30m' });

  test('one 30m candle per 2 wall seconds (900x)', () => {
    assert.equal(clock.speed, 900); // 1_800_000 recorded ms / 2_000 wall ms
    assert.equal(clock.recordedTime(WALL), RECORDED);
    assert.equal(clock.recordedTime(WALL + 2_000), RECORDED + 30 * MIN);
    assert.equal(clock.recordedTime(WALL + 1_000), RECORDED + 15 * MIN); // half a candle
    assert.equal(clock.recordedTime(WALL + 1), RECORDED + 900); // 1 wall ms = 900 recorded ms
    // a day of recorded data (48 candles) takes 96 wall seconds
    assert.equal(clock.recordedTime(WALL + 96_000), RECORDED + 24 * HOUR);
    assert.equal(clock.wallTime(RECORDED + 24 * HOUR), WALL + 96_000);
  });

  test('candle closes map to whole multiples of secondsPerCandle', () => {
    for (let k = -3; k <= 10; k++) {
      assert.equal(clock.wallTime(RECORDED + k * 30 * MIN), WALL + k * 2_000, `candle ${k}`);
    }
  });

  test('wallTime is the first wall millisecond at which the recorded time has been reached', () => {
    // recorded +1000 ms needs ceil(1000 / 900) = 2 wall ms; at 1 wall ms the replay is only at +900
    assert.equal(clock.wallTime(RECORDED + 1_000), WALL + 2);
    assert.equal(clock.recordedTime(WALL + 1), RECORDED + 900);
    assert.equal(clock.recordedTime(WALL + 2), RECORDED + 1_800);
  });

  test('nextClose: the next 30m close after the current recorded time, and when the replay reaches it', () => {
    // at WALL + 500: recorded = RECORDED + 450_000 (7.5 min into the candle) -> next close RECORDED + 30 min
    assert.deepEqual(clock.nextClose(WALL + 500), { recorded: RECORDED + 30 * MIN, wall: WALL + 2_000 });
    // exactly at a close the next one is a full candle later
    assert.deepEqual(clock.nextClose(WALL + 2_000), { recorded: RECORDED + 60 * MIN, wall: WALL + 4_000 });
  });

  test('a non-whole number of wall ms per candle is exact at boundaries (0.007 s = 7 ms, not 7.000000000000001)', () => {
    const fast = new ReplayClock({
      recordedStart: RECORDED,
      wallStart: WALL,
      secondsPerCandle: 0.007,
      timeframe: '30m',
    });
    assert.equal(fast.recordedTime(WALL + 7), RECORDED + 30 * MIN);
    assert.equal(fast.recordedTime(WALL + 6), RECORDED + Math.floor((6 * 30 * MIN) / 7)); // 1_542_857
    assert.equal(fast.wallTime(RECORDED + 30 * MIN), WALL + 7);
  });

  test('a recorded start off the candle grid still closes candles on the UTC grid', () => {
    const offGrid = new ReplayClock({
      recordedStart: RECORDED + 10 * MIN,
      wallStart: WALL,
      secondsPerCandle: 3,
      timeframe: '30m',
    });
    // next close is RECORDED + 30 min, 20 recorded minutes after the start = 2/3 of a candle = 2 wall seconds
    assert.deepEqual(offGrid.nextClose(WALL), { recorded: RECORDED + 30 * MIN, wall: WALL + 2_000 });
  });

  test('rejects bad options with the field name', () => {
    const base = { recordedStart: RECORDED, wallStart: WALL, secondsPerCandle: 2, timeframe: '30m' };
    assert.throws(() => new ReplayClock({ ...base, secondsPerCandle: 0 }), /secondsPerCandle must be/);
    assert.throws(() => new ReplayClock({ ...base, secondsPerCandle: Number.NaN }), /secondsPerCandle must be/);
    assert.throws(() => new ReplayClock({ ...base, recordedStart: 1.5 }), /recordedStart must be an integer/);
    assert.throws(() => new ReplayClock({ ...base, wallStart: Number.POSITIVE_INFINITY }), /wallStart must be/);
    assert.throws(() => new ReplayClock({ ...base, timeframe: '30' }), /invalid timeframe "30"/);
    assert.throws(() => new ReplayClock(base).recordedTime(Number.NaN), /needs a wall time/);
  });
});

describe('ReplayClock: properties', () => {
  const TF_MS: Record<string, number> = {
    '1m': 60_000,
    '5m': 300_000,
    '30m': 1_800_000,
    '1h': 3_600_000,
    '4h': 14_400_000,
    '1d': 86_400_000,
  };
  const clockArb = fc.record({
    recordedStart: fc.integer({ min: 1_500_000_000_000, max: 1_800_000_000_000 }),
    wallStart: fc.integer({ min: 1_700_000_000_000, max: 2_000_000_000_000 }),
    // 1 ms .. 100 s per candle, at microsecond resolution
    secondsPerCandle: fc.integer({ min: 1_000, max: 100_000_000 }).map((us) => us / 1e6),
    timeframe: fc.constantFrom(...Object.keys(TF_MS)),
  });
  // a position along the replay, in candles: up to 100k candles either side of the start
  const candlesArb = fc.double({ min: -100_000, max: 100_000, noNaN: true });

  test('recordedTime is non-decreasing and advances by timeframe per secondsPerCandle', () => {
    fc.assert(
      fc.property(clockArb, candlesArb, candlesArb, (opts, x, y) => {
        const clock = new ReplayClock(opts);
        const wallPerCandle = opts.secondsPerCandle * 1000;
        const a = Math.floor(x * wallPerCandle);
        const b = Math.floor(y * wallPerCandle);
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        assert.ok(clock.recordedTime(opts.wallStart + lo) <= clock.recordedTime(opts.wallStart + hi));
        // reference: exact rational maths with BigInt (wall microseconds per candle is an integer here)
        const us = BigInt(Math.round(opts.secondsPerCandle * 1e6));
        const num = BigInt(a) * BigInt(TF_MS[opts.timeframe]!) * 1000n;
        const floor = num / us - (num % us !== 0n && num < 0n ? 1n : 0n);
        assert.equal(clock.recordedTime(opts.wallStart + a), opts.recordedStart + Number(floor));
      }),
      { numRuns: 500 },
    );
  });

  test('round trip: wallTime(r) is the least wall ms reaching r, and recordedTime(wallTime(r)) - r < speed + 1', () => {
    fc.assert(
      fc.property(clockArb, candlesArb, (opts, x) => {
        const clock = new ReplayClock(opts);
        const r = opts.recordedStart + Math.floor(x * TF_MS[opts.timeframe]!);
        const w = clock.wallTime(r);
        assert.ok(clock.recordedTime(w) >= r, 'the replay has reached r at wallTime(r)');
        assert.ok(clock.recordedTime(w - 1) < r, 'one wall ms earlier it had not');
        assert.ok(clock.recordedTime(w) - r < clock.speed + 1);
        // and from the wall side: wallTime(recordedTime(w)) <= w
        const w2 = opts.wallStart + Math.floor(x * opts.secondsPerCandle * 1000);
        assert.ok(clock.wallTime(clock.recordedTime(w2)) <= w2);
      }),
      { numRuns: 500 },
    );
  });
});
