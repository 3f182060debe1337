/**
 * Pure renderers for the sections of the decision prompt's user message, and the number formats they share.
 *
 * Every section is a block of the form `## <title>\n<line>\n<line>\n`: it starts with `## ` and ends with `\n`. The
 * context builder relies on that shape to count tokens per section (see `context-builder.ts`);
 * {@link assertSectionShape} checks it.
 *
 * Formats (all deterministic, no locale):
 * - prices (close, EMA, Bollinger, ATR, candle OHLC, liquidation and stop prices): a fixed number of decimals chosen
 *   from the pair's price so that the price has about 6 significant digits ({@link priceDecimals}); 118234 (BTC),
 *   3765.42 (ETH), 0.234567 (DOGE).
 * - RSI, ADX, MFI: 1 decimal in the indicator table; whole numbers in the series tails (a tail shows a trajectory).
 * - MACD, signal, histogram: 4 significant digits (3 in tails), so a small histogram keeps its sign and size.
 * - volume and OBV: 4 significant digits (3 in tails), written out without exponent (5234, 151200, -1234000).
 * - percentages: signed with 2 decimals (`+0.42`); leveraged PnL, MFE, MAE in % of margin.
 * - times: UTC, `YYYY-MM-DD HH:MM` in headers and `MM-DD HH:MM` in tables (the year is the header's).
 * - a missing value (`null`, NaN, ±Infinity) is `n/a`, never 0.
 */
import type {
  AccountSnapshot,
  Candle,
  CloseReason,
  FundingInfo,
  IndicatorValues,
  MarketSnapshot,
  MarketStateSummary,
  PositionState,
  Side,
  TimeframeSnapshot,
  ToolName,
} from '../core/types';
import { marketStateOf, type DecisionRecord } from '../core/cycle';
import type { RiskConfig } from '../core/config';
import { formatDuration } from '../core/learning/format';
import { leveragedReturn, unrealizedPnl } from '../core/position';
import { stopPriceFor } from '../core/risk';
import { timeframeMs } from '../core/timeframe';

/** What a missing value looks like in every prompt. */
export const NA = 'n/a';

// ---------------------------------------------------------------------------------------------
// Number and time formats
// ---------------------------------------------------------------------------------------------

/**
 * Decimals that give a price about 6 significant digits: 0 for 118234.5, 2 for 3765.42, 5 for 3.45678,
 * 6 for 0.234567, 10 for 0.0000123456. Between 0 and 12; 2 for a price that is not a positive finite number.
 */
export function priceDecimals(price: number): number {
  if (!Number.isFinite(price) || price <= 0) return 2;
  const integerDigits = Math.floor(Math.log10(price)) + 1;
  return Math.min(12, Math.max(0, 6 - integerDigits));
}

function isFiniteNumber(x: number | null | undefined): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/** `-0`, `-0.00` → `0`, `0.00`: a value that rounds to zero has no sign. */
function dropNegativeZero(text: string): string {
  // a character test instead of a regex: this runs for every number in the prompt
  if (text.charCodeAt(0) !== 45 || text.charCodeAt(1) !== 48) return text; // not "-0..."
  if (text.length > 2 && text.charCodeAt(2) !== 46) return text; // "-0" then not "."
  for (let k = 3; k < text.length; k++) if (text.charCodeAt(k) !== 48) return text;
  return text.slice(1);
}

/** `1.500` → `1.5`, `2.00` → `2`: a decimal text without trailing zeros (text without a `.` is returned as is). */
function trimFractionZeros(text: string): string {
  if (!text.includes('.')) return text;
  let end = text.length;
  while (text.charCodeAt(end - 1) === 48) end--;
  if (text.charCodeAt(end - 1) === 46) end--;
  return end === text.length ? text : text.slice(0, end);
}

/** `x` with exactly `decimals` decimals (`n/a` when missing). */
export function fixed(x: number | null | undefined, decimals: number): string {
  if (!isFiniteNumber(x)) return NA;
  return dropNegativeZero(x.toFixed(decimals));
}

/** `x` with a sign and exactly `decimals` decimals: `+0.42`, `-1.10`, `0.00` (`n/a` when missing). */
export function signed(x: number | null | undefined, decimals = 2): string {
  if (!isFiniteNumber(x)) return NA;
  const text = dropNegativeZero(x.toFixed(decimals));
  return x > 0 && Number(text) !== 0 ? `+${text}` : text;
}

/**
 * `x` rounded to `digits` significant digits, written without exponent and without trailing zeros:
 * sig(123456, 3) = `123000`, sig(-0.012345, 3) = `-0.0123`, sig(1.5, 3) = `1.5`, sig(0, 3) = `0` (`n/a` when missing).
 */
export function sig(x: number | null | undefined, digits: number): string {
  if (!isFiniteNumber(x)) return NA;
  if (x === 0) return '0';
  const integerDigits = Math.floor(Math.log10(Math.abs(x))) + 1;
  if (integerDigits >= digits) {
    const unit = 10 ** (integerDigits - digits);
    return dropNegativeZero((Math.round(x / unit) * unit).toFixed(0));
  }
  return dropNegativeZero(trimFractionZeros(x.toFixed(Math.min(20, digits - integerDigits))));
}

/** `00` to `99`: the two-digit fields of a time. */
const TWO_DIGITS = Array.from({ length: 100 }, (_, k) => String(k).padStart(2, '0'));

/** `07-21 17:30` of a valid date with a 4-digit year (UTC). */
function monthDayMinute(d: Date): string {
  return (
    `${TWO_DIGITS[d.getUTCMonth() + 1]!}-${TWO_DIGITS[d.getUTCDate()]!} ` +
    `${TWO_DIGITS[d.getUTCHours()]!}:${TWO_DIGITS[d.getUTCMinutes()]!}`
  );
}

/** True when `d` is a valid date whose ISO form has a plain 4-digit year (0000 to 9999). */
function hasPlainYear(d: Date): boolean {
  const year = d.getUTCFullYear();
  return year >= 0 && year <= 9999;
}

/** `2025-07-21 17:30` (UTC, minute precision). */
export function utcMinute(t: number): string {
  const d = new Date(t);
  if (!hasPlainYear(d)) return d.toISOString().slice(0, 16).replace('T', ' ');
  return `${String(d.getUTCFullYear()).padStart(4, '0')}-${monthDayMinute(d)}`;
}

/** `07-21 17:30` (UTC, month-day and minute; the year is in the section or message header). */
export function utcShort(t: number): string {
  const d = new Date(t);
  if (!hasPlainYear(d)) return d.toISOString().slice(5, 16).replace('T', ' ');
  return monthDayMinute(d);
}

/**
 * Free text (a model's reason, a lesson) as one line of at most `maxChars` characters: whitespace runs collapse to
 * one space (so a reason can never start a new line or fake a `##` section), double quotes become single quotes, and
 * a longer text is cut and ends with `...`.
 */
export function oneLine(text: string, maxChars: number): string {
  const rewrite = rewriteNeeded(text);
  const flat =
    rewrite === AS_IS
      ? text
      : rewrite === QUOTES_ONLY
        ? text.replaceAll('"', "'")
        : text.replace(/\s+/g, ' ').replace(/"/g, "'").trim();
  return flat.length > maxChars ? `${flat.slice(0, Math.max(0, maxChars - 3)).trimEnd()}...` : flat;
}

/** {@link oneLine} leaves the text as it is. */
const AS_IS = 0;
/** {@link oneLine} only turns its double quotes into single quotes. */
const QUOTES_ONLY = 1;
/** {@link oneLine} also rewrites its whitespace. */
const WHITESPACE = 2;

/**
 * How much of {@link oneLine}'s rewriting `text` needs: none when it is printable ASCII with its spaces single and
 * inside (most reasons and lessons; checking is cheaper than rewriting), the quotes only when it also has double
 * quotes, else the whitespace too.
 */
function rewriteNeeded(text: string): number {
  let needed = AS_IS;
  const last = text.length - 1;
  for (let k = 0; k <= last; k++) {
    const c = text.charCodeAt(k);
    if (c === 32) {
      if (k === 0 || k === last || text.charCodeAt(k + 1) === 32) return WHITESPACE;
    } else if (c === 34) needed = QUOTES_ONLY;
    else if (c < 32 || c > 126) return WHITESPACE;
  }
  return needed;
}

/** A free-text CSV cell: quoted one-line text (see {@link oneLine}). */
function textCell(text: string, maxChars: number): string {
  return `"${oneLine(text, maxChars)}"`;
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

/**
 * `## title` followed by the lines, each ending in `\n`. Built with one join, so the text is one flat string (the
 * token counter reads it character by character, faster than a concatenation of parts).
 */
export function section(title: string, lines: readonly string[]): string {
  return [`## ${title}`, lines.join('\n'), ''].join('\n');
}

/**
 * Throws when `text` is not a well-formed section: it must start with `## ` and end with `\n`. This is the
 * precondition of the per-section token counting in the context builder (see `context-builder.ts`); a renderer that
 * breaks it is a bug in this file, so the message names the section.
 */
export function assertSectionShape(name: string, text: string): void {
  if (!text.startsWith('## ') || !text.endsWith('\n')) {
    throw new Error(
      `prompt section "${name}" is malformed: it must start with "## " and end with a newline ` +
        `(got ${JSON.stringify(text.slice(0, 40))}...${JSON.stringify(text.slice(-20))}); fix its renderer in src/llm/render.ts`,
    );
  }
}

/** The message header: pair, decision time, price and its change over the last main-timeframe candle. */
export function renderHeader(snapshot: MarketSnapshot, decimals: number): string {
  const main = snapshot.timeframes[snapshot.mainTimeframe];
  const change = main ? `${signed(main.changePct)}% vs the previous ${snapshot.mainTimeframe} close` : `change ${NA}`;
  return section(`${snapshot.pair} at ${utcMinute(snapshot.asOf)} UTC (close of a ${snapshot.mainTimeframe} candle)`, [
    `price ${fixed(snapshot.price, decimals)} (${change})`,
  ]);
}

const INDICATOR_HEADER = 'tf,close,chg%,ema20,ema50,ema100,rsi,macd,signal,hist,bb_up,bb_mid,bb_low,atr,adx,mfi,obv';

function indicatorRow(tf: string, snap: TimeframeSnapshot | undefined, decimals: number): string {
  if (!snap) return `${tf}${`,${NA}`.repeat(16)}`;
  const i: IndicatorValues = snap.indicators;
  return [
    tf,
    fixed(snap.close, decimals),
    signed(snap.changePct),
    fixed(i.ema20, decimals),
    fixed(i.ema50, decimals),
    fixed(i.ema100, decimals),
    fixed(i.rsi14, 1),
    sig(i.macd, 4),
    sig(i.macdSignal, 4),
    sig(i.macdHist, 4),
    fixed(i.bbUpper, decimals),
    fixed(i.bbMiddle, decimals),
    fixed(i.bbLower, decimals),
    fixed(i.atr14, decimals),
    fixed(i.adx14, 1),
    fixed(i.mfi14, 1),
    sig(i.obv, 4),
  ].join(',');
}

/**
 * The latest value of every indicator, one row per timeframe in `timeframes` order. A timeframe missing from the
 * snapshot (no candle of it closed yet) gets a row of `n/a`.
 */
export function renderIndicators(snapshot: MarketSnapshot, timeframes: readonly string[], decimals: number): string {
  const rows = timeframes.map((tf) => indicatorRow(tf, snapshot.timeframes[tf], decimals));
  return section('Indicators (last closed candle of each timeframe; chg% vs the previous close)', [
    INDICATOR_HEADER,
    ...rows,
  ]);
}

/** Equity, balances and the account's open positions (all pairs), with the open-trade limit. */
export function renderAccount(account: AccountSnapshot, risk: Pick<RiskConfig, 'max_open_trades'>): string {
  const open = account.positions.map((p) => `${p.pair} ${p.side} ${fixed(p.leverage, 0)}x`);
  const positions =
    open.length === 0
      ? `open positions 0 of max ${risk.max_open_trades}`
      : `open positions ${open.length} of max ${risk.max_open_trades}: ${open.join(', ')}`;
  return section('Account (USDT)', [
    `equity ${fixed(account.equity, 2)}; available ${fixed(account.available, 2)}; used margin ${fixed(account.usedMargin, 2)}; ${positions}`,
  ]);
}

/** The latest funding rate known at the snapshot time, in % per funding interval. */
export function renderFunding(funding: FundingInfo): string {
  if (!isFiniteNumber(funding.rate)) return section('Funding', [`latest rate ${NA}`]);
  const when = isFiniteNumber(funding.time) ? ` at ${utcShort(funding.time)}` : '';
  return section('Funding', [
    `latest rate ${signed(funding.rate * 100, 4)}%${when} (per funding interval; positive: longs pay shorts)`,
  ]);
}

/**
 * A lower bound on the o200k tokens of a table section with `rows` data lines of `columns` cells, known before
 * rendering it; every cell must be a number ({@link fixed}, {@link sig}), `n/a` or a time (the series and candle
 * tables). Such a cell starts with a digit, `-` or a letter and ends with a digit or a letter, so no pre-token runs
 * from one cell into the `,` or line break after it. Each `,` then starts a pre-token (`,` or `,-` before a number,
 * `,n` of `n/a`) and the cell after it holds at least one more (its digits, or the `/a` of `n/a`); a line's first
 * cell holds one, and its line break is one. So a line is at least 2 x `columns` pre-tokens, each at least one token.
 */
export function tableMinTokens(rows: number, columns: number): number {
  return 2 * rows * columns;
}

/** Rows {@link renderSeries} shows for a timeframe: the last `points` closed candles, at most the tail's length. */
export function seriesRows(snap: TimeframeSnapshot, points: number): number {
  return Math.max(0, Math.min(points, snap.tails.close.length));
}

/** Cells per row of {@link renderSeries}: close, rsi, hist, adx, vol, and with the EMAs ema20, ema50. */
export function seriesColumns(withEmas: boolean): number {
  return withEmas ? 7 : 5;
}

/**
 * The last `points` values of the series tails of one timeframe (oldest first, last row = last closed candle):
 * close, RSI14, MACD histogram, ADX14, volume, and with `withEmas` EMA20 and EMA50 (the main timeframe shows them;
 * for the informative timeframes the indicator table's latest EMAs are enough). Null when the timeframe has no tail.
 */
export function renderSeries(
  snap: TimeframeSnapshot,
  points: number,
  decimals: number,
  withEmas: boolean,
): string | null {
  const t = snap.tails;
  const n = seriesRows(snap, points);
  if (n === 0) return null;
  const lines = [withEmas ? 'close,rsi,hist,adx,vol,ema20,ema50' : 'close,rsi,hist,adx,vol'];
  for (let k = t.close.length - n; k < t.close.length; k++) {
    const row = [
      fixed(t.close[k], decimals),
      fixed(t.rsi14[k], 0),
      sig(t.macdHist[k], 3),
      fixed(t.adx14[k], 0),
      sig(t.volume[k], 3),
    ];
    if (withEmas) row.push(fixed(t.ema20[k], decimals), fixed(t.ema50[k], decimals));
    lines.push(row.join(','));
  }
  return section(`${snap.timeframe} series (last ${n} closed candles, oldest first; rsi and adx rounded)`, lines);
}

/** Rows {@link renderCandles} shows: the last `count` raw candles, at most as many as the snapshot holds. */
export function candleRows(snap: TimeframeSnapshot, count: number): number {
  return Math.max(0, Math.min(count, snap.candles.length));
}

/** Cells per row of {@link renderCandles}: open_time, open, high, low, close, vol. */
export const CANDLE_COLUMNS = 6;

/**
 * The last `count` raw candles of one timeframe (oldest first), with their OPEN time. Null when there are none.
 * The snapshot only holds candles closed at its time, so every row closed at or before the header's time.
 */
export function renderCandles(snap: TimeframeSnapshot, count: number, decimals: number): string | null {
  const n = candleRows(snap, count);
  if (n === 0) return null;
  const candles: readonly Candle[] = snap.candles.slice(snap.candles.length - n);
  const lines = ['open_time,open,high,low,close,vol'];
  for (const c of candles) {
    lines.push(
      [
        utcShort(c.time),
        fixed(c.open, decimals),
        fixed(c.high, decimals),
        fixed(c.low, decimals),
        fixed(c.close, decimals),
        sig(c.volume, 4),
      ].join(','),
    );
  }
  return section(`${snap.timeframe} candles (last ${n}, open time UTC, oldest first)`, lines);
}

// ---------------------------------------------------------------------------------------------
// Decisions and the open position
// ---------------------------------------------------------------------------------------------

const TOOL_LABEL: Record<ToolName, string> = {
  signal_entry_long: 'entry_long',
  signal_entry_short: 'entry_short',
  signal_exit: 'exit',
  adjust_position: 'adjust',
  signal_hold: 'hold',
  signal_wait: 'wait',
};

/** Longest decision reason shown, characters. */
export const DECISION_REASON_CHARS = 140;
/** Longest risk-gate or exchange detail shown for a rejected or failed decision, characters. */
export const DECISION_DETAIL_CHARS = 120;
/** Longest entry reason shown in the position section, characters. */
export const ENTRY_REASON_CHARS = 300;

/** The text shown instead of a reason equal to the previous row's (a looping model repeats itself verbatim). */
export const SAME_REASON = 'same as above';

function decisionRows(records: readonly DecisionRecord[]): string[] {
  const lines = ['time,decision,conf,pnl%,result,reason'];
  let previous: string | null = null;
  for (const r of records) {
    const label =
      r.source === 'protective' || r.source === 'operator' || r.source === 'fallback'
        ? `${TOOL_LABEL[r.tool]} (${r.source})`
        : TOOL_LABEL[r.tool];
    const result =
      r.outcome === 'none'
        ? '-'
        : r.detail && (r.outcome === 'rejected' || r.outcome === 'failed')
          ? textCell(`${r.outcome}: ${r.detail}`, DECISION_DETAIL_CHARS)
          : r.outcome;
    const reason = oneLine(r.reason, DECISION_REASON_CHARS);
    lines.push(
      [
        utcShort(r.time),
        label,
        fixed(r.confidence, 0),
        signed(r.pnlPct),
        result,
        `"${reason === previous ? SAME_REASON : reason}"`,
      ].join(','),
    );
    previous = reason;
  }
  return lines;
}

/** The last `count` decisions on the pair while flat (newest last); null when there are none or count is 0. */
export function renderRecentDecisions(records: readonly DecisionRecord[], count: number): string | null {
  if (count <= 0 || records.length === 0) return null;
  const shown = records.slice(-count);
  return section(`Your last ${shown.length} decisions on this pair (newest last)`, decisionRows(shown));
}

/** ADX regime used for "changed since entry": below 20, 20 to 40 inclusive, above 40. */
export function adxRegime(adx: number): 'weak (<20)' | 'trending (20-40)' | 'strong (>40)' {
  return adx < 20 ? 'weak (<20)' : adx > 40 ? 'strong (>40)' : 'trending (20-40)';
}

/** RSI zone used for "changed since entry": below 40, 40 to 60 inclusive, above 60. */
export function rsiZone(rsi: number): 'below 40' | '40-60' | 'above 60' {
  return rsi < 40 ? 'below 40' : rsi > 60 ? 'above 60' : '40-60';
}

const RSI_ZONE_RANK = { 'below 40': 0, '40-60': 1, 'above 60': 2 } as const;

function stance(bullish: boolean, side: Side): string {
  return bullish === (side === 'long') ? `in favour of your ${side}` : `against your ${side}`;
}

/**
 * How the main timeframe changed between the entry (`entry`, recorded in the position) and now, as prompt lines:
 * - the price move, always;
 * - ATR14 changed by more than 50 % (either way);
 * - EMA20 crossed EMA50 (the sign of ema20 - ema50 differs; equal counts as no side);
 * - the MACD histogram changed sign (strictly positive ↔ strictly negative);
 * - RSI14 moved to another zone (below 40 / 40-60 / above 60);
 * - the ADX14 regime changed (below 20 / 20-40 / above 40).
 * Each line says whether the change favours the position's side (volatility and ADX have no direction).
 * When no rule fires, one line says so; indicators missing at entry or now are listed as not comparable.
 */
export function marketChangesSinceEntry(
  entry: MarketStateSummary,
  now: MarketStateSummary,
  side: Side,
  decimals: number,
): string[] {
  const p = (x: number) => fixed(x, decimals);
  const lines: string[] = [];
  const unknown: string[] = [];
  const move = entry.price > 0 ? ((now.price - entry.price) / entry.price) * 100 : null;
  lines.push(`price ${p(entry.price)} -> ${p(now.price)} (${signed(move)}%)`);
  const changes: string[] = [];

  if (isFiniteNumber(entry.atr14) && isFiniteNumber(now.atr14) && entry.atr14 > 0) {
    const change = (now.atr14 / entry.atr14 - 1) * 100;
    if (Math.abs(change) > 50) {
      changes.push(
        `ATR14 ${change > 0 ? 'rose' : 'fell'} ${fixed(Math.abs(change), 0)}% (${p(entry.atr14)} -> ${p(now.atr14)}): ` +
          `volatility ${change > 0 ? 'expanded' : 'contracted'}`,
      );
    }
  } else unknown.push('ATR14');

  if (
    isFiniteNumber(entry.ema20) &&
    isFiniteNumber(entry.ema50) &&
    isFiniteNumber(now.ema20) &&
    isFiniteNumber(now.ema50)
  ) {
    const before = Math.sign(entry.ema20 - entry.ema50);
    const after = Math.sign(now.ema20 - now.ema50);
    if (before !== 0 && after !== 0 && before !== after) {
      const bullish = after > 0;
      changes.push(
        `EMA20 crossed ${bullish ? 'above' : 'below'} EMA50 (${bullish ? 'bullish' : 'bearish'} cross, ${stance(bullish, side)})`,
      );
    }
  } else unknown.push('EMA20/EMA50');

  if (isFiniteNumber(entry.macdHist) && isFiniteNumber(now.macdHist)) {
    const flipped = (entry.macdHist > 0 && now.macdHist < 0) || (entry.macdHist < 0 && now.macdHist > 0);
    if (flipped) {
      const bullish = now.macdHist > 0;
      changes.push(
        `MACD histogram turned ${bullish ? 'positive' : 'negative'} (${sig(entry.macdHist, 3)} -> ${sig(now.macdHist, 3)}, ` +
          `${stance(bullish, side)})`,
      );
    }
  } else unknown.push('MACD histogram');

  if (isFiniteNumber(entry.rsi14) && isFiniteNumber(now.rsi14)) {
    const from = rsiZone(entry.rsi14);
    const to = rsiZone(now.rsi14);
    if (from !== to) {
      const bullish = RSI_ZONE_RANK[to] > RSI_ZONE_RANK[from];
      changes.push(
        `RSI14 moved from ${from} to ${to} (${fixed(entry.rsi14, 1)} -> ${fixed(now.rsi14, 1)}, ${stance(bullish, side)})`,
      );
    }
  } else unknown.push('RSI14');

  if (isFiniteNumber(entry.adx14) && isFiniteNumber(now.adx14)) {
    const from = adxRegime(entry.adx14);
    const to = adxRegime(now.adx14);
    if (from !== to) {
      changes.push(`ADX14 regime ${from} -> ${to} (${fixed(entry.adx14, 1)} -> ${fixed(now.adx14, 1)})`);
    }
  } else unknown.push('ADX14');

  if (changes.length > 0) lines.push(...changes);
  else
    lines.push(
      'no major change (ATR within 50%, no EMA20/50 cross, same MACD histogram sign, RSI zone and ADX regime)',
    );
  if (unknown.length > 0) lines.push(`not comparable (${NA} at entry or now): ${unknown.join(', ')}`);
  return lines;
}

/**
 * The open position: side, leverage, prices, size, PnL now (leveraged % of margin, from the price, before fees),
 * fees, funding, MFE/MAE and drawdown from the peak, holds and adjustments, the protective levels, the entry's
 * confidence and reason, how the market changed since entry, and the decisions taken since entry (the last
 * `maxDecisions`, newest last).
 */
export function renderPosition(
  position: PositionState,
  snapshot: MarketSnapshot,
  decisions: readonly DecisionRecord[],
  risk: Pick<RiskConfig, 'emergency_stop_loss' | 'max_adjustments_per_trade'>,
  maxDecisions: number,
  decimals: number,
): string {
  const p = (x: number | null) => fixed(x, decimals);
  const price = snapshot.price;
  const pnlPct = leveragedReturn(position.side, position.entryPrice, price, position.leverage) * 100;
  const pnlUsdt = unrealizedPnl(position.side, position.entryPrice, position.quantity, price);
  const heldMs = Math.max(0, snapshot.asOf - position.entryTime);
  const heldCandles = Math.floor(heldMs / timeframeMs(snapshot.mainTimeframe));
  const liq = position.liquidationPrice;
  const liqDistance =
    isFiniteNumber(liq) && price > 0 ? `${fixed((Math.abs(price - liq) / price) * 100, 1)}% away` : null;
  const stop = stopPriceFor(position.side, position.entryPrice, position.leverage, risk.emergency_stop_loss);
  const funding =
    position.funding > 0
      ? `funding paid ${fixed(position.funding, 2)}`
      : position.funding < 0
        ? `funding received ${fixed(-position.funding, 2)}`
        : 'funding 0.00';
  const lines = [
    `side ${position.side}; leverage ${fixed(position.leverage, 0)}x; entry ${p(position.entryPrice)} at ${utcMinute(position.entryTime)} ` +
      `(held ${formatDuration(heldMs)}, ${heldCandles} candles); price now ${p(price)}`,
    `quantity ${sig(position.quantity, 6)}; margin ${fixed(position.margin, 2)}; notional ${fixed(position.quantity * price, 2)}; ` +
      `liquidation ${p(liq)}${liqDistance ? ` (${liqDistance})` : ''}; emergency stop ${p(stop)} ` +
      `(${fixed(risk.emergency_stop_loss * 100, 0)}% of margin)`,
    `PnL ${signed(pnlPct)}% of margin (${signed(pnlUsdt)} USDT, from the price, before fees); fees ${fixed(position.fees, 2)}; ` +
      `${funding}; realised ${signed(position.realizedPnl)}`,
    `MFE ${signed(position.mfePct)}%; MAE ${signed(position.maePct)}%; drawdown from peak ${fixed(Math.max(0, position.mfePct - pnlPct), 2)} pts; ` +
      `holds ${position.holds}; adjustments ${position.adjustments} of max ${risk.max_adjustments_per_trade}`,
    `entry confidence ${fixed(position.entryConfidence, 0)}; entry reason ${textCell(position.entryReason, ENTRY_REASON_CHARS)}`,
    'changes since entry (main timeframe):',
    ...marketChangesSinceEntry(position.entryMarket, marketStateOf(snapshot), position.side, decimals).map(
      (l) => `- ${l}`,
    ),
  ];
  const since = maxDecisions > 0 ? decisions.filter((d) => d.time >= position.entryTime).slice(-maxDecisions) : [];
  if (since.length > 0) {
    lines.push(`your last ${since.length} decisions on this trade (newest last):`, ...decisionRows(since));
  }
  return section(`Open position on ${position.pair}`, lines);
}

// ---------------------------------------------------------------------------------------------
// Learning
// ---------------------------------------------------------------------------------------------

/** One closed trade as the prompt shows it (built from a `ClosedTrade`, its reflection and its evaluation). */
export interface LearnedTrade {
  pair: string;
  side: Side;
  leverage: number;
  exitTime: number;
  /** exitTime - entryTime, ms */
  durationMs: number;
  /** net PnL, leveraged % of margin */
  pnlPct: number;
  exitReason: CloseReason;
  /** evaluation grade (A+ to F), or null when not evaluated */
  grade: string | null;
  /** reflection lessons, most important first */
  lessons: string[];
}

/** Longest lessons text per trade, characters. */
export const LESSONS_CHARS = 200;

/**
 * Whole lessons, most important first, while they fit in `maxChars` (joined by a space); the first one is cut (with
 * `...`) only when it alone is longer. `none recorded` when there are none.
 */
export function joinLessons(lessons: readonly string[], maxChars: number): string {
  let text = '';
  for (const lesson of lessons) {
    const line = oneLine(lesson, maxChars);
    if (line === '') continue;
    if (text === '') text = line;
    else if (text.length + 1 + line.length <= maxChars) text += ` ${line}`;
    else break;
  }
  return text === '' ? 'none recorded' : text;
}

/** Closed trades with their lessons (newest last); the pair column only when some trade is of another pair. */
export function renderRecentTrades(pair: string, trades: readonly LearnedTrade[]): string | null {
  if (trades.length === 0) return null;
  const withPair = trades.some((t) => t.pair !== pair);
  const lines = [`${withPair ? 'pair,' : ''}exit_time,side,lev,pnl%,held,closed_by,grade,lessons`];
  for (const t of trades) {
    lines.push(
      [
        ...(withPair ? [t.pair] : []),
        utcShort(t.exitTime),
        t.side,
        fixed(t.leverage, 0),
        signed(t.pnlPct),
        formatDuration(t.durationMs),
        t.exitReason,
        t.grade ?? NA,
        `"${joinLessons(t.lessons, LESSONS_CHARS)}"`,
      ].join(','),
    );
  }
  return section(`Your recent closed trades${withPair ? '' : ` on ${pair}`} (newest last; pnl% of margin)`, lines);
}

/** A one-paragraph performance summary (e.g. the 30-day summary); null when there is none. */
export function renderSummary(text: string | null): string | null {
  if (text === null || text.trim() === '') return null;
  return section('Performance summary', [oneLine(text, 600)]);
}

/** Pattern statistics lines; null when there are none. */
export function renderPatterns(lines: readonly string[]): string | null {
  const kept = lines.map((l) => oneLine(l, 400)).filter((l) => l !== '');
  if (kept.length === 0) return null;
  return section('Patterns in your past trades', kept);
}

/** Decision-quality warnings as a bullet list; null when there are none. */
export function renderWarnings(warnings: readonly string[]): string | null {
  const kept = warnings.map((w) => oneLine(w, 400)).filter((w) => w !== '');
  if (kept.length === 0) return null;
  return section(
    'Decision-quality warnings (from your recent decisions)',
    kept.map((w) => `- ${w}`),
  );
}

/** The note saying which sections were left out to fit the token budget. */
export function renderOmitted(names: readonly string[]): string {
  return section('Omitted to fit the token budget', [names.join('; ')]);
}
