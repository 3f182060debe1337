/**
 * The replay clock: maps wall-clock time to recorded market time, so recorded candles can be served as if they were
 * live, one main-timeframe candle every `secondsPerCandle` wall seconds (e.g. a 30m candle every 2 s = 900x).
 *
 * Pure: no I/O, no clock of its own; safe to import from workflow code, which passes its deterministic `Date.now()`.
 * Times are Unix milliseconds, UTC.
 *
 * Mapping (linear, anchored at `wallStart` ↔ `recordedStart`), computed exactly in integer arithmetic:
 *   recordedTime(w) = recordedStart + floor((w - wallStart) × timeframeMs / (secondsPerCandle × 1000))
 *   wallTime(r)     = the least whole wall millisecond w with recordedTime(w) >= r
 * So after sleeping until `wallTime(close)` a workflow always sees `recordedTime(now) >= close`: the candle that
 * closes at `close` has closed in recorded time, never "almost". `secondsPerCandle` is taken to the nearest
 * nanosecond.
 */
import { nextCloseAfter, timeframeMs } from './timeframe';

export interface ReplayClockOptions {
  /** recorded time (Unix ms) that corresponds to `wallStart`; usually a main-timeframe candle close */
  recordedStart: number;
  /** wall time (Unix ms) at which the replay starts */
  wallStart: number;
  /** wall-clock seconds per main-timeframe candle; > 0 (e.g. 2 → a 30m candle every 2 s) */
  secondsPerCandle: number;
  /** the main timeframe, e.g. `30m` */
  timeframe: string;
}

/** A main-timeframe candle close, in recorded time and in the wall time at which the replay reaches it. */
export interface ReplayInstant {
  recorded: number;
  wall: number;
}

const NS_PER_MS = 1_000_000n;

/** floor(a / b) for b > 0 (BigInt division truncates toward zero). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

export class ReplayClock {
  readonly recordedStart: number;
  readonly wallStart: number;
  readonly secondsPerCandle: number;
  readonly timeframe: string;
  /** recorded milliseconds per wall millisecond (e.g. 1_800_000 / 2_000 = 900) */
  readonly speed: number;
  /** timeframe length in ns-of-ms units: recorded ms per candle × 1e6 */
  private readonly recordedPerCandle: bigint;
  /** wall nanoseconds per candle */
  private readonly wallNsPerCandle: bigint;

  /**
   * @throws Error when a time is not a safe integer, `secondsPerCandle` is not a finite number >= 1e-9, or
   *   `timeframe` is not a timeframe such as `30m`.
   */
  constructor(options: ReplayClockOptions) {
    const { recordedStart, wallStart, secondsPerCandle, timeframe } = options;
    if (!Number.isSafeInteger(recordedStart)) {
      throw new Error(`ReplayClock recordedStart must be an integer of Unix milliseconds, got ${recordedStart}`);
    }
    if (!Number.isSafeInteger(wallStart)) {
      throw new Error(`ReplayClock wallStart must be an integer of Unix milliseconds, got ${wallStart}`);
    }
    const wallNs = Math.round(secondsPerCandle * 1e9);
    if (!Number.isFinite(secondsPerCandle) || !Number.isSafeInteger(wallNs) || wallNs < 1) {
      throw new Error(
        `ReplayClock secondsPerCandle must be a finite number of seconds >= 1e-9 (e.g. 2), got ${secondsPerCandle}`,
      );
    }
    const tfMs = timeframeMs(timeframe);
    this.recordedStart = recordedStart;
    this.wallStart = wallStart;
    this.secondsPerCandle = secondsPerCandle;
    this.timeframe = timeframe;
    this.speed = (tfMs * 1e6) / wallNs;
    this.recordedPerCandle = BigInt(tfMs) * NS_PER_MS;
    this.wallNsPerCandle = BigInt(wallNs);
  }

  /**
   * The recorded time (Unix ms, whole) that wall time `wallMs` maps to (a fractional `wallMs` is floored first).
   * Non-decreasing in `wallMs`; before `wallStart` it maps to times before `recordedStart` along the same line.
   */
  recordedTime(wallMs: number): number {
    if (!Number.isFinite(wallMs))
      throw new Error(`ReplayClock.recordedTime needs a wall time in Unix ms, got ${wallMs}`);
    const elapsed = BigInt(Math.floor(wallMs) - this.wallStart);
    return this.safe(
      this.recordedStart + Number(floorDiv(elapsed * this.recordedPerCandle, this.wallNsPerCandle)),
      'recordedTime',
      wallMs,
    );
  }

  /**
   * The least whole wall millisecond `w` with `recordedTime(w) >= recordedMs`: when the replay reaches recorded time
   * `recordedMs`. At candle boundaries with a whole number of wall ms per candle it is exact:
   * `wallTime(recordedStart + k × timeframe) = wallStart + k × secondsPerCandle × 1000`.
   */
  wallTime(recordedMs: number): number {
    if (!Number.isFinite(recordedMs)) {
      throw new Error(`ReplayClock.wallTime needs a recorded time in Unix ms, got ${recordedMs}`);
    }
    const ahead = BigInt(Math.ceil(recordedMs) - this.recordedStart);
    // least x with floor(x × R / W) >= ahead  <=>  x × R >= ahead × W  <=>  x = ceil(ahead × W / R)
    return this.safe(
      this.wallStart + Number(-floorDiv(-ahead * this.wallNsPerCandle, this.recordedPerCandle)),
      'wallTime',
      recordedMs,
    );
  }

  private safe(result: number, fn: string, input: number): number {
    if (!Number.isSafeInteger(result)) {
      throw new Error(`ReplayClock.${fn}(${input}) is out of range (${result}): the input is too far from the start`);
    }
    return result;
  }

  /**
   * The next main-timeframe candle close strictly after the recorded time of `wallMs`, and when the replay reaches
   * it: what a replaying workflow sleeps until. Candle closes are on the timeframe's UTC grid (see timeframe.ts).
   */
  nextClose(wallMs: number): ReplayInstant {
    const recorded = nextCloseAfter(this.recordedTime(wallMs), this.timeframe);
    return { recorded, wall: this.wallTime(recorded) };
  }
}
