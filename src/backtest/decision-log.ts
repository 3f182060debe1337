/**
 * Every decision of a backtest, stored by column: numbers in typed arrays, repeated strings (pair, tool, source,
 * model, outcome) as small codes, the reasons joined into long strings ({@link TextColumn}), the arguments of a hold or
 * a wait as two numbers and other arguments as a copy. A row object ({@link DecisionRow}, the shape result.ts
 * documents) is made only when it is read (`at`, iteration, `toJSON`).
 *
 * Why. A run over 17 pairs makes ~50,000 decisions per 3,000 steps and keeps them all. As one object per row (plus
 * its boxed numbers and an argument copy) they were most of what survived each young-generation collection, and
 * building and keeping them cost about a fifth of the backtest's time (measured: 194k vs 234k candle-steps/s without
 * them). Keeping each reason as its own string still cost ~10 %: every one was copied by one or two young-generation
 * collections before it reached the old generation (measured with paired runs: 1.11x without reasons and arguments).
 * The columns hold the same values: `JSON.stringify` of the log is byte for byte that of the row array (tested).
 */
import type { DecisionRecord } from '../core/cycle';
import type { DecisionResult, ToolName } from '../core/types';
import type { ProviderDecision } from '../llm/provider';
import type { DecisionRow } from './result';

const OUTCOMES: readonly DecisionRow['outcome'][] = ['none', 'executed', 'rejected', 'refused', 'failed'];

/** Strings seen in one column, each given a small code in order of first appearance. */
class Codes<T extends string | null> {
  readonly values: T[] = [];
  private readonly index = new Map<T, number>();
  /** the last value coded (most rows repeat the previous row's tool, source and model) */
  private last: T | undefined = undefined;
  private lastCode = -1;

  code(value: T): number {
    if (value === this.last) return this.lastCode;
    let c = this.index.get(value);
    if (c === undefined) {
      c = this.values.length;
      this.values.push(value);
      this.index.set(value, c);
    }
    this.last = value;
    this.lastCode = c;
    return c;
  }
}

const NO_PROBLEMS: readonly string[] = Object.freeze([]);
const NO_FIELDS: readonly string[] = Object.freeze([]);

/**
 * `text` as one flat string (same characters). A reason built by concatenation is a tree of fragments (a cons
 * string in V8); the log keeps it for the whole run, and the garbage collector would then copy and trace every
 * fragment. Reading a character from the middle makes V8 flatten the string in place. Measured on 300,000 retained
 * reasons: 115 MB of heap as trees, 35 MB flat, and a full collection 7 times faster.
 */
function flatString(text: string): string {
  text.charCodeAt(text.length >> 1);
  return text;
}

/**
 * Rows per chunk of a {@link TextColumn}. Texts wait to be joined for at most this many decisions, a small part of the
 * thousands between two young-generation collections, so few are ever copied by one. Measured with paired runs:
 * 256 rows took scavenges from 2.2 to 1.7 ms and gave 1.05x over keeping each reason; 2,048 rows kept too many
 * waiting (0.96x).
 */
const CHUNK_ROWS = 256;

/**
 * A column of texts kept as a few long strings: the texts of `CHUNK_ROWS` rows are joined into one string (their ends
 * in an Int32Array), and a row's text is cut out of it when read. The texts themselves then die young, and a chunk is
 * one flat string that a collection copies with one move. Joining also flattens a text built by concatenation (a tree
 * of fragments in V8, which a collector would otherwise trace and copy fragment by fragment).
 */
class TextColumn {
  /** joined texts: chunk k holds rows k * CHUNK_ROWS up to (k + 1) * CHUNK_ROWS - 1 */
  private readonly chunks: string[] = [];
  /** texts of the rows after the last chunk */
  private pending: string[] = new Array<string>(CHUNK_ROWS);
  private pendingCount = 0;
  private pendingLength = 0;
  /** end of each row's text within its chunk */
  private ends: Int32Array;

  constructor(capacity: number) {
    this.ends = new Int32Array(capacity);
  }

  /** Sets row `i`, which must be the row after the last one set. */
  push(i: number, text: string): void {
    this.pendingLength += text.length;
    this.ends[i] = this.pendingLength;
    this.pending[this.pendingCount++] = text;
    if (this.pendingCount === CHUNK_ROWS) {
      this.chunks.push(this.pending.join(''));
      this.pending = new Array<string>(CHUNK_ROWS);
      this.pendingCount = 0;
      this.pendingLength = 0;
    }
  }

  at(i: number): string {
    const k = Math.floor(i / CHUNK_ROWS);
    const first = k * CHUNK_ROWS;
    if (k === this.chunks.length) return this.pending[i - first]!;
    return this.chunks[k]!.slice(i === first ? 0 : this.ends[i - 1]!, this.ends[i]!);
  }

  grow(capacity: number): void {
    const ends = new Int32Array(capacity);
    ends.set(this.ends);
    this.ends = ends;
  }
}

/** The arguments of a hold or a wait in schema order; such a row keeps only its two numbers. */
const HOLD_KEYS = ['pair', 'confidence_score', 'rsi_value', 'reason'] as const;

/**
 * True when `args` are exactly those of {@link HOLD_KEYS}, in that order, with numbers where numbers belong (and a
 * confidence that is not NaN, which marks the rows that keep their arguments as an object).
 */
function isHoldShape(args: Readonly<Record<string, unknown>>): boolean {
  let k = 0;
  for (const key in args) {
    if (key !== HOLD_KEYS[k]) return false;
    k++;
  }
  const { confidence_score: confidence, rsi_value: rsi } = args;
  return (
    k === HOLD_KEYS.length && typeof confidence === 'number' && !Number.isNaN(confidence) && typeof rsi === 'number'
  );
}

/** NaN stands for null in the number columns (JSON writes both as `null`). */
function orNaN(x: number | null): number {
  return x === null ? NaN : x;
}

function orNull(x: number): number | null {
  return Number.isNaN(x) ? null : x;
}

export class DecisionLog implements Iterable<DecisionRow> {
  private size = 0;
  private capacity: number;
  private time: Float64Array;
  private confidence: Float64Array;
  private pnlPct: Float64Array;
  private equity: Float64Array;
  private available: Float64Array;
  private tokensIn: Float64Array;
  private tokensOut: Float64Array;
  private tokensCachedIn: Float64Array;
  /** model requests of the decision (its rounds) */
  private requests: Uint8Array;
  /** pair, tool, source, model and outcome codes, 5 per row */
  private codes: Uint16Array;
  /** a hold's or a wait's confidence_score and rsi_value (NaN when the row keeps its arguments in `args`) */
  private holdConfidence: Float64Array;
  private holdRsi: Float64Array;
  // The object columns are allocated at the expected size and filled by index: grown by push, their backing stores
  // were copied ~20 times per run, and every copy survived long enough to be promoted.
  private readonly reason: TextColumn;
  private readonly detail: (string | null)[];
  /** the decision's arguments without pair and reason, unless kept as numbers above; null without a provider */
  private readonly args: (Record<string, unknown> | null)[];
  private readonly clientOrderId: (string | null)[];
  private readonly problems: (readonly string[])[];
  private readonly dropped: (readonly string[])[];
  private readonly pairs = new Codes<string>();
  private readonly tools = new Codes<ToolName>();
  private readonly sources = new Codes<string>();
  private readonly models = new Codes<string | null>();
  /** sums kept as rows are added (the metrics read them) */
  readonly totals = { tokensIn: 0, tokensOut: 0, fallbacks: 0, rejections: 0 };

  /** @param expected rows the run will likely add (the columns grow past it when needed) */
  constructor(expected = 1024) {
    this.capacity = Math.max(16, expected);
    this.time = new Float64Array(this.capacity);
    this.confidence = new Float64Array(this.capacity);
    this.pnlPct = new Float64Array(this.capacity);
    this.equity = new Float64Array(this.capacity);
    this.available = new Float64Array(this.capacity);
    this.tokensIn = new Float64Array(this.capacity);
    this.tokensOut = new Float64Array(this.capacity);
    this.tokensCachedIn = new Float64Array(this.capacity);
    this.requests = new Uint8Array(this.capacity);
    this.holdConfidence = new Float64Array(this.capacity);
    this.holdRsi = new Float64Array(this.capacity);
    this.codes = new Uint16Array(this.capacity * 5);
    this.reason = new TextColumn(this.capacity);
    this.detail = new Array<string | null>(this.capacity);
    this.args = new Array<Record<string, unknown> | null>(this.capacity);
    this.clientOrderId = new Array<string | null>(this.capacity);
    this.problems = new Array<readonly string[]>(this.capacity);
    this.dropped = new Array<readonly string[]>(this.capacity);
  }

  get length(): number {
    return this.size;
  }

  /**
   * Appends the row of one decision: its record, the provider's result (null for a protective or operator exit), the
   * account the cycle saw, and the order it produced. A decision served from the decision cache is logged as
   * `openai`, so a cached rerun gives the same result.
   */
  add(
    pair: string,
    record: DecisionRecord,
    result: DecisionResult | null,
    account: { equity: number; available: number },
    clientOrderId: string | null,
  ): void {
    if (this.size === this.capacity) this.grow();
    const i = this.size++;
    const provided = result as ProviderDecision | null;
    const usage = provided?.originalUsage ?? provided?.usage;
    const source = record.source === 'cache' ? 'openai' : record.source;
    this.time[i] = record.time;
    this.confidence[i] = orNaN(record.confidence);
    this.pnlPct[i] = orNaN(record.pnlPct);
    this.equity[i] = account.equity;
    this.available[i] = account.available;
    this.tokensIn[i] = usage ? usage.input : 0;
    this.tokensOut[i] = usage ? usage.output : 0;
    this.tokensCachedIn[i] = usage?.cachedInput ?? 0;
    this.requests[i] = provided?.rounds ?? 0;
    const c = i * 5;
    this.codes[c] = this.pairs.code(pair);
    this.codes[c + 1] = this.tools.code(record.tool);
    this.codes[c + 2] = this.sources.code(source);
    this.codes[c + 3] = this.models.code(result?.model ?? null);
    this.codes[c + 4] = OUTCOMES.indexOf(record.outcome);
    this.reason.push(i, record.reason);
    this.detail[i] = record.detail === null ? null : flatString(record.detail);
    // every tool's arguments are a plain object of JSON values (tools.ts); read them by key
    const args = result ? (result.decision.args as unknown as Readonly<Record<string, unknown>>) : null;
    if (args !== null && isHoldShape(args)) {
      this.holdConfidence[i] = args.confidence_score as number;
      this.holdRsi[i] = args.rsi_value as number;
      this.args[i] = null;
    } else {
      this.holdConfidence[i] = NaN;
      this.args[i] = args === null ? null : argsOf(args);
    }
    this.clientOrderId[i] = clientOrderId;
    this.problems[i] = result === null || result.problems.length === 0 ? NO_PROBLEMS : result.problems;
    const dropped = provided?.droppedFields;
    this.dropped[i] = dropped === undefined || dropped.length === 0 ? NO_FIELDS : dropped;
    this.totals.tokensIn += this.tokensIn[i]!;
    this.totals.tokensOut += this.tokensOut[i]!;
    if (source === 'fallback') this.totals.fallbacks++;
    if (record.outcome === 'rejected') this.totals.rejections++;
  }

  /** Row `i` (0-based, in the order added) as a {@link DecisionRow}. */
  at(i: number): DecisionRow {
    if (!(Number.isInteger(i) && i >= 0 && i < this.size)) {
      throw new RangeError(`decision row ${i} is out of range: the log has ${this.size} rows`);
    }
    const c = i * 5;
    return {
      time: this.time[i]!,
      pair: this.pairs.values[this.codes[c]!]!,
      tool: this.tools.values[this.codes[c + 1]!]!,
      source: this.sources.values[this.codes[c + 2]!]!,
      model: this.models.values[this.codes[c + 3]!]!,
      confidence: orNull(this.confidence[i]!),
      reason: this.reason.at(i),
      outcome: OUTCOMES[this.codes[c + 4]!]!,
      detail: this.detail[i]!,
      args: this.argsAt(i),
      pnl_pct: orNull(this.pnlPct[i]!),
      equity: this.equity[i]!,
      available: this.available[i]!,
      client_order_id: this.clientOrderId[i]!,
      tokens_in: this.tokensIn[i]!,
      tokens_out: this.tokensOut[i]!,
      tokens_cached_in: this.tokensCachedIn[i]!,
      requests: this.requests[i]!,
      problems: this.problems[i]!,
      dropped_fields: this.dropped[i]!,
    };
  }

  *[Symbol.iterator](): Iterator<DecisionRow> {
    for (let i = 0; i < this.size; i++) yield this.at(i);
  }

  /** Every row, in the order added. */
  toArray(): DecisionRow[] {
    const rows = new Array<DecisionRow>(this.size);
    for (let i = 0; i < this.size; i++) rows[i] = this.at(i);
    return rows;
  }

  /** `JSON.stringify` writes the log as its array of rows. */
  toJSON(): DecisionRow[] {
    return this.toArray();
  }

  /** Row `i`'s arguments: a new object on every call. */
  private argsAt(i: number): Record<string, unknown> | null {
    const confidence = this.holdConfidence[i]!;
    if (!Number.isNaN(confidence)) return { confidence_score: confidence, rsi_value: this.holdRsi[i]! };
    const args = this.args[i]!;
    return args === null ? null : { ...args };
  }

  private grow(): void {
    this.capacity *= 2;
    const wider = (a: Float64Array) => {
      const b = new Float64Array(this.capacity);
      b.set(a);
      return b;
    };
    this.time = wider(this.time);
    this.confidence = wider(this.confidence);
    this.pnlPct = wider(this.pnlPct);
    this.equity = wider(this.equity);
    this.available = wider(this.available);
    this.holdConfidence = wider(this.holdConfidence);
    this.holdRsi = wider(this.holdRsi);
    this.tokensIn = wider(this.tokensIn);
    this.tokensOut = wider(this.tokensOut);
    this.tokensCachedIn = wider(this.tokensCachedIn);
    const requests = new Uint8Array(this.capacity);
    requests.set(this.requests);
    this.requests = requests;
    const codes = new Uint16Array(this.capacity * 5);
    codes.set(this.codes);
    this.codes = codes;
    this.reason.grow(this.capacity);
    for (const column of [this.detail, this.args, this.clientOrderId, this.problems, this.dropped]) {
      column.length = this.capacity;
    }
  }
}

/** The decision's arguments other than `pair` and `reason` (which the row has already), in their order. */
function argsOf(args: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in args) if (key !== 'pair' && key !== 'reason') out[key] = args[key];
  return out;
}
