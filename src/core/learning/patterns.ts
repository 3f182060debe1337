/**
 * Pattern statistics over closed trades (after the original's PatternAnalyzer and HistoricalQueryEngine):
 * win rates by side, entry confidence, entry hour, leverage, exit reason and hold duration; the best and worst of
 * those patterns; the words that recur in the entry reasons of winners and of losers; and a period summary
 * (30 days in the prompt). Pure.
 *
 * A win is a trade with net PnL > 0 and a loss one with net PnL < 0 (see `tradeOutcome`); a trade at exactly 0
 * counts in `count` but in neither. Win rates are fractions 0..1 of all trades in the group.
 */
import type { ClosedTrade, CloseReason, Side } from '../types';
import { formatDuration, formatSignedPct, formatUsdt } from './format';
import { tradeOutcome } from './review';

/** Fewer closed trades than this: no pattern report (too few to mean anything). */
export const MIN_TRADES_FOR_PATTERNS = 5;
/** A group needs at least this many trades to be named a best or worst pattern. */
export const MIN_GROUP_TRADES = 3;
/** How many best and worst patterns are reported. */
export const MAX_REPORTED_PATTERNS = 3;
/** A keyword must appear in at least this many winners (success) or losers (failure) to be reported. */
export const MIN_KEYWORD_TRADES = 2;
/** How many success and failure keywords are reported. */
export const MAX_REPORTED_KEYWORDS = 5;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
export const THIRTY_DAYS_MS = 30 * DAY_MS;

export type PatternDimension = 'side' | 'confidence' | 'hour' | 'leverage' | 'exit_reason' | 'duration';

/**
 * Band of each dimension, in report order. Rules:
 * - confidence (entryConfidence): `< 60`, `60-79` (60 <= c < 80), `>= 80`;
 * - hour (UTC hour of entryTime): `00-06`, `06-12`, `12-18`, `18-24` (start inclusive, end exclusive);
 * - leverage: `1-5x` (<= 5), `6-10x` (<= 10), `11-20x` (<= 20), `21x+` (> 20);
 * - duration (exitTime - entryTime): `< 2h`, `2-8h`, `8-24h`, `>= 24h` (lower edge inclusive).
 */
export const PATTERN_BANDS = {
  confidence: ['< 60', '60-79', '>= 80'],
  hour: ['00-06 UTC', '06-12 UTC', '12-18 UTC', '18-24 UTC'],
  leverage: ['1-5x', '6-10x', '11-20x', '21x+'],
  duration: ['< 2h', '2-8h', '8-24h', '>= 24h'],
} as const;

function confidenceBand(c: number): string {
  const [low, mid, high] = PATTERN_BANDS.confidence;
  return c < 60 ? low : c < 80 ? mid : high;
}

function hourBand(time: number): string {
  const msOfDay = ((time % DAY_MS) + DAY_MS) % DAY_MS;
  const index = Math.floor(msOfDay / (6 * HOUR_MS));
  return PATTERN_BANDS.hour[index] ?? PATTERN_BANDS.hour[3];
}

function leverageBand(leverage: number): string {
  const [a, b, c, d] = PATTERN_BANDS.leverage;
  return leverage <= 5 ? a : leverage <= 10 ? b : leverage <= 20 ? c : d;
}

function durationBand(ms: number): string {
  const [a, b, c, d] = PATTERN_BANDS.duration;
  return ms < 2 * HOUR_MS ? a : ms < 8 * HOUR_MS ? b : ms < DAY_MS ? c : d;
}

function describeGroup(dimension: PatternDimension, label: string): string {
  switch (dimension) {
    case 'side':
      return `${label} trades`;
    case 'confidence':
      return `entry confidence ${label}`;
    case 'hour':
      return `entries at ${label}`;
    case 'leverage':
      return `leverage ${label}`;
    case 'exit_reason':
      return `exits by ${label}`;
    case 'duration':
      return `held ${label}`;
  }
}

export interface PatternGroup {
  dimension: PatternDimension;
  /** the band or value, e.g. `long`, `>= 80`, `12-18 UTC`, `6-10x`, `emergency_stop`, `2-8h` */
  label: string;
  /** English name for prompts, e.g. `leverage 6-10x` */
  description: string;
  count: number;
  wins: number;
  losses: number;
  /** wins / count */
  winRate: number;
  /** net USDT */
  totalPnl: number;
  /** mean leveraged % of margin */
  avgPnlPct: number;
}

export interface KeywordStat {
  word: string;
  /** trades whose entry reason contains the word (each trade counted once) */
  trades: number;
  wins: number;
  losses: number;
  /** wins / trades */
  winRate: number;
}

export type PatternReport =
  | { enough: false; tradeCount: number; message: string }
  | {
      enough: true;
      tradeCount: number;
      wins: number;
      losses: number;
      winRate: number;
      /** every non-empty group, by dimension (side, confidence, hour, leverage, exit_reason, duration) then band */
      groups: PatternGroup[];
      /** up to 3 groups with >= 3 trades and a win rate above the overall one, highest first */
      best: PatternGroup[];
      /** up to 3 groups with >= 3 trades and a win rate below the overall one, lowest first */
      worst: PatternGroup[];
      /** see {@link reasonKeywords} */
      successKeywords: KeywordStat[];
      failureKeywords: KeywordStat[];
      /** English lines for the prompt */
      highlights: string[];
    };

interface Accumulator {
  count: number;
  wins: number;
  losses: number;
  totalPnl: number;
  sumPnlPct: number;
}

const SIDES: readonly Side[] = ['long', 'short'];

/** Every close reason, in report order (the `satisfies` makes the compiler flag a reason added to the type). */
const CLOSE_REASONS = Object.keys({
  model: true,
  emergency_stop: true,
  liquidation_buffer: true,
  stop: true,
  liquidation: true,
  force_exit: true,
  external: true,
} satisfies Record<CloseReason, true>);

/** Words too common to say anything about a setup; dropped from entry reasons before counting. */
export const REASON_STOPWORDS: ReadonlySet<string> = new Set(
  (
    'the and for with from that this these those are was were but not into onto has have had its our than ' +
    'then there their which while will would could should can may might also very more most some any all ' +
    'been being over under still just now too per via yet you they them she pair usdt entry enter ' +
    'entering trade position signal due'
  ).split(' '),
);

/**
 * The keywords of an entry reason: lower-cased, split on anything that is not a letter or digit (Unicode-aware),
 * words of at least 3 characters that contain a letter and are not in {@link REASON_STOPWORDS}; each word once.
 * Space-separated languages only: a Chinese reason yields whole phrases, not words.
 */
export function reasonKeywords(reason: string): Set<string> {
  const words = new Set<string>();
  for (const token of reason.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
    if (token.length >= 3 && /\p{L}/u.test(token) && !REASON_STOPWORDS.has(token)) words.add(token);
  }
  return words;
}

function keywordStats(trades: ClosedTrade[]): KeywordStat[] {
  const byWord = new Map<string, KeywordStat>();
  for (const trade of trades) {
    const outcome = tradeOutcome(trade);
    for (const word of reasonKeywords(trade.entryReason)) {
      const stat = byWord.get(word) ?? { word, trades: 0, wins: 0, losses: 0, winRate: 0 };
      stat.trades += 1;
      if (outcome === 'win') stat.wins += 1;
      if (outcome === 'loss') stat.losses += 1;
      stat.winRate = stat.wins / stat.trades;
      byWord.set(word, stat);
    }
  }
  return [...byWord.values()];
}

function sortGroups(groups: PatternGroup[], direction: 1 | -1): PatternGroup[] {
  return [...groups].sort(
    (a, b) => direction * (b.winRate - a.winRate) || direction * (b.avgPnlPct - a.avgPnlPct) || b.count - a.count,
  );
}

/**
 * Pattern analysis over closed trades (any pairs the caller passes). With fewer than
 * {@link MIN_TRADES_FOR_PATTERNS} trades it returns `enough: false` and a message saying so.
 *
 * Keywords: a success keyword appears in the entry reasons of at least {@link MIN_KEYWORD_TRADES} winners, and the
 * trades that mention it win more often than trades overall; ranked by winners mentioning it, then win rate, then
 * alphabetically. A failure keyword is the mirror image on losers and the loss rate. Words common to all trades
 * (e.g. "rsi" in every reason) have the overall rates and are therefore not reported.
 */
export function analyzePatterns(trades: ClosedTrade[]): PatternReport {
  const n = trades.length;
  if (n < MIN_TRADES_FOR_PATTERNS) {
    return {
      enough: false,
      tradeCount: n,
      message: `Pattern analysis needs at least ${MIN_TRADES_FOR_PATTERNS} closed trades; there ${n === 1 ? 'is' : 'are'} ${n} so far.`,
    };
  }

  const accumulators = new Map<string, { dimension: PatternDimension; label: string; acc: Accumulator }>();
  const keyOrder: string[] = [];
  // Seed the keys in report order so groups come out by dimension then band.
  const order: [PatternDimension, readonly string[]][] = [
    ['side', SIDES],
    ['confidence', PATTERN_BANDS.confidence],
    ['hour', PATTERN_BANDS.hour],
    ['leverage', PATTERN_BANDS.leverage],
    ['exit_reason', CLOSE_REASONS],
    ['duration', PATTERN_BANDS.duration],
  ];
  for (const [dimension, labels] of order) {
    for (const label of labels) {
      const key = `${dimension}\u0000${label}`;
      keyOrder.push(key);
      accumulators.set(key, { dimension, label, acc: { count: 0, wins: 0, losses: 0, totalPnl: 0, sumPnlPct: 0 } });
    }
  }

  let wins = 0;
  let losses = 0;
  for (const trade of trades) {
    const outcome = tradeOutcome(trade);
    if (outcome === 'win') wins += 1;
    if (outcome === 'loss') losses += 1;
    const labels: [PatternDimension, string][] = [
      ['side', trade.side],
      ['confidence', confidenceBand(trade.entryConfidence)],
      ['hour', hourBand(trade.entryTime)],
      ['leverage', leverageBand(trade.leverage)],
      ['exit_reason', trade.exitReason],
      ['duration', durationBand(trade.exitTime - trade.entryTime)],
    ];
    for (const [dimension, label] of labels) {
      const entry = accumulators.get(`${dimension}\u0000${label}`);
      if (!entry) {
        throw new RangeError(`analyzePatterns: trade ${trade.tradeId} has an unknown ${dimension} "${label}"`);
      }
      const acc = entry.acc;
      acc.count += 1;
      if (outcome === 'win') acc.wins += 1;
      if (outcome === 'loss') acc.losses += 1;
      acc.totalPnl += trade.pnl;
      acc.sumPnlPct += trade.pnlPct;
    }
  }

  const groups: PatternGroup[] = [];
  for (const key of keyOrder) {
    const entry = accumulators.get(key);
    if (!entry || entry.acc.count === 0) continue;
    const { dimension, label, acc } = entry;
    groups.push({
      dimension,
      label,
      description: describeGroup(dimension, label),
      count: acc.count,
      wins: acc.wins,
      losses: acc.losses,
      winRate: acc.wins / acc.count,
      totalPnl: acc.totalPnl,
      avgPnlPct: acc.sumPnlPct / acc.count,
    });
  }

  const winRate = wins / n;
  const lossRate = losses / n;
  const eligible = groups.filter((g) => g.count >= MIN_GROUP_TRADES);
  const best = sortGroups(
    eligible.filter((g) => g.winRate > winRate),
    1,
  ).slice(0, MAX_REPORTED_PATTERNS);
  const worst = sortGroups(
    eligible.filter((g) => g.winRate < winRate),
    -1,
  ).slice(0, MAX_REPORTED_PATTERNS);

  const keywords = keywordStats(trades);
  const successKeywords = keywords
    .filter((k) => k.wins >= MIN_KEYWORD_TRADES && k.winRate > winRate)
    .sort((a, b) => b.wins - a.wins || b.winRate - a.winRate || (a.word < b.word ? -1 : 1))
    .slice(0, MAX_REPORTED_KEYWORDS);
  const failureKeywords = keywords
    .filter((k) => k.losses >= MIN_KEYWORD_TRADES && k.losses / k.trades > lossRate)
    .sort((a, b) => b.losses - a.losses || b.losses / b.trades - a.losses / a.trades || (a.word < b.word ? -1 : 1))
    .slice(0, MAX_REPORTED_KEYWORDS);

  const pctOf = (x: number) => `${Math.round(x * 100)}%`;
  const groupLine = (g: PatternGroup) =>
    `${g.description}: ${g.wins} of ${g.count} won (${pctOf(g.winRate)}), avg ${formatSignedPct(g.avgPnlPct)}`;
  const highlights = [`Overall: ${n} trades, ${wins} wins, ${losses} losses (win rate ${pctOf(winRate)}).`];
  if (best.length > 0) highlights.push(`Best patterns: ${best.map(groupLine).join('; ')}.`);
  if (worst.length > 0) highlights.push(`Worst patterns: ${worst.map(groupLine).join('; ')}.`);
  if (successKeywords.length > 0) {
    highlights.push(
      `Winning entry reasons often mention: ${successKeywords.map((k) => `"${k.word}" (${k.wins} wins of ${k.trades})`).join(', ')}.`,
    );
  }
  if (failureKeywords.length > 0) {
    highlights.push(
      `Losing entry reasons often mention: ${failureKeywords.map((k) => `"${k.word}" (${k.losses} losses of ${k.trades})`).join(', ')}.`,
    );
  }

  return {
    enough: true,
    tradeCount: n,
    wins,
    losses,
    winRate,
    groups,
    best,
    worst,
    successKeywords,
    failureKeywords,
    highlights,
  };
}

// ---------------------------------------------------------------------------------------------
// Period summary
// ---------------------------------------------------------------------------------------------

export interface TradeBrief {
  tradeId: string;
  pair: string;
  side: Side;
  pnl: number;
  pnlPct: number;
  exitTime: number;
}

export interface PeriodSummary {
  from: number;
  to: number;
  count: number;
  wins: number;
  losses: number;
  /** wins / count; null when there are no trades */
  winRate: number | null;
  /** net USDT */
  totalPnl: number;
  /** mean leveraged % of margin; null when there are no trades */
  avgPnlPct: number | null;
  /** highest pnlPct (the first one on ties); null when there are no trades */
  best: TradeBrief | null;
  /** lowest pnlPct (the first one on ties); null when there are no trades */
  worst: TradeBrief | null;
  /** mean of exitTime - entryTime, ms; null when there are no trades */
  avgDurationMs: number | null;
  /** sum of winning pnl, USDT */
  grossProfit: number;
  /** sum of |losing pnl|, USDT (>= 0) */
  grossLoss: number;
  /** grossProfit / grossLoss; null when grossLoss is 0 (no losing trade: the ratio is undefined) */
  profitFactor: number | null;
  /** one English line for the prompt */
  text: string;
}

function brief(t: ClosedTrade): TradeBrief {
  return { tradeId: t.tradeId, pair: t.pair, side: t.side, pnl: t.pnl, pnlPct: t.pnlPct, exitTime: t.exitTime };
}

/**
 * Statistics of the trades that exited in [from, to] (both inclusive, Unix ms). Throws a RangeError when
 * `from > to`. For the prompt's 30-day summary use {@link summarizeLast30Days}.
 */
export function summarizePeriod(trades: ClosedTrade[], from: number, to: number): PeriodSummary {
  if (!(from <= to)) throw new RangeError(`summarizePeriod: from (${from}) must be <= to (${to})`);
  const inPeriod = trades.filter((t) => t.exitTime >= from && t.exitTime <= to);
  let wins = 0;
  let losses = 0;
  let totalPnl = 0;
  let sumPnlPct = 0;
  let sumDuration = 0;
  let grossProfit = 0;
  let grossLoss = 0;
  let best: ClosedTrade | null = null;
  let worst: ClosedTrade | null = null;
  for (const t of inPeriod) {
    const outcome = tradeOutcome(t);
    if (outcome === 'win') {
      wins += 1;
      grossProfit += t.pnl;
    } else if (outcome === 'loss') {
      losses += 1;
      grossLoss -= t.pnl;
    }
    totalPnl += t.pnl;
    sumPnlPct += t.pnlPct;
    sumDuration += t.exitTime - t.entryTime;
    if (best === null || t.pnlPct > best.pnlPct) best = t;
    if (worst === null || t.pnlPct < worst.pnlPct) worst = t;
  }
  const count = inPeriod.length;
  const days = (to - from) / DAY_MS;
  const span = `${Number.isInteger(days) ? days : days.toFixed(1)} day${days === 1 ? '' : 's'}`;
  const summary: Omit<PeriodSummary, 'text'> = {
    from,
    to,
    count,
    wins,
    losses,
    winRate: count === 0 ? null : wins / count,
    totalPnl,
    avgPnlPct: count === 0 ? null : sumPnlPct / count,
    best: best === null ? null : brief(best),
    worst: worst === null ? null : brief(worst),
    avgDurationMs: count === 0 ? null : sumDuration / count,
    grossProfit,
    grossLoss,
    profitFactor: grossLoss === 0 ? null : grossProfit / grossLoss,
  };
  let text: string;
  if (count === 0 || summary.winRate === null || summary.avgPnlPct === null || best === null || worst === null) {
    text = `Last ${span}: no closed trades.`;
  } else {
    text =
      `Last ${span}: ${count} trade${count === 1 ? '' : 's'}, ${wins} won, ${losses} lost (win rate ` +
      `${Math.round(summary.winRate * 100)}%), total ${formatUsdt(totalPnl)}, avg ${formatSignedPct(summary.avgPnlPct)} of margin, ` +
      `best ${formatSignedPct(best.pnlPct)}, worst ${formatSignedPct(worst.pnlPct)}, avg hold ${formatDuration(sumDuration / count)}, ` +
      `profit factor ${summary.profitFactor === null ? 'n/a (no losses)' : summary.profitFactor.toFixed(2)}.`;
  }
  return { ...summary, text };
}

/** {@link summarizePeriod} over the 30 days ending at `asOf` (inclusive). */
export function summarizeLast30Days(trades: ClosedTrade[], asOf: number): PeriodSummary {
  return summarizePeriod(trades, asOf - THIRTY_DAYS_MS, asOf);
}
