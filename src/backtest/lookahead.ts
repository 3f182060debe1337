/**
 * The look-ahead check: does anything after a decision's time reach the decision?
 *
 * Snapshots are asOf-bounded by construction, so what this verifies is the whole data path as the backtest runs it —
 * CSV loading, aggregation (4h from 1h), the precomputed indicator series, `snapshotAt` and the engine's snapshot
 * memo, funding, the ledger's candle processing, the context builder — and the policy itself.
 *
 * How: during the run, a documented number of pair-cycles spread evenly over the run (see `sampleIndexes` in
 * engine.ts) are captured with everything that went in (the pair's state, the whole paper account at the start of the
 * decision time with every pair's candles the ledger then processed, the account at the pair's turn to trade, the
 * closed trades and decisions the learning context reads) and everything that came out (the cycle's events). Each is then rerun —
 * the real `runCycle` with the same in-process steps — on a market in which every candle that closes after the
 * cycle's time is replaced by absurd values (prices × 1000, negative volume; in every timeframe, so aggregated
 * candles are corrupted through their constituents) and every later funding rate by 0.5 (50 % per interval). The
 * indicator series are recomputed from that corrupted history. The rerun must produce identical events: the same
 * decision, verdict, orders and closed trades, and the same input to the provider (snapshot, prompt, position).
 *
 * The policy is rebuilt over the corrupted market (`BacktestPolicy.provider(market)`), so a policy that reads the
 * market behind the engine's back is caught too. For a remote model the prompt is compared and the recorded answer
 * reused: an identical prompt gets the identical cached answer, and nothing is asked of the model again.
 */
import type { Config } from '../core/config';
import { runCycle, type CycleEvent } from '../core/cycle';
import type { FundingEvent } from '../core/snapshot';
import { timeframeMs } from '../core/timeframe';
import type { Candle } from '../core/types';
import { RecordedMarketSource, type RecordedData } from '../exchange/market-source';
import { PaperLedger } from '../exchange/paper-ledger';
import type { DecisionProvider, ProviderDecision } from '../llm/provider';
import {
  createSession,
  loadPairs,
  settingsFor,
  snapshotOptionsFor,
  type CycleCapture,
  type PairRuntime,
} from './engine';
import type { BacktestPolicy } from './policy';
import type { LookaheadMismatch, LookaheadReport } from './result';

/** Factor applied to every price of a candle closing after the decision time. */
export const FUTURE_PRICE_FACTOR = 1000;
/** Funding rate given to every funding event after the decision time (fraction per interval). */
export const FUTURE_FUNDING_RATE = 0.5;

export const CORRUPTION_DESCRIPTION =
  `every candle closing after the decision time (all timeframes): prices x${FUTURE_PRICE_FACTOR}, volume negative; ` +
  `every later funding rate: ${FUTURE_FUNDING_RATE}`;

/** Longest rendering of a differing value in a mismatch. */
const VALUE_MAX_CHARS = 160;

function corrupt(c: Candle): Candle {
  const f = FUTURE_PRICE_FACTOR;
  return {
    time: c.time,
    open: c.open * f,
    high: c.high * f,
    low: c.low * f,
    close: c.close * f,
    volume: -c.volume - 1,
  };
}

/**
 * The recorded data of `source` as it would look if everything after `asOf` (Unix ms) were absurd: candles closing
 * after `asOf` (close time = open time + timeframe) are corrupted, so are funding events after `asOf` (see
 * {@link CORRUPTION_DESCRIPTION}). Recorded timeframes only: a `RecordedMarketSource` over it aggregates the others
 * from these corrupted candles.
 */
export function corruptedAfter(source: RecordedMarketSource, asOf: number): RecordedData {
  return {
    description: `${source.data.description} with everything after ${new Date(asOf).toISOString()} corrupted`,
    timeframes: (pair) => source.data.timeframes(pair),
    async loadCandles(pair, timeframe) {
      const ms = timeframeMs(timeframe);
      return (await source.history(pair, timeframe)).map((c) => (c.time + ms > asOf ? corrupt(c) : c));
    },
    async loadFunding(pair): Promise<FundingEvent[]> {
      return (await source.fundingHistory(pair)).map((e) =>
        e.time > asOf ? { time: e.time, rate: FUTURE_FUNDING_RATE } : e,
      );
    },
  };
}

/** The comparable content of a cycle's events (no latency, no object identity). */
function digest(events: readonly CycleEvent[]): unknown[] {
  return events.map((ev) => {
    switch (ev.type) {
      case 'decision': {
        const { record, result, verdict, context, clientOrderId } = ev;
        return {
          type: ev.type,
          input: context
            ? { snapshot: context.snapshot, position: context.position, messages: context.messages }
            : null,
          record,
          decision: result ? result.decision : null,
          source: result ? result.source : null,
          verdict,
          clientOrderId,
        };
      }
      case 'order':
        return {
          type: ev.type,
          intent: ev.intent,
          execution: {
            status: ev.execution.status,
            error: ev.execution.error,
            fills: ev.execution.fills.map((f) => ({ side: f.side, price: f.price, quantity: f.quantity, fee: f.fee })),
            position: ev.execution.position,
          },
        };
      case 'tradeClosed':
        return { type: ev.type, trade: ev.trade };
    }
  });
}

function render(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > VALUE_MAX_CHARS ? `${text.slice(0, VALUE_MAX_CHARS - 3)}...` : text;
}

/**
 * The first place where two JSON-like values differ, as a path (`[0].input.snapshot.price`) with both values; null
 * when they are equal. Numbers are compared with `Object.is` (so NaN equals NaN and 0 differs from -0).
 */
export function firstDifference(a: unknown, b: unknown, path = ''): { path: string; a: unknown; b: unknown } | null {
  if (Object.is(a, b)) return null;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return { path, a, b };
  if (Array.isArray(a) !== Array.isArray(b)) return { path, a, b };
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ra), ...Object.keys(rb)])];
  for (const k of keys) {
    const d = firstDifference(ra[k], rb[k], path ? `${path}.${k}` : k);
    if (d) return d;
  }
  return null;
}

/** A provider that answers with the decision the original cycle recorded (for remote models; see the module doc). */
function recordedAnswer(events: readonly CycleEvent[]): DecisionProvider {
  const recorded = events.find((e) => e.type === 'decision' && e.result !== null);
  return {
    name: 'recorded',
    decide(): Promise<ProviderDecision> {
      if (!recorded || recorded.type !== 'decision' || recorded.result === null) {
        return Promise.reject(
          new Error('the rerun asked the model for a decision where the original cycle asked none'),
        );
      }
      return Promise.resolve(recorded.result);
    },
  };
}

/** Reruns one captured pair-cycle on the corrupted market; null when identical, else the first difference. */
async function recheck(
  capture: CycleCapture,
  config: Config,
  market: RecordedMarketSource,
  policy: BacktestPolicy,
): Promise<LookaheadMismatch | null> {
  const asOf = capture.tick.asOf;
  const corrupted = new RecordedMarketSource(corruptedAfter(market, asOf));
  const runtimes: Map<string, PairRuntime> = await loadPairs(corrupted, config, [capture.pair]);
  const session = createSession({
    config,
    ledger: PaperLedger.restore(config.paper, capture.open.ledger),
    pairs: runtimes,
    provider: policy.remote ? recordedAnswer(capture.events) : policy.provider(corrupted),
    prompt: policy.context === 'prompt' ? await import('../llm/context-builder') : null,
    snapshotOptions: snapshotOptionsFor(config, policy.context),
    closedTrades: capture.closedTrades.slice(),
    learningDecisions: new Map([...capture.learningDecisions].map(([k, v]) => [k, v.slice()])),
  });
  const original = digest(capture.events);
  let rerun: unknown[];
  try {
    // the decision time's start as the run had it: the other pairs' candles replayed as the run processed them, this
    // pair's read again from the corrupted data; then the account as it was at this pair's turn
    session.openTime(
      asOf,
      capture.open.entries.map((e) => (e.pair === capture.pair ? { pair: e.pair, since: e.since } : e)),
    );
    session.useAccount(
      PaperLedger.restore(config.paper, capture.turn?.ledger ?? capture.open.ledger),
      capture.turn ? structuredClone(capture.turn.book) : undefined,
    );
    rerun = digest((await runCycle(session.steps, capture.state, capture.tick, settingsFor(config))).events);
  } catch (err) {
    return {
      pair: capture.pair,
      time: asOf,
      kind: 'decision',
      path: '(cycle)',
      original: `completed with ${capture.events.length} events`,
      rerun: `failed: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  const d = firstDifference(original, rerun);
  if (!d) return null;
  return {
    pair: capture.pair,
    time: asOf,
    kind: /^\[\d+\]\.input\b/.test(d.path) ? 'input' : 'decision',
    path: `events${d.path}`,
    original: render(d.a),
    rerun: render(d.b),
  };
}

/**
 * Reruns every captured pair-cycle with the future corrupted and reports the differences (see the module doc).
 * `captures` come from the policy's run (`simulate` with `captureAt`).
 */
export async function checkLookahead(input: {
  config: Config;
  market: RecordedMarketSource;
  policy: BacktestPolicy;
  captures: readonly CycleCapture[];
}): Promise<LookaheadReport> {
  const mismatches: LookaheadMismatch[] = [];
  for (const capture of input.captures) {
    const m = await recheck(capture, input.config, input.market, input.policy);
    if (m) mismatches.push(m);
  }
  return {
    samples: input.captures.length,
    corruption: CORRUPTION_DESCRIPTION,
    passed: mismatches.length === 0,
    mismatches,
  };
}
