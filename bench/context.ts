/**
 * Context-builder bench: prompt size (o200k tokens of system + user + tools as sent) and build time, for BTC and ETH
 * at 20 decision times each, with the four timeframes 30m, 1h, 4h, 1d, at the default budgets: 2500 tokens when flat
 * (context.max_context_tokens), 3000 in a position (context.max_position_context_tokens).
 *
 * Scenarios (all from the recorded data in ../shared/data):
 * - entry: flat, an account with no position, the last 5 decisions were waits, and a learning section.
 * - position: a position opened 10 main candles before the decision time, on the side the 30m EMA20/EMA50 pointed to
 *   then, 5x, 1000 USDT margin, with its tracker (MFE/MAE from the highs and lows since entry, 9 holds, fees), its
 *   entry-time market state, the entry decision and 9 holds in the decision history, and a learning section.
 * - learning section (both): 12 closed trades of the pair in the 30 days before the decision time, built from real
 *   prices (entries every 2.5 days, held 6-19 candles, MFE/MAE from highs and lows, the emergency stop when the
 *   adverse excursion reached it), turned into recent trades with lessons, a 30-day summary and patterns by
 *   `buildLearningContext`; in the position scenario, the two warnings (loop, no progress) that `decisionWarnings`
 *   raises on a stalled decision history (11 holds repeating one reason with the PnL within 1 point).
 *
 * Timing: each (pair, kind, time) context is built 25 times, after a warm-up of every (pair, kind) on 40 other
 * times; "build ms" is the wall time of `buildDecisionContextWithLayout` (rendering, per-section token counting,
 * budget fitting), garbage collection pauses included (the bench's own checks run after the timed builds, so only
 * the builds' garbage brings on collections during them). "first" is the slowest first build of each decision time
 * (fresh strings for the tokenizer). "unwarmed" is the first build of the (pair, kind) in the process, before any
 * warm-up: the first row's is what a freshly started worker pays once (module set-up, tokenizer tables, JIT).
 * "recount ms" is the time of one exact count of the final messages + tools, which the builder does NOT do (its
 * per-section sum is exact); it is shown for reference only.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ConfigSchema, type Config } from '../src/core/config';
import type { DecisionRecord } from '../src/core/cycle';
import type { DecisionRecord as WarningRecord } from '../src/core/learning';
import { leveragedReturn, liquidationPrice, updateExcursions } from '../src/core/position';
import { stopPriceFor } from '../src/core/risk';
import { buildPairSeriesCache, snapshotAt, type PairSeriesCache } from '../src/core/snapshot';
import { aggregateCandles, closedCount } from '../src/core/timeframe';
import type { AccountSnapshot, Candle, ClosedTrade, MarketSnapshot, PositionState, Side } from '../src/core/types';
import {
  buildDecisionContextWithLayout,
  buildLearningContext,
  countPromptTokens,
  type ContextBuildRequest,
  type LearningContext,
} from '../src/llm/context-builder';
import { marketStateOf } from '../src/core/cycle';
import { dataFile, fundingFile, readCandleCsv, readFundingCsv } from '../src/store/csv-candles';

const DATA_DIR = path.resolve(process.cwd(), '../shared/data/binanceusdm');
const PAIRS = ['BTC/USDT:USDT', 'ETH/USDT:USDT'];
const MAIN = '30m';
const MAIN_MS = 30 * 60_000;
const DAY_MS = 24 * 3_600_000;
const DECISION_TIMES = 20;
const REPEATS = 25;
/** decision times of the warm-up (other than the measured ones), each built REPEATS times */
const WARM_UP_TIMES = 40;
const TAKER_FEE = 0.0005;
const MMR = 0.005;

interface PairData {
  pair: string;
  cache: PairSeriesCache;
  m30: Candle[];
}

async function loadPair(pair: string): Promise<PairData> {
  const m30 = await readCandleCsv(dataFile(DATA_DIR, pair, '30m'));
  const h1 = await readCandleCsv(dataFile(DATA_DIR, pair, '1h'));
  const d1 = await readCandleCsv(dataFile(DATA_DIR, pair, '1d'));
  const funding = await readFundingCsv(fundingFile(DATA_DIR, pair));
  const candles = { '30m': m30, '1h': h1, '4h': aggregateCandles(h1, '1h', '4h'), '1d': d1 };
  return { pair, cache: buildPairSeriesCache({ pair, mainTimeframe: MAIN, candles, funding }), m30 };
}

/** `count` main-candle close times spread evenly over the last 26 days of the data (30+ days of history before). */
function decisionTimes(m30: readonly Candle[], count: number, offset = 0): number[] {
  const lastClose = m30[m30.length - 1]!.time + MAIN_MS;
  const first = lastClose - 26 * DAY_MS;
  const step = Math.floor((lastClose - first) / count / MAIN_MS) * MAIN_MS;
  return Array.from({ length: count }, (_, k) => first + k * step + offset * MAIN_MS);
}

function snapshot(data: PairData, asOf: number, config: Config): MarketSnapshot {
  return snapshotAt(data.cache, asOf, {
    tailLength: Math.max(1, config.context.indicator_history_points),
    rawCandles: config.context.raw_kline_history_points,
  });
}

/** Main candles that closed in (from, to]. */
function candlesBetween(m30: readonly Candle[], from: number, to: number): Candle[] {
  return m30.slice(closedCount(m30, MAIN_MS, from), closedCount(m30, MAIN_MS, to));
}

function sideAt(snap: MarketSnapshot): Side {
  const ind = snap.timeframes[MAIN]!.indicators;
  return ind.ema20 !== null && ind.ema50 !== null && ind.ema20 < ind.ema50 ? 'short' : 'long';
}

function entryReason(snap: MarketSnapshot, side: Side): string {
  const ind = snap.timeframes[MAIN]!.indicators;
  const dir = side === 'long' ? 'above' : 'below';
  return (
    `30m EMA20 ${dir} EMA50 and price ${dir} both, RSI ${ind.rsi14?.toFixed(1) ?? 'n/a'} with room to run, MACD ` +
    `histogram ${ind.macdHist !== null && ind.macdHist > 0 ? 'positive' : 'negative'}, ADX ${ind.adx14?.toFixed(1) ?? 'n/a'} ` +
    `shows a trend; 4h agrees. Invalidation beyond the last swing at ${snap.price.toFixed(2)} -/+ 1.5 ATR.`
  );
}

/** 12 closed trades of the pair before `asOf`, from real prices. */
function closedTrades(data: PairData, asOf: number, config: Config): ClosedTrade[] {
  const trades: ClosedTrade[] = [];
  const leverages = [3, 5, 10, 5];
  for (let i = 0; i < 12; i++) {
    const entryTime = Math.floor((asOf - (i + 1) * 2.5 * DAY_MS) / MAIN_MS) * MAIN_MS;
    const held = 6 + ((i * 5) % 14);
    const plannedExit = entryTime + held * MAIN_MS;
    const entrySnap = snapshot(data, entryTime, config);
    const side = sideAt(entrySnap);
    const leverage = leverages[i % leverages.length]!;
    const entryPrice = entrySnap.price;
    const margin = 500;
    const quantity = (margin * leverage) / entryPrice;
    const stop = stopPriceFor(side, entryPrice, leverage, config.risk.emergency_stop_loss);
    let exitTime = plannedExit;
    let exitPrice = snapshot(data, plannedExit, config).price;
    let exitReason: ClosedTrade['exitReason'] = 'model';
    let high = -Infinity;
    let low = Infinity;
    for (const c of candlesBetween(data.m30, entryTime, plannedExit)) {
      high = Math.max(high, c.high);
      low = Math.min(low, c.low);
      if (side === 'long' ? c.low <= stop : c.high >= stop) {
        exitTime = c.time + MAIN_MS;
        exitPrice = stop;
        exitReason = 'emergency_stop';
        break;
      }
    }
    const mfePct = Math.max(0, leveragedReturn(side, entryPrice, side === 'long' ? high : low, leverage) * 100);
    const maePct = Math.min(0, leveragedReturn(side, entryPrice, side === 'long' ? low : high, leverage) * 100);
    const fees = quantity * (entryPrice + exitPrice) * TAKER_FEE;
    const pnl = (side === 'long' ? exitPrice - entryPrice : entryPrice - exitPrice) * quantity - fees;
    trades.push({
      tradeId: `${data.pair}-${entryTime}`,
      pair: data.pair,
      side,
      entryTime,
      exitTime,
      entryPrice,
      exitPrice,
      quantity,
      leverage,
      margin,
      notional: quantity * entryPrice,
      pnl,
      pnlPct: (pnl / margin) * 100,
      fees,
      funding: 0,
      exitReason,
      mfePct,
      maePct,
      holds: Math.max(0, Math.round((exitTime - entryTime) / MAIN_MS) - 1),
      adjustments: 0,
      entryReason: entryReason(entrySnap, side),
      exitText: 'Momentum faded at resistance; took the result. Lesson: size down when 4h disagrees.',
      tradeScore: exitReason === 'model' ? 40 + ((i * 17) % 45) : null,
      entryConfidence: 62 + ((i * 7) % 20),
      clientOrderIds: [],
    });
  }
  return trades;
}

const HOLD_REASON = 'Trend intact, RSI neutral, no exit signal yet; holding for a test of the 1h level.';

/** Decision history of a stalled trade: entry then 11 holds with one reason and the PnL within a 1-point band. */
function stalledHistory(asOf: number): WarningRecord[] {
  const records: WarningRecord[] = [
    { time: asOf - 12 * MAIN_MS, tool: 'signal_entry_long', reason: 'entry', pnlPct: null },
  ];
  for (let k = 11; k >= 1; k--) {
    records.push({ time: asOf - k * MAIN_MS, tool: 'signal_hold', reason: HOLD_REASON, pnlPct: 0.4 + (k % 3) * 0.3 });
  }
  return records;
}

function learningFor(data: PairData, asOf: number, config: Config, withWarnings: boolean): LearningContext {
  return buildLearningContext({
    pair: data.pair,
    asOf,
    trades: closedTrades(data, asOf, config),
    decisions: withWarnings ? stalledHistory(asOf) : [],
    experience: config.experience,
  });
}

function flatAccount(): AccountSnapshot {
  return { equity: 10_000, available: 10_000, usedMargin: 0, positions: [], externalCloses: [] };
}

function entryRequest(data: PairData, asOf: number, config: Config): ContextBuildRequest {
  const waits: DecisionRecord[] = [];
  for (let k = 5; k >= 1; k--) {
    waits.push({
      time: asOf - k * MAIN_MS,
      tool: 'signal_wait',
      reason:
        'Timeframes disagree: 30m turning up but 4h MACD histogram still negative and ADX below 20; waiting for a retest.',
      confidence: 55,
      pnlPct: null,
      source: 'openai',
      outcome: 'none',
      detail: null,
    });
  }
  return {
    snapshot: snapshot(data, asOf, config),
    account: flatAccount(),
    position: null,
    recentDecisions: waits,
    learning: learningFor(data, asOf, config, false),
  };
}

function positionRequest(data: PairData, asOf: number, config: Config): ContextBuildRequest {
  const entryAsOf = asOf - 10 * MAIN_MS;
  const entrySnap = snapshot(data, entryAsOf, config);
  const snap = snapshot(data, asOf, config);
  const side = sideAt(entrySnap);
  const leverage = 5;
  const margin = 1000;
  const entryPrice = entrySnap.price;
  const quantity = (margin * leverage) / entryPrice;
  const reason = entryReason(entrySnap, side);
  let position: PositionState = {
    tradeId: `${data.pair}-${entryAsOf}`,
    pair: data.pair,
    side,
    entryTime: entryAsOf,
    entryPrice,
    quantity,
    leverage,
    margin,
    maxQuantity: quantity,
    maxMargin: margin,
    fees: quantity * entryPrice * TAKER_FEE,
    funding: 0.35,
    realizedPnl: 0,
    liquidationPrice: liquidationPrice(side, entryPrice, leverage, MMR),
    entryReason: reason,
    entryConfidence: 72,
    entryMarket: marketStateOf(entrySnap),
    adjustments: 0,
    holds: 9,
    highestPrice: entryPrice,
    lowestPrice: entryPrice,
    mfePct: 0,
    maePct: 0,
    lastPnlPct: 0,
    clientOrderIds: [`${data.pair}-${entryAsOf}-0`],
  };
  position = updateExcursions(position, candlesBetween(data.m30, entryAsOf, asOf));
  const pnlAt = (t: number) => leveragedReturn(side, entryPrice, snapshot(data, t, config).price, leverage) * 100;
  position = { ...position, lastPnlPct: pnlAt(asOf) };
  const decisions: DecisionRecord[] = [
    {
      time: entryAsOf,
      tool: side === 'long' ? 'signal_entry_long' : 'signal_entry_short',
      reason,
      confidence: 72,
      pnlPct: null,
      source: 'openai',
      outcome: 'executed',
      detail: null,
    },
  ];
  for (let k = 9; k >= 1; k--) {
    const t = asOf - k * MAIN_MS;
    decisions.push({
      time: t,
      tool: 'signal_hold',
      reason: HOLD_REASON,
      confidence: 65,
      pnlPct: pnlAt(t),
      source: 'openai',
      outcome: 'none',
      detail: null,
    });
  }
  const notional = quantity * snap.price;
  const unrealized = (side === 'long' ? snap.price - entryPrice : entryPrice - snap.price) * quantity;
  const other = data.pair.startsWith('BTC') ? 'ETH/USDT:USDT' : 'BTC/USDT:USDT';
  const account: AccountSnapshot = {
    equity: 10_000 + unrealized,
    available: 10_000 - margin - 800,
    usedMargin: margin + 800,
    positions: [
      {
        pair: data.pair,
        side,
        quantity,
        entryPrice,
        leverage,
        margin,
        notional,
        liquidationPrice: position.liquidationPrice,
        unrealizedPnl: unrealized,
      },
      {
        pair: other,
        side: 'short',
        quantity: 1,
        entryPrice: 1,
        leverage: 3,
        margin: 800,
        notional: 2400,
        liquidationPrice: null,
        unrealizedPnl: 0,
      },
    ],
    externalCloses: [],
  };
  return {
    snapshot: snap,
    account,
    position,
    recentDecisions: decisions,
    learning: learningFor(data, asOf, config, true),
  };
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx]!;
}

function mostCommon(values: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = '';
  let n = 0;
  for (const [v, c] of counts) if (c > n) [best, n] = [v, c];
  return `${best || '(none)'} [${n}/${values.length}]`;
}

export interface ContextBenchRow {
  pair: string;
  kind: 'entry' | 'position';
  /** the run's budget: context.max_context_tokens (entry) or max_position_context_tokens (position) */
  budget: number;
  tokensP50: number;
  tokensMax: number;
  fullTokensP50: number;
  systemTokens: number;
  toolsTokens: number;
  userTokensP50: number;
  droppedMostOften: string;
  buildMsP50: number;
  buildMsP99: number;
  firstBuildMsMax: number;
  /** the first build of this (pair, kind) in the process, before any warm-up (the first row's is fully cold) */
  unwarmedMs: number;
  recountMsP50: number;
}

/**
 * Runs the bench and prints one row per (pair, kind). Returns the rows.
 * Reads ../shared/data relative to the working directory (run from the repo root: `npm run bench`).
 */
export async function runContextBench(): Promise<ContextBenchRow[]> {
  const defaults = ConfigSchema.parse({ timeframes: { main: MAIN, informative: ['1h', '4h', '1d'] } });
  const withBudget = (budget: number): Config => ({
    ...defaults,
    context: { ...defaults.context, max_context_tokens: budget, max_position_context_tokens: budget },
  });
  // The same config without a practical budget: what every section together would cost.
  const unbounded = withBudget(200_000);
  // The default budgets: 2500 when flat, 3000 in a position (the goals).
  const runs = [
    { kind: 'entry', config: defaults },
    { kind: 'position', config: defaults },
  ] as const;
  const rows: ContextBenchRow[] = [];
  const data = new Map<string, PairData>();
  for (const pair of PAIRS) data.set(pair, await loadPair(pair));
  // The first build of each (pair, kind) in the process, before any warm-up: the first one is what a freshly started
  // worker pays once (module set-up, tokenizer tables, JIT); later ones share what the first warmed.
  const unwarmed = new Map<string, number>();
  for (const [pair, d] of data) {
    for (const { kind, config } of runs) {
      const make = kind === 'entry' ? entryRequest : positionRequest;
      const c0 = performance.now();
      buildDecisionContextWithLayout(make(d, decisionTimes(d.m30, 1, 5)[0]!, config), config);
      unwarmed.set(`${pair} ${kind}`, performance.now() - c0);
    }
  }
  // Warm-up of every (pair, kind) on other decision times, before any measurement, until the JIT has compiled the
  // hot functions (V8 keeps optimising for the first thousands of builds; on 2 cores a concurrent compile slows the
  // build it overlaps by 1-5 ms). Unbounded builds run every renderer, including those the budget usually drops.
  for (const d of data.values()) {
    for (const { kind, config } of runs) {
      const make = kind === 'entry' ? entryRequest : positionRequest;
      for (const t of decisionTimes(d.m30, WARM_UP_TIMES, 3)) {
        const req = make(d, t, config);
        buildDecisionContextWithLayout(req, unbounded);
        for (let r = 0; r < REPEATS; r++) buildDecisionContextWithLayout(req, config);
      }
    }
  }
  for (const [pair, d] of data) {
    for (const { kind, config } of runs) {
      const make = kind === 'entry' ? entryRequest : positionRequest;
      const coldMs = unwarmed.get(`${pair} ${kind}`)!;
      const tokens: number[] = [];
      const full: number[] = [];
      const user: number[] = [];
      const dropped: string[] = [];
      const times: number[] = [];
      const firsts: number[] = [];
      const recounts: number[] = [];
      let systemTokens = 0;
      let toolsTokens = 0;
      // Timed builds first; the checks (unbounded build, exact recount) afterwards, so that their garbage does not
      // bring on collections inside the timed builds (the builds' own garbage does, and is counted).
      const built: {
        t: number;
        req: ContextBuildRequest;
        result: ReturnType<typeof buildDecisionContextWithLayout>;
      }[] = [];
      for (const t of decisionTimes(d.m30, DECISION_TIMES)) {
        const req = make(d, t, config);
        for (let r = 0; r < REPEATS; r++) {
          const t0 = performance.now();
          const result = buildDecisionContextWithLayout(req, config);
          const ms = performance.now() - t0;
          times.push(ms);
          if (r === 0) {
            firsts.push(ms);
            built.push({ t, req, result });
          }
        }
      }
      for (const { t, req, result } of built) {
        const { context, layout } = result;
        tokens.push(layout.totalTokens);
        full.push(buildDecisionContextWithLayout(req, unbounded).layout.totalTokens);
        user.push(layout.userTokens);
        dropped.push(layout.dropped.join(', '));
        systemTokens = layout.systemTokens;
        toolsTokens = layout.toolsTokens;
        const c0 = performance.now();
        const recount = countPromptTokens(context.messages, context.tools);
        recounts.push(performance.now() - c0);
        if (recount !== context.tokens) {
          throw new Error(
            `${pair} ${kind} at ${new Date(t).toISOString()}: recorded ${context.tokens} tokens, recount ${recount}`,
          );
        }
      }
      const s = (xs: number[]) => [...xs].sort((a, b) => a - b);
      rows.push({
        pair,
        kind,
        budget: kind === 'entry' ? config.context.max_context_tokens : config.context.max_position_context_tokens,
        tokensP50: quantile(s(tokens), 0.5),
        tokensMax: Math.max(...tokens),
        fullTokensP50: quantile(s(full), 0.5),
        systemTokens,
        toolsTokens,
        userTokensP50: quantile(s(user), 0.5),
        droppedMostOften: mostCommon(dropped),
        buildMsP50: quantile(s(times), 0.5),
        buildMsP99: quantile(s(times), 0.99),
        firstBuildMsMax: Math.max(...firsts),
        unwarmedMs: coldMs,
        recountMsP50: quantile(s(recounts), 0.5),
      });
    }
  }
  console.log(
    `context: ${DECISION_TIMES} decision times x ${REPEATS} builds per row; timeframes 30m,1h,4h,1d; ` +
      'tokens = o200k(system) + o200k(user) + o200k(JSON tools); budget = context.max_context_tokens (entry) / max_position_context_tokens (position)',
  );
  console.log(
    'pair           kind      budget  tokens p50/max  full p50  sys  tools  user p50  build ms p50/p99  first max  unwarmed  recount p50  dropped (most often)',
  );
  for (const r of rows) {
    console.log(
      [
        r.pair.padEnd(14),
        r.kind.padEnd(9),
        String(r.budget).padStart(6),
        `${r.tokensP50}/${r.tokensMax}`.padStart(14),
        String(r.fullTokensP50).padStart(9),
        String(r.systemTokens).padStart(4),
        String(r.toolsTokens).padStart(6),
        String(r.userTokensP50).padStart(9),
        `${r.buildMsP50.toFixed(3)}/${r.buildMsP99.toFixed(3)}`.padStart(17),
        r.firstBuildMsMax.toFixed(3).padStart(10),
        r.unwarmedMs.toFixed(3).padStart(9),
        r.recountMsP50.toFixed(3).padStart(12),
        ` ${r.droppedMostOften}`,
      ].join(' '),
    );
  }
  return rows;
}
