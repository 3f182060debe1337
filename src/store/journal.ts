/**
 * The journal: every decision and every closed trade, in SQLite (`<data_dir>/journal.sqlite`, WAL) and in the
 * original system's log files under `<data_dir>/logs/`:
 * - `llm_decisions.jsonl`: one line per decision, with the original's field names (timestamp, pair, action, decision,
 *   reasoning, confidence, market_context, function_calls) plus tokens, latency_ms, model, source, outcome;
 * - `trade_experience.jsonl`: one line per closed trade (profit, leverage, stake, duration, drawdown, lessons...);
 * - `missed_candles.jsonl`: one line per gap of candle closes a pair workflow skipped (outage, stale cycle);
 * - `reward_learning.json`: the reward history and its statistics, rewritten whole after every new trade.
 * It also answers the learning queries the prompts need (recent trades with lessons, 30-day summary, patterns), and
 * keeps the prompt of each decision by its id (`recordPrompt`, before the model is asked), so the workflow's history
 * need not carry prompts.
 *
 * Every decision and trade belongs to a run: the trading account it was taken on (`paper`, `live`, `replay-<id>`);
 * the queries the CLI uses filter by run. Rows of a schema-v1 file have the run '' (they were written before runs).
 *
 * Guarantees
 * - Idempotent. A decision is keyed by (owner, pair, time) and named by `decisionId(owner, pair, time)`: owner is the
 *   pair workflow id or the backtest run id, time the candle close the decision was taken at, and a cycle journals at
 *   most one decision. A trade is keyed by its trade id, a gap of missed candles by (owner, pair, first close).
 *   Recording the same key again (a retried activity, a review workflow that ran twice) writes no second row, no
 *   second JSONL line, no second reward entry.
 * - Two steps: the row first, then its line. (1) The row is inserted and committed (BEGIN IMMEDIATE), marked
 *   `logged = 0`; for a trade the reward row and `reward_learning.json` go in the same transaction, and a failed
 *   reward-file write rolls it all back. (2) Under the write lock, the JSONL line is appended whole and the row is
 *   marked `logged = 1`. A record whose row is already there with `logged = 0` (a call that failed or crashed
 *   between the steps, or between the append and the mark) is completed by the repeat: its id (`decision_id`,
 *   `trade_id`, or owner/pair/`first_close`) is looked for in the last 4 MB of the JSONL file, the line is appended
 *   only when it is not there, and the row is marked. So a retry after a crash at any point gives one row and one
 *   line. (The one gap: if more than 4 MB of other lines were appended between a crash after the append and the
 *   retry, the retry appends the line again.) `reward_learning.json` is rendered from the rewards table (never read
 *   back), written to a temporary file and renamed over the old one, so readers and crashes only ever see a complete
 *   file; after a rollback it is rendered again from the committed rows.
 * - No secrets. The journal is never given config secrets, and every string of every record (including object keys)
 *   passes through a {@link Redactor} built from the configured secrets before it reaches SQLite or a file.
 *
 * Several processes may share one journal: SQLite serialises the writers, JSONL lines are appended whole with
 * O_APPEND, and the reward file is rewritten while the writer holds SQLite's write lock.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Config, ExperienceConfig } from '../core/config';
import type { ChatMessage, DecisionContext } from '../core/context-types';
import type { DecisionRecord } from '../core/cycle';
import {
  analyzePatterns,
  assertReviewableTrade,
  REWARD_HISTORY_CAP,
  rewardStats,
  summarizePeriod,
  THIRTY_DAYS_MS,
  type Grade,
  type PatternReport,
  type PeriodSummary,
  type Reflection,
  type RewardBreakdown,
  type RewardEntry,
  type RewardHistory,
  type RewardStats,
  type TradeEvaluation,
  type TradeReview,
} from '../core/learning';
import type { ClosedTrade, CloseReason, Decision, Side, TokenUsage, ToolName, Verdict } from '../core/types';
import { buildLearningContext, type LearningContext } from '../llm/learning-context';
import type { ProviderDecision } from '../llm/provider';
import { appendJsonLine, jsonLineInTail } from './jsonl';
import { Redactor } from '../core/redact';
import { writeFileAtomic } from './atomic-file';
import { tradeRow } from '../core/trade-row';
import { decisionId } from '../core/ids';

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

export const JOURNAL_DB_FILE = 'journal.sqlite';
export const LOGS_DIR = 'logs';
export const DECISIONS_LOG_FILE = 'llm_decisions.jsonl';
export const TRADES_LOG_FILE = 'trade_experience.jsonl';
export const REWARD_FILE = 'reward_learning.json';
export const MISSED_CANDLES_LOG_FILE = 'missed_candles.jsonl';

/** Marks a reward file written by this journal; any other content is moved aside, never overwritten. */
export const REWARD_FILE_FORMAT = 'llm-trader reward history v1';

/** Temporary reward files older than this are leftovers of a crashed writer and are removed on open. */
const STALE_TEMP_MS = 5 * 60_000;

/** How many of a pair's latest decisions the learning context reads for the decision-quality warnings. */
export const LEARNING_DECISIONS_WINDOW = 50;

export interface JournalPaths {
  database: string;
  logsDir: string;
  decisionsLog: string;
  tradesLog: string;
  rewardFile: string;
  missedCandlesLog: string;
}

/** Where the journal of `dataDir` keeps its files (absolute paths). */
export function journalPaths(dataDir: string): JournalPaths {
  const root = resolve(dataDir);
  const logsDir = join(root, LOGS_DIR);
  return {
    database: join(root, JOURNAL_DB_FILE),
    logsDir,
    decisionsLog: join(logsDir, DECISIONS_LOG_FILE),
    tradesLog: join(logsDir, TRADES_LOG_FILE),
    rewardFile: join(logsDir, REWARD_FILE),
    missedCandlesLog: join(logsDir, MISSED_CANDLES_LOG_FILE),
  };
}

// ---------------------------------------------------------------------------------------------
// Inputs and outputs
// ---------------------------------------------------------------------------------------------

/** The part of a DecisionContext worth keeping for audit: what was sent to the model, and its size. */
export interface JournalContext {
  /** the prompt exactly as sent: system message, then the user message */
  messages: ChatMessage[];
  /** measured prompt tokens (messages + tools, o200k_base); null when not counted */
  tokens: number | null;
  hasPosition: boolean;
  /** the tools offered; their definitions are fixed by the code, so the names identify them */
  allowedTools: ToolName[];
  /** the decision price (last main-timeframe close) */
  price: number;
}

/** The compact audit record of a decision context (drops the snapshot and the tool definitions). */
export function journalContext(ctx: DecisionContext): JournalContext {
  return {
    messages: ctx.messages.map((m) => ({ role: m.role, content: m.content })),
    tokens: ctx.tokens,
    hasPosition: ctx.hasPosition,
    allowedTools: [...ctx.allowedTools],
    price: ctx.snapshot.price,
  };
}

/**
 * The trading account a decision or trade belongs to: `paper`, `live`, or `replay-<id>` for one replay execution.
 * `''` is the run of rows journaled before runs were recorded (schema v1). `all` is not a run: the CLI's `--run all`
 * means every run.
 */
export type RunId = string;

/** One decision to journal: the cycle's `decision` event plus who made it and what was sent. */
export interface DecisionEntry {
  /**
   * `decisionId(owner, pair, record.time)` (src/core/ids.ts); computed when omitted, refused when it is another id.
   * The prompt recorded under it ({@link Journal.recordPrompt}) is used when `context` is null.
   */
  decisionId?: string;
  /** the run (see {@link RunId}); default '' */
  run?: RunId;
  /** the pair workflow id, or the backtest run id (the owner of the cycle's client order ids) */
  owner: string;
  pair: string;
  /** the cycle's record; `record.time` is the decision time (candle close, Unix ms) */
  record: DecisionRecord;
  /** the provider's result; null for a protective or operator exit (no provider was asked) */
  result: ProviderDecision | null;
  verdict: Verdict | null;
  /**
   * what was sent to the model (see {@link journalContext}); null when no context was built, or when the prompt was
   * stored with {@link Journal.recordPrompt} under the decision's id (the stored prompt is then journaled)
   */
  context: JournalContext | null;
  /** the client order id of the order this decision produced, if any */
  clientOrderId: string | null;
}

/** A tool call as the decision log shows it; `origin` is null when no model call was made (baseline, replay...). */
export interface LoggedToolCall {
  id: string | null;
  name: string;
  arguments: unknown;
  origin: 'native' | 'text' | null;
}

/** One line of `llm_decisions.jsonl`. The first eight fields are the original system's. */
export interface DecisionLine {
  /** decision time, ISO 8601 UTC */
  timestamp: string;
  pair: string;
  /** the tool: signal_entry_long, signal_exit, signal_hold... */
  action: ToolName;
  /** the validated tool arguments; null for a protective or operator exit */
  decision: Decision['args'] | null;
  reasoning: string;
  confidence: number | null;
  /** the prompt as sent; null for a protective or operator exit */
  market_context: {
    price: number;
    has_position: boolean;
    allowed_tools: ToolName[];
    prompt_tokens: number | null;
    messages: ChatMessage[];
  } | null;
  /** the model's raw tool calls; for a provider without a model, the decision as one call */
  function_calls: LoggedToolCall[];
  tokens: TokenUsage;
  latency_ms: number;
  model: string | null;
  source: DecisionRecord['source'];
  outcome: DecisionRecord['outcome'];
  detail: string | null;
  verdict: Verdict | null;
  /** leveraged PnL % of the open position when decided; null when flat */
  pnl_pct: number | null;
  thinking: string | null;
  problems: string[];
  notes: string[];
  owner: string;
  client_order_id: string | null;
  decision_id: string;
  run: RunId;
}

/** A decision as stored: the cycle's record plus the provider's and the risk gate's output. */
export interface JournaledDecision extends DecisionRecord {
  /** row id; increases with every recorded decision */
  id: number;
  /** `decisionId(owner, pair, time)` */
  decisionId: string;
  run: RunId;
  owner: string;
  pair: string;
  model: string | null;
  decision: Decision | null;
  verdict: Verdict | null;
  tokensIn: number;
  tokensOut: number;
  latencyMs: number;
  thinking: string | null;
  clientOrderId: string | null;
  /** the model's raw tool calls (or the decision as one call when no model was asked); see {@link DecisionLine} */
  functionCalls: LoggedToolCall[];
  problems: string[];
  notes: string[];
  /** the prompt (the stored one of {@link Journal.recordPrompt} when the entry had none); only filled when asked for
   * (`withContext`, {@link Journal.decision}), else null */
  context: JournalContext | null;
  /** when the row was written, Unix ms (wall clock) */
  recordedAt: number;
}

/** A closed trade as stored, with what its review concluded. */
export interface JournaledTrade {
  trade: ClosedTrade;
  run: RunId;
  /** reflection lessons, most important first; empty when none were recorded */
  lessons: string[];
  grade: Grade | null;
  /** evaluation total, 0..100 */
  score: number | null;
  reward: number | null;
  reviewSummary: string | null;
  reflectionSummary: string | null;
}

/** One line of `trade_experience.jsonl`. Percentages are leveraged % of margin; times ISO 8601 UTC. */
export interface TradeExperienceLine {
  timestamp: string;
  trade_id: string;
  pair: string;
  side: Side;
  entry_time: string;
  exit_time: string;
  duration_minutes: number;
  entry_price: number;
  exit_price: number;
  quantity: number;
  leverage: number;
  /** largest margin, USDT */
  stake: number;
  notional: number;
  profit_usdt: number;
  profit_pct: number;
  fees: number;
  funding: number;
  /** maximum favourable excursion */
  max_profit_pct: number;
  /** maximum adverse excursion (<= 0) */
  max_drawdown_pct: number;
  exit_reason: CloseReason;
  trade_score: number | null;
  entry_confidence: number;
  entry_reason: string;
  exit_text: string;
  holds: number;
  adjustments: number;
  outcome: TradeReview['outcome'];
  bucket: Reflection['bucket'];
  entry_quality: Reflection['entryQuality'];
  exit_quality: Reflection['exitQuality'];
  lessons: string[];
  summary: string;
  reflection: string;
  grade: Grade;
  evaluation_score: number;
  evaluation_scores: TradeEvaluation['scores'];
  reward: number;
  client_order_ids: string[];
  run: RunId;
}

/** The content of `reward_learning.json`. */
export interface RewardFile extends RewardHistory {
  format: typeof REWARD_FILE_FORMAT;
  stats: RewardStats;
}

/** Outcome counts of a group of trades. A win has net PnL > 0, a loss < 0, breakeven exactly 0. */
export interface OutcomeStats {
  count: number;
  wins: number;
  losses: number;
  breakeven: number;
  /** wins / count; null when count is 0 */
  winRate: number | null;
  /** net USDT */
  totalPnl: number;
  /** mean leveraged % of margin; null when count is 0 */
  avgPnlPct: number | null;
}

export interface WinLossBreakdown extends OutcomeStats {
  /** null: all pairs */
  pair: string | null;
  /** mean pnlPct of the winners; null without winners */
  avgWinPct: number | null;
  /** mean pnlPct of the losers; null without losers */
  avgLossPct: number | null;
  bySide: Record<Side, OutcomeStats>;
  /** only the exit reasons that occurred */
  byExitReason: Partial<Record<CloseReason, OutcomeStats>>;
}

export interface RecordResult {
  /**
   * false when the key was already recorded: no second row is written, and its log line is appended only if an
   * interrupted earlier call had not appended it (see the module comment)
   */
  inserted: boolean;
}

/** What {@link Journal.recordPrompt} stores: the prompt built for one decision. */
export interface PromptEntry {
  /** `decisionId(owner, pair, time)` */
  decisionId: string;
  owner: string;
  run: RunId;
  pair: string;
  /** the decision time (candle close), Unix ms */
  time: number;
  context: JournalContext;
}

export type MissedReason = 'outage' | 'stale';

/** A run of consecutive candle closes a pair workflow skipped instead of deciding late. */
export interface MissedCandles {
  owner: string;
  run: RunId;
  pair: string;
  /** the first and last skipped candle close, Unix ms */
  firstClose: number;
  lastClose: number;
  /** how many candle closes were skipped (>= 1) */
  count: number;
  /** `outage`: no worker ran the workflow; `stale`: the cycle came too late to decide on that candle */
  reason: MissedReason;
}

export const MISSED_REASONS: readonly MissedReason[] = ['outage', 'stale'];

/** A gap as journaled. */
export interface JournaledMissedCandles extends MissedCandles {
  /** when the row was written, Unix ms (wall clock) */
  recordedAt: number;
}

/** One line of `missed_candles.jsonl`; times ISO 8601 UTC. */
export interface MissedCandlesLine {
  /** the first skipped candle close */
  timestamp: string;
  owner: string;
  run: RunId;
  pair: string;
  first_close: string;
  last_close: string;
  count: number;
  reason: MissedReason;
}

/** One run as {@link Journal.runs} lists it. */
export interface RunSummary {
  run: RunId;
  decisions: number;
  trades: number;
  /** earliest and latest decision time or trade exit time, Unix ms */
  first: number;
  last: number;
}

/** Query filter: one run, or every run (null or omitted). */
export interface RunFilter {
  run?: RunId | null;
}

export interface JournalOptions {
  /** the config's data_dir: journal.sqlite and logs/ go there (created when missing) */
  dataDir: string;
  /** hides the configured secrets in everything written (see {@link Redactor.fromConfig}) */
  redactor: Redactor;
  /** write llm_decisions.jsonl lines (experience.log_decisions); SQLite rows are always written. Default true. */
  logDecisions?: boolean;
  /** write trade_experience.jsonl lines (experience.log_trades); SQLite rows are always written. Default true. */
  logTrades?: boolean;
  /** entries kept in reward_learning.json (count and total stay all-time). Default 1000. */
  rewardHistoryCap?: number;
  /**
   * Test seam for crash simulation: called right after a JSONL line is appended and before its row is marked logged.
   * Throwing here (or killing the process) is a crash at exactly that point.
   */
  onLineAppended?: (file: string) => void;
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

const SCHEMA_VERSION = 2;

/** Schema v1, as the first release created it; v2 is reached by {@link migrateToV2} from it. */
const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  owner TEXT NOT NULL,
  pair TEXT NOT NULL,
  time INTEGER NOT NULL,
  tool TEXT NOT NULL,
  source TEXT NOT NULL,
  model TEXT,
  confidence REAL,
  reason TEXT NOT NULL,
  pnl_pct REAL,
  outcome TEXT NOT NULL,
  detail TEXT,
  decision_json TEXT,
  verdict_json TEXT,
  context_json TEXT,
  calls_json TEXT NOT NULL,
  problems_json TEXT NOT NULL,
  notes_json TEXT NOT NULL,
  thinking TEXT,
  tokens_in INTEGER NOT NULL,
  tokens_out INTEGER NOT NULL,
  latency_ms REAL NOT NULL,
  client_order_id TEXT,
  recorded_at INTEGER NOT NULL,
  UNIQUE (owner, pair, time)
);
CREATE INDEX IF NOT EXISTS decisions_pair_time ON decisions (pair, time);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions (time);

CREATE TABLE IF NOT EXISTS trades (
  trade_id TEXT PRIMARY KEY,
  pair TEXT NOT NULL,
  side TEXT NOT NULL,
  entry_time INTEGER NOT NULL,
  exit_time INTEGER NOT NULL,
  entry_price REAL NOT NULL,
  exit_price REAL NOT NULL,
  quantity REAL NOT NULL,
  leverage REAL NOT NULL,
  margin REAL NOT NULL,
  notional REAL NOT NULL,
  pnl REAL NOT NULL,
  pnl_pct REAL NOT NULL,
  fees REAL NOT NULL,
  funding REAL NOT NULL,
  exit_reason TEXT NOT NULL,
  mfe_pct REAL NOT NULL,
  mae_pct REAL NOT NULL,
  holds INTEGER NOT NULL,
  adjustments INTEGER NOT NULL,
  entry_reason TEXT NOT NULL,
  exit_text TEXT NOT NULL,
  trade_score REAL,
  entry_confidence REAL NOT NULL,
  client_order_ids_json TEXT NOT NULL,
  grade TEXT NOT NULL,
  score REAL NOT NULL,
  reward REAL NOT NULL,
  review_json TEXT NOT NULL,
  reflection_json TEXT NOT NULL,
  evaluation_json TEXT NOT NULL,
  reward_json TEXT NOT NULL,
  recorded_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS trades_pair_exit ON trades (pair, exit_time);
CREATE INDEX IF NOT EXISTS trades_exit ON trades (exit_time);

CREATE TABLE IF NOT EXISTS rewards (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  trade_id TEXT NOT NULL UNIQUE,
  pair TEXT NOT NULL,
  time INTEGER NOT NULL,
  reward REAL NOT NULL,
  pnl_pct REAL NOT NULL,
  leverage REAL NOT NULL,
  trade_score REAL
);
`;

/**
 * Schema v2 on top of v1: runs, decision ids, the `logged` flag of the two-step JSONL write, prompts by decision id,
 * missed candles. The added columns are created by ALTER TABLE in {@link migrateToV2}; rows of v1 get run '' and
 * logged 1 (their line was written in the transaction of their row).
 */
const SCHEMA_V2_TABLES = `
CREATE UNIQUE INDEX IF NOT EXISTS decisions_decision_id ON decisions (decision_id);
CREATE INDEX IF NOT EXISTS decisions_run_time ON decisions (run, time);
CREATE INDEX IF NOT EXISTS trades_run_exit ON trades (run, exit_time);

CREATE TABLE IF NOT EXISTS prompts (
  decision_id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  run TEXT NOT NULL,
  pair TEXT NOT NULL,
  time INTEGER NOT NULL,
  context_json TEXT NOT NULL,
  recorded_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS missed_candles (
  owner TEXT NOT NULL,
  run TEXT NOT NULL,
  pair TEXT NOT NULL,
  first_close INTEGER NOT NULL,
  last_close INTEGER NOT NULL,
  count INTEGER NOT NULL,
  reason TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  logged INTEGER NOT NULL,
  PRIMARY KEY (owner, pair, first_close)
);
CREATE INDEX IF NOT EXISTS missed_candles_pair ON missed_candles (pair, first_close);
`;

/** Columns v2 adds to v1's tables: [table, column, definition]. */
const V2_COLUMNS: readonly [string, string, string][] = [
  ['decisions', 'decision_id', 'TEXT'],
  ['decisions', 'run', "TEXT NOT NULL DEFAULT ''"],
  ['decisions', 'logged', 'INTEGER NOT NULL DEFAULT 1'],
  ['trades', 'run', "TEXT NOT NULL DEFAULT ''"],
  ['trades', 'logged', 'INTEGER NOT NULL DEFAULT 1'],
];

/**
 * Brings a database of schema 0 (new file: v1 tables just created) or 1 to v2 in place, in one write transaction
 * (SQLite DDL is transactional, so a crash leaves v1 or v2, never a mix). Several processes may open the same file:
 * the version is read again under the write lock.
 */
function migrateToV2(db: Database.Database): void {
  db.function('llm_trader_decision_id', { deterministic: true }, (owner, pair, time) =>
    decisionId(String(owner), String(pair), Number(time)),
  );
  db.transaction(() => {
    if ((db.pragma('user_version', { simple: true }) as number) >= 2) return;
    for (const [table, column, definition] of V2_COLUMNS) {
      const columns = db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all();
      if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
    db.exec('UPDATE decisions SET decision_id = llm_trader_decision_id(owner, pair, time) WHERE decision_id IS NULL');
    db.exec(SCHEMA_V2_TABLES);
    db.pragma('user_version = 2');
  }).immediate();
}

interface DecisionRow {
  id: number;
  decision_id: string;
  run: string;
  owner: string;
  pair: string;
  time: number;
  tool: string;
  source: string;
  model: string | null;
  confidence: number | null;
  reason: string;
  pnl_pct: number | null;
  outcome: string;
  detail: string | null;
  decision_json: string | null;
  verdict_json: string | null;
  context_json: string | null;
  calls_json: string;
  problems_json: string;
  notes_json: string;
  thinking: string | null;
  tokens_in: number;
  tokens_out: number;
  latency_ms: number;
  client_order_id: string | null;
  recorded_at: number;
}

interface TradeRow {
  trade_id: string;
  run: string;
  pair: string;
  side: string;
  entry_time: number;
  exit_time: number;
  entry_price: number;
  exit_price: number;
  quantity: number;
  leverage: number;
  margin: number;
  notional: number;
  pnl: number;
  pnl_pct: number;
  fees: number;
  funding: number;
  exit_reason: string;
  mfe_pct: number;
  mae_pct: number;
  holds: number;
  adjustments: number;
  entry_reason: string;
  exit_text: string;
  trade_score: number | null;
  entry_confidence: number;
  client_order_ids_json: string;
  grade: string;
  score: number;
  reward: number;
  review_json: string;
  reflection_json: string;
}

interface MissedRow {
  owner: string;
  run: string;
  pair: string;
  first_close: number;
  last_close: number;
  count: number;
  reason: string;
  recorded_at: number;
}

interface BreakdownRow {
  side: string;
  exit_reason: string;
  count: number;
  wins: number;
  losses: number;
  total_pnl: number;
  sum_pnl_pct: number;
  sum_win_pct: number | null;
  sum_loss_pct: number | null;
}

/**
 * The decision columns; the prompt (`context_json`, the bulk of a row; the stored prompt of the decision id when the
 * row has none) only when the `ctx` parameter is 1.
 */
const DECISION_COLUMNS = `id, decision_id, run, owner, pair, time, tool, source, model, confidence, reason, pnl_pct,
  outcome, detail, decision_json, verdict_json,
  CASE WHEN @ctx = 1 THEN COALESCE(context_json,
    (SELECT p.context_json FROM prompts p WHERE p.decision_id = decisions.decision_id)) END AS context_json,
  calls_json, problems_json, notes_json, thinking, tokens_in, tokens_out, latency_ms, client_order_id, recorded_at`;

const TRADE_COLUMNS = `trade_id, run, pair, side, entry_time, exit_time, entry_price, exit_price, quantity, leverage,
  margin, notional, pnl, pnl_pct, fees, funding, exit_reason, mfe_pct, mae_pct, holds, adjustments, entry_reason,
  exit_text, trade_score, entry_confidence, client_order_ids_json, grade, score, reward, review_json, reflection_json`;

// ---------------------------------------------------------------------------------------------
// The journal
// ---------------------------------------------------------------------------------------------

/** The decision and trade journal of one data folder. Not usable after `close()`. */
export class Journal {
  readonly paths: JournalPaths;
  private readonly db: Database.Database;
  private readonly redactor: Redactor;
  /** the reward file's temporary name while it is rewritten (one per process) */
  private readonly tempRewardFile: string;
  private readonly logDecisions: boolean;
  private readonly logTrades: boolean;
  private readonly rewardCap: number;
  private readonly onLineAppended: ((file: string) => void) | undefined;
  private readonly stmt: ReturnType<typeof prepareStatements>;

  private constructor(options: JournalOptions) {
    this.paths = journalPaths(options.dataDir);
    this.redactor = options.redactor;
    this.tempRewardFile = `${this.paths.rewardFile}.${process.pid}.tmp`;
    this.logDecisions = options.logDecisions ?? true;
    this.logTrades = options.logTrades ?? true;
    this.rewardCap = options.rewardHistoryCap ?? REWARD_HISTORY_CAP;
    this.onLineAppended = options.onLineAppended;
    if (!Number.isInteger(this.rewardCap) || this.rewardCap < 1) {
      throw new RangeError(`Journal: rewardHistoryCap must be a positive integer, got ${this.rewardCap}`);
    }
    try {
      mkdirSync(this.paths.logsDir, { recursive: true });
      this.db = new Database(this.paths.database);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 5000');
      const version = this.db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new Error(
          `schema version ${version} is newer than this program's (${SCHEMA_VERSION}); upgrade llm-trader or use another data_dir`,
        );
      }
      this.db.exec(SCHEMA_V1);
      migrateToV2(this.db);
      this.stmt = prepareStatements(this.db);
    } catch (err) {
      throw new Error(`Journal: cannot open ${this.paths.database}: ${errorText(err)}`);
    }
    try {
      this.removeStaleTempFiles();
      this.setAsideForeignRewardFile();
    } catch (err) {
      this.db.close();
      throw new Error(`Journal: cannot prepare ${this.paths.logsDir}: ${errorText(err)}`);
    }
  }

  /** Opens (creating when missing) the journal of `options.dataDir`. Throws an Error naming the file on failure. */
  static open(options: JournalOptions): Journal {
    return new Journal(options);
  }

  /**
   * Opens the journal of a config: `data_dir`, `experience.log_decisions` / `log_trades`, and a redactor of the
   * config's and the environment's secrets.
   */
  static fromConfig(config: Config, env: NodeJS.ProcessEnv = process.env): Journal {
    return new Journal({
      dataDir: config.data_dir,
      redactor: Redactor.fromConfig(config, env),
      logDecisions: config.experience.log_decisions,
      logTrades: config.experience.log_trades,
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // -------------------------------------------------------------------------------------------
  // Writes
  // -------------------------------------------------------------------------------------------

  /**
   * Records one decision: a `decisions` row, then (with logDecisions) one `llm_decisions.jsonl` line (see the module
   * comment for the two steps). When `entry.context` is null the prompt stored under the decision id by
   * {@link recordPrompt} is journaled with it. A repeat of the same (owner, pair, record.time) writes no second row
   * and returns `inserted: false` (its line is appended only when an interrupted first call had not appended it).
   *
   * Throws a RangeError for an entry without owner or pair, with a non-integer time, a decision id that is not
   * `decisionId(owner, pair, record.time)` or the run `all`, and an Error naming the file when the line cannot be
   * written (the row stays, marked unlogged: a retry appends the line once).
   */
  recordDecision(entry: DecisionEntry): RecordResult & { id: number | null } {
    checkDecisionEntry(entry);
    const id = checkDecisionId(entry.decisionId, entry.owner, entry.pair, entry.record.time, 'Journal.recordDecision');
    const run = checkRun(entry.run ?? '', 'Journal.recordDecision');
    const safe = this.redactor.redactDeep({ ...entry, decisionId: id, run });
    // the stored prompt is redacted already; the entry's own prompt wins when it has one
    const context = safe.context ?? this.prompt(id);
    const line = decisionLine({ ...safe, context });
    const r = safe.record;
    const result = safe.result;
    const params = {
      decision_id: id,
      run: safe.run,
      owner: safe.owner,
      pair: safe.pair,
      time: r.time,
      tool: r.tool,
      source: r.source,
      model: result?.model ?? null,
      confidence: r.confidence,
      reason: r.reason,
      pnl_pct: r.pnlPct,
      outcome: r.outcome,
      detail: r.detail,
      decision_json: result ? JSON.stringify(result.decision) : null,
      verdict_json: safe.verdict ? JSON.stringify(safe.verdict) : null,
      context_json: context ? JSON.stringify(context) : null,
      calls_json: JSON.stringify(line.function_calls),
      problems_json: JSON.stringify(line.problems),
      notes_json: JSON.stringify(line.notes),
      thinking: line.thinking,
      tokens_in: line.tokens.input,
      tokens_out: line.tokens.output,
      latency_ms: line.latency_ms,
      client_order_id: safe.clientOrderId,
      recorded_at: Date.now(),
      logged: this.logDecisions ? 0 : 1,
    };
    const key = { owner: params.owner, pair: params.pair, time: params.time };
    const stored = this.db
      .transaction(() => {
        const info = this.stmt.insertDecision.run(params);
        if (info.changes > 0) return { inserted: true, id: Number(info.lastInsertRowid) };
        return { inserted: false, id: null };
      })
      .immediate();
    if (this.logDecisions) {
      this.completeLine({
        file: this.paths.decisionsLog,
        line,
        fresh: stored.inserted,
        isLogged: () => this.stmt.decisionLogged.get(key) === 1,
        markLogged: () => this.stmt.markDecisionLogged.run(key),
        needle: `"decision_id":${JSON.stringify(id)}`,
        match: (v) => (v as { decision_id?: unknown }).decision_id === id,
      });
    }
    return stored;
  }

  /**
   * Stores the prompt built for one decision, before the model is asked: the workflow then passes only the decision id,
   * and {@link recordDecision} journals this prompt with the decision. A second call for the same id replaces the
   * prompt (a retried build: the last one built is the one that was sent). Redacted like every record.
   *
   * Throws a RangeError when `decisionId` is not `decisionId(owner, pair, time)`, the owner or pair is empty, the time
   * is not a Unix ms integer, or the run is `all`.
   */
  recordPrompt(p: PromptEntry): void {
    const where = 'Journal.recordPrompt';
    checkOwnerPair(p.owner, p.pair, where);
    if (!Number.isSafeInteger(p.time) || p.time < 0) {
      throw new RangeError(`${where}: time must be the decision time (candle close) in Unix ms, got ${p.time}`);
    }
    checkDecisionId(p.decisionId, p.owner, p.pair, p.time, where);
    const run = checkRun(p.run, where);
    if (p.context === null || typeof p.context !== 'object' || !Array.isArray(p.context.messages)) {
      throw new RangeError(`${where}: context must be the journalContext(...) of the prompt built for ${p.decisionId}`);
    }
    const safe = this.redactor.redactDeep(p);
    this.stmt.upsertPrompt.run({
      decision_id: p.decisionId,
      owner: safe.owner,
      run: this.redactor.redact(run),
      pair: safe.pair,
      time: p.time,
      context_json: JSON.stringify(safe.context),
      recorded_at: Date.now(),
    });
  }

  /**
   * Records a closed trade with its review: a `trades` row, a `rewards` row and `reward_learning.json` rewritten in one
   * transaction, then (with logTrades) one `trade_experience.jsonl` line (see the module comment). A trade whose id is
   * already recorded writes no second row and returns `inserted: false`. `options.run` is the run the trade belongs
   * to (default '').
   *
   * Throws a RangeError when the trade cannot be reviewed (see `assertReviewableTrade`), the review is of another
   * trade or the run is `all`; an Error when the reward file cannot be written (nothing is then recorded; retrying is
   * safe) or when the line cannot be appended (the trade stays recorded, marked unlogged: a retry appends the line).
   */
  recordTrade(
    trade: ClosedTrade,
    review: TradeReview,
    reflection: Reflection,
    evaluation: TradeEvaluation,
    reward: RewardBreakdown,
    options: { run?: RunId } = {},
  ): RecordResult {
    assertReviewableTrade(trade, 'Journal.recordTrade');
    if (review.tradeId !== trade.tradeId) {
      throw new RangeError(
        `Journal.recordTrade: the review is of trade ${review.tradeId}, not of ${trade.tradeId}; pass the review of the same trade`,
      );
    }
    if (!Number.isFinite(reward.reward)) {
      throw new RangeError(
        `Journal.recordTrade: reward of trade ${trade.tradeId} must be finite, got ${reward.reward}`,
      );
    }
    const run = this.redactor.redact(checkRun(options.run ?? '', 'Journal.recordTrade'));
    const t = this.redactor.redactDeep(trade);
    const rv = this.redactor.redactDeep(review);
    const rf = this.redactor.redactDeep(reflection);
    const ev = this.redactor.redactDeep(evaluation);
    const line = tradeLine(t, rv, rf, ev, reward.reward, run);
    const { client_order_ids: clientOrderIds, ...row } = tradeRow(t);
    const tradeParams = {
      ...row,
      run,
      client_order_ids_json: JSON.stringify(clientOrderIds),
      grade: ev.grade,
      score: ev.total,
      reward: reward.reward,
      review_json: JSON.stringify(rv),
      reflection_json: JSON.stringify(rf),
      evaluation_json: JSON.stringify(ev),
      reward_json: JSON.stringify(reward),
      recorded_at: Date.now(),
      logged: this.logTrades ? 0 : 1,
    };
    const rewardParams = {
      trade_id: t.tradeId,
      pair: t.pair,
      time: t.exitTime,
      reward: reward.reward,
      pnl_pct: t.pnlPct,
      leverage: t.leverage,
      trade_score: t.tradeScore,
    };
    let rewardFileTouched = false;
    let inserted: boolean;
    try {
      inserted = this.db
        .transaction(() => {
          const info = this.stmt.insertTrade.run(tradeParams);
          if (info.changes === 0) return false;
          this.stmt.insertReward.run(rewardParams);
          rewardFileTouched = true;
          this.writeRewardFile();
          return true;
        })
        .immediate();
    } catch (err) {
      if (rewardFileTouched) this.restoreRewardFile();
      throw err;
    }
    if (this.logTrades) {
      const key = { trade_id: t.tradeId };
      this.completeLine({
        file: this.paths.tradesLog,
        line,
        fresh: inserted,
        isLogged: () => this.stmt.tradeLogged.get(key) === 1,
        markLogged: () => this.stmt.markTradeLogged.run(key),
        needle: `"trade_id":${JSON.stringify(t.tradeId)}`,
        match: (v) => (v as { trade_id?: unknown }).trade_id === t.tradeId,
      });
    }
    return { inserted };
  }

  /**
   * Records candle closes a pair workflow skipped (after an outage, or a cycle too late for its candle): a
   * `missed_candles` row and (with logDecisions) one `missed_candles.jsonl` line, written like a decision's. Keyed by
   * (owner, pair, firstClose): a repeat writes nothing more and returns `inserted: false`.
   *
   * Throws a RangeError naming the field when the owner or pair is empty, a close is not a Unix ms integer,
   * lastClose < firstClose, count is not an integer >= 1, the reason is not `outage` or `stale`, or the run is `all`.
   */
  recordMissedCandles(m: MissedCandles): RecordResult {
    const where = 'Journal.recordMissedCandles';
    checkOwnerPair(m.owner, m.pair, where);
    const run = this.redactor.redact(checkRun(m.run, where));
    for (const field of ['firstClose', 'lastClose'] as const) {
      if (!Number.isSafeInteger(m[field]) || m[field] < 0) {
        throw new RangeError(`${where}: ${field} must be a candle close in Unix ms, got ${m[field]}`);
      }
    }
    if (m.lastClose < m.firstClose) {
      throw new RangeError(
        `${where}: lastClose (${m.lastClose}) is before firstClose (${m.firstClose}); pass the first and last skipped close`,
      );
    }
    if (!Number.isSafeInteger(m.count) || m.count < 1) {
      throw new RangeError(`${where}: count must be the number of skipped candles (an integer >= 1), got ${m.count}`);
    }
    if (!MISSED_REASONS.includes(m.reason)) {
      throw new RangeError(
        `${where}: reason must be one of ${MISSED_REASONS.join(', ')}, got ${JSON.stringify(m.reason)}`,
      );
    }
    const owner = this.redactor.redact(m.owner);
    const pair = this.redactor.redact(m.pair);
    const line: MissedCandlesLine = {
      timestamp: new Date(m.firstClose).toISOString(),
      owner,
      run,
      pair,
      first_close: new Date(m.firstClose).toISOString(),
      last_close: new Date(m.lastClose).toISOString(),
      count: m.count,
      reason: m.reason,
    };
    const key = { owner, pair, first_close: m.firstClose };
    const info = this.stmt.insertMissed.run({
      ...key,
      run,
      last_close: m.lastClose,
      count: m.count,
      reason: m.reason,
      recorded_at: Date.now(),
      logged: this.logDecisions ? 0 : 1,
    });
    const inserted = info.changes > 0;
    if (this.logDecisions) {
      this.completeLine({
        file: this.paths.missedCandlesLog,
        line,
        fresh: inserted,
        isLogged: () => this.stmt.missedLogged.get(key) === 1,
        markLogged: () => this.stmt.markMissedLogged.run(key),
        needle: `"first_close":${JSON.stringify(line.first_close)}`,
        match: (v) => {
          const l = v as Partial<MissedCandlesLine>;
          return l.owner === owner && l.pair === pair && l.first_close === line.first_close;
        },
      });
    }
    return { inserted };
  }

  // -------------------------------------------------------------------------------------------
  // Decision queries
  // -------------------------------------------------------------------------------------------

  /**
   * The last `n` decisions of `pair` (null: all pairs) of `options.run` (default: every run), oldest first.
   * `withContext` also loads the prompts.
   */
  recentDecisions(
    pair: string | null,
    n: number,
    options: { withContext?: boolean } & RunFilter = {},
  ): JournaledDecision[] {
    const limit = checkCount(n, 'recentDecisions');
    const ctx = options.withContext === true ? 1 : 0;
    const run = options.run ?? null;
    return this.stmt.recentDecisions.all({ pair, run, limit, ctx }).reverse().map(toDecision);
  }

  /**
   * Decisions of `pair` (null: all pairs) of `options.run` (default: every run) taken after `since` (Unix ms,
   * exclusive), oldest first, at most `limit` (default 1000). For `--follow`: pass the time of the last decision shown.
   */
  decisionsSince(
    pair: string | null,
    since: number,
    options: { limit?: number; withContext?: boolean } & RunFilter = {},
  ): JournaledDecision[] {
    const limit = checkCount(options.limit ?? 1000, 'decisionsSince');
    const ctx = options.withContext === true ? 1 : 0;
    const run = options.run ?? null;
    return this.stmt.decisionsSince.all({ pair, run, since, limit, ctx }).map(toDecision);
  }

  /** The decision of `decisionId`, with its prompt (see {@link JournaledDecision.context}); null when not journaled. */
  decision(decisionId: string): JournaledDecision | null {
    const row = this.stmt.decisionById.get({ decision_id: decisionId, ctx: 1 });
    return row ? toDecision(row) : null;
  }

  /** The prompt stored for `decisionId` by {@link recordPrompt} (redacted); null when none was stored. */
  prompt(decisionId: string): JournalContext | null {
    const text = this.stmt.promptById.get({ decision_id: decisionId });
    return text === undefined ? null : parseJson<JournalContext>(text);
  }

  /**
   * Every run with decisions or trades: counts and the time span (decision times, trade exit times), the run with the
   * latest activity first.
   */
  runs(): RunSummary[] {
    return this.stmt.runs.all();
  }

  /** The run of the most recently recorded decision or trade; null when the journal has neither. */
  currentRun(): RunId | null {
    return this.stmt.currentRun.get() ?? null;
  }

  /**
   * The journaled gaps of `filter.pair` and `filter.run` (each: all when null or omitted) whose last close is after
   * `filter.since` (Unix ms, exclusive; default: all), by first close, at most `filter.limit` (default 1000).
   */
  missedCandles(
    filter: { pair?: string | null; since?: number; limit?: number } & RunFilter = {},
  ): JournaledMissedCandles[] {
    const limit = checkCount(filter.limit ?? 1000, 'missedCandles');
    return this.stmt.missedCandles
      .all({ pair: filter.pair ?? null, run: filter.run ?? null, since: filter.since ?? -1, limit })
      .map((r) => ({
        owner: r.owner,
        run: r.run,
        pair: r.pair,
        firstClose: r.first_close,
        lastClose: r.last_close,
        count: r.count,
        reason: r.reason as MissedReason,
        recordedAt: r.recorded_at,
      }));
  }

  /** Per pair (of `filter.run`; default every run): how many gaps and skipped candle closes were journaled, by pair. */
  missedCandleTotals(filter: RunFilter = {}): { pair: string; gaps: number; candles: number }[] {
    return this.stmt.missedTotals.all({ run: filter.run ?? null });
  }

  /** Number of recorded decisions and trades. */
  counts(): { decisions: number; trades: number } {
    return this.stmt.counts.get() ?? { decisions: 0, trades: 0 };
  }

  // -------------------------------------------------------------------------------------------
  // Trade and learning queries
  // -------------------------------------------------------------------------------------------

  /** Every recorded trade of `options.run` (default: every run), by exit time (then trade id). */
  allTrades(options: RunFilter = {}): ClosedTrade[] {
    return this.stmt.tradesUntil
      .all({ pair: null, run: options.run ?? null, until: Number.MAX_SAFE_INTEGER })
      .map(toClosedTrade);
  }

  /**
   * The last `n` trades of `pair` (null: all pairs) of `options.run` (default: every run) by exit time, oldest first,
   * with their recorded lessons, grade and reward.
   */
  recentTrades(pair: string | null, n: number, options: RunFilter = {}): JournaledTrade[] {
    const limit = checkCount(n, 'recentTrades');
    return this.stmt.recentTrades
      .all({ pair, run: options.run ?? null, limit })
      .reverse()
      .map((row) => {
        const reflection = parseJson<Partial<Reflection>>(row.reflection_json);
        const review = parseJson<Partial<TradeReview>>(row.review_json);
        return {
          trade: toClosedTrade(row),
          run: row.run,
          lessons: Array.isArray(reflection?.lessons) ? reflection.lessons.filter((l) => typeof l === 'string') : [],
          grade: row.grade as Grade,
          score: row.score,
          reward: row.reward,
          reviewSummary: typeof review?.summary === 'string' ? review.summary : null,
          reflectionSummary: typeof reflection?.summary === 'string' ? reflection.summary : null,
        };
      });
  }

  /**
   * `summarizePeriod` over the trades of `pair` (null: all pairs) that exited in [from, to] (Unix ms, inclusive).
   * Throws a RangeError when from > to.
   */
  periodSummary(pair: string | null, from: number, to: number): PeriodSummary {
    if (!(from <= to)) throw new RangeError(`Journal.periodSummary: from (${from}) must be <= to (${to})`);
    return summarizePeriod(this.stmt.tradesBetween.all({ pair, from, to }).map(toClosedTrade), from, to);
  }

  /** The 30-day summary ending at `asOf` (inclusive): {@link periodSummary} over [asOf - 30 days, asOf]. */
  last30Days(pair: string | null, asOf: number): PeriodSummary {
    return this.periodSummary(pair, asOf - THIRTY_DAYS_MS, asOf);
  }

  /**
   * Wins, losses and breakevens of `pair` (null: all pairs) of `options.run` (default: every run), overall, by side
   * and by exit reason.
   */
  winLossBreakdown(pair: string | null, options: RunFilter = {}): WinLossBreakdown {
    const rows = this.stmt.breakdown.all({ pair, run: options.run ?? null });
    const overall = emptyAcc();
    const bySide: Record<Side, Acc> = { long: emptyAcc(), short: emptyAcc() };
    const byReason = new Map<CloseReason, Acc>();
    let sumWinPct = 0;
    let sumLossPct = 0;
    for (const row of rows) {
      addRow(overall, row);
      const side = row.side === 'short' ? 'short' : 'long';
      addRow(bySide[side], row);
      const reason = row.exit_reason as CloseReason;
      const acc = byReason.get(reason) ?? emptyAcc();
      addRow(acc, row);
      byReason.set(reason, acc);
      sumWinPct += row.sum_win_pct ?? 0;
      sumLossPct += row.sum_loss_pct ?? 0;
    }
    const byExitReason: Partial<Record<CloseReason, OutcomeStats>> = {};
    for (const [reason, acc] of byReason) byExitReason[reason] = finishAcc(acc);
    return {
      pair,
      ...finishAcc(overall),
      avgWinPct: overall.wins > 0 ? sumWinPct / overall.wins : null,
      avgLossPct: overall.losses > 0 ? sumLossPct / overall.losses : null,
      bySide: { long: finishAcc(bySide.long), short: finishAcc(bySide.short) },
      byExitReason,
    };
  }

  /** `analyzePatterns` over every trade of `pair` (null: all pairs) that exited at or before `asOf` (default: all). */
  patterns(pair: string | null, asOf: number = Number.MAX_SAFE_INTEGER): PatternReport {
    return analyzePatterns(this.stmt.tradesUntil.all({ pair, run: null, until: asOf }).map(toClosedTrade));
  }

  /**
   * The learning context for a decision on `pair` at `now` (Unix ms), as the context builder takes it: built by
   * `buildLearningContext` from the recorded trades that exited at or before `now` (of the pair only when
   * `experience.include_pair_specific_trades`) and the pair's last {@link LEARNING_DECISIONS_WINDOW} decisions taken
   * before `now` (for the decision-quality warnings). Backtests that keep trades in memory get the same result from
   * `buildLearningContext` directly.
   */
  learningContext(
    pair: string,
    now: number,
    experience: Pick<ExperienceConfig, 'max_recent_trades_context' | 'include_pair_specific_trades'>,
  ): LearningContext {
    const trades = this.stmt.tradesUntil
      .all({ pair: experience.include_pair_specific_trades ? pair : null, run: null, until: now })
      .map(toClosedTrade);
    const decisions = this.stmt.warningDecisions
      .all({ pair, before: now, limit: LEARNING_DECISIONS_WINDOW })
      .reverse()
      .map((d) => ({ time: d.time, tool: d.tool as ToolName, reason: d.reason, pnlPct: d.pnl_pct }));
    return buildLearningContext({ pair, asOf: now, trades, decisions, experience });
  }

  // -------------------------------------------------------------------------------------------
  // Rewards
  // -------------------------------------------------------------------------------------------

  /**
   * The reward history: the last `rewardHistoryCap` entries in the order they were recorded, with the all-time count
   * and total (the same history `appendReward` builds entry by entry).
   */
  rewardHistory(): RewardHistory {
    let count = 0;
    let total = 0;
    for (const reward of this.stmt.allRewards.iterate()) {
      count += 1;
      total += reward;
    }
    const entries = this.stmt.lastRewards.all({ limit: this.rewardCap }).reverse();
    return { entries, count, total };
  }

  // -------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------

  /**
   * The second step of a record (see the module comment): under the write lock, when the row is not marked logged
   * yet, appends its line (a fresh row's at once; a row found unlogged by a repeat only when the line is not in the
   * file's tail already, i.e. an earlier call crashed before its append), then marks the row logged.
   */
  private completeLine(step: {
    file: string;
    line: unknown;
    fresh: boolean;
    isLogged: () => boolean;
    markLogged: () => void;
    needle: string;
    match: (value: unknown) => boolean;
  }): void {
    this.db
      .transaction(() => {
        if (step.isLogged()) return;
        if (step.fresh || !jsonLineInTail(step.file, step.needle, step.match)) {
          appendJsonLine(step.file, step.line);
          this.onLineAppended?.(step.file);
        }
        step.markLogged();
      })
      .immediate();
  }

  /** Renders the reward history (as this connection sees it) to reward_learning.json, atomically. */
  private writeRewardFile(): void {
    const history = this.rewardHistory();
    const content: RewardFile = { format: REWARD_FILE_FORMAT, ...history, stats: rewardStats(history) };
    try {
      writeFileAtomic(this.paths.rewardFile, `${JSON.stringify(content, null, 2)}\n`, { temp: this.tempRewardFile });
    } catch (err) {
      throw new Error(`Journal: ${errorText(err)}`, { cause: err });
    }
  }

  /** After a rolled-back trade: render the file again from the committed rows (best effort; the next write heals it). */
  private restoreRewardFile(): void {
    try {
      this.writeRewardFile();
    } catch {
      // The original error is the one worth reporting; the file still holds a complete history.
    }
  }

  private removeStaleTempFiles(): void {
    const prefix = `${REWARD_FILE}.`;
    const now = Date.now();
    for (const name of readdirSync(this.paths.logsDir)) {
      if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
      const file = join(this.paths.logsDir, name);
      try {
        if (now - statSync(file).mtimeMs > STALE_TEMP_MS) rmSync(file, { force: true, recursive: true });
      } catch {
        // Another process may be removing it at the same time.
      }
    }
  }

  /** A reward file this journal did not write (e.g. the original system's) is renamed aside, never overwritten. */
  private setAsideForeignRewardFile(): void {
    const file = this.paths.rewardFile;
    if (!existsSync(file)) return;
    let ours = false;
    try {
      const value = JSON.parse(readFileSync(file, 'utf8')) as { format?: unknown };
      ours = value !== null && typeof value === 'object' && value.format === REWARD_FILE_FORMAT;
    } catch {
      ours = false;
    }
    if (!ours) renameSync(file, `${file}.unrecognised-${Date.now()}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function prepareStatements(db: Database.Database) {
  return {
    insertDecision: db.prepare(
      `INSERT INTO decisions (decision_id, run, owner, pair, time, tool, source, model, confidence, reason, pnl_pct,
         outcome, detail, decision_json, verdict_json, context_json, calls_json, problems_json, notes_json, thinking,
         tokens_in, tokens_out, latency_ms, client_order_id, recorded_at, logged)
       VALUES (@decision_id, @run, @owner, @pair, @time, @tool, @source, @model, @confidence, @reason, @pnl_pct,
         @outcome, @detail, @decision_json, @verdict_json, @context_json, @calls_json, @problems_json, @notes_json,
         @thinking, @tokens_in, @tokens_out, @latency_ms, @client_order_id, @recorded_at, @logged)
       ON CONFLICT DO NOTHING`,
    ),
    decisionLogged: db
      .prepare<{ owner: string; pair: string; time: number }, number>(
        'SELECT logged FROM decisions WHERE owner = @owner AND pair = @pair AND time = @time',
      )
      .pluck(),
    markDecisionLogged: db.prepare<{ owner: string; pair: string; time: number }>(
      'UPDATE decisions SET logged = 1 WHERE owner = @owner AND pair = @pair AND time = @time',
    ),
    recentDecisions: db.prepare<{ pair: string | null; run: string | null; limit: number; ctx: 0 | 1 }, DecisionRow>(
      `SELECT ${DECISION_COLUMNS} FROM decisions WHERE (@pair IS NULL OR pair = @pair) AND (@run IS NULL OR run = @run)
       ORDER BY time DESC, id DESC LIMIT @limit`,
    ),
    decisionsSince: db.prepare<
      { pair: string | null; run: string | null; since: number; limit: number; ctx: 0 | 1 },
      DecisionRow
    >(
      `SELECT ${DECISION_COLUMNS} FROM decisions WHERE (@pair IS NULL OR pair = @pair) AND (@run IS NULL OR run = @run)
       AND time > @since ORDER BY time, id LIMIT @limit`,
    ),
    decisionById: db.prepare<{ decision_id: string; ctx: 0 | 1 }, DecisionRow>(
      `SELECT ${DECISION_COLUMNS} FROM decisions WHERE decision_id = @decision_id`,
    ),
    promptById: db
      .prepare<{ decision_id: string }, string>('SELECT context_json FROM prompts WHERE decision_id = @decision_id')
      .pluck(),
    upsertPrompt: db.prepare(
      `INSERT INTO prompts (decision_id, owner, run, pair, time, context_json, recorded_at)
       VALUES (@decision_id, @owner, @run, @pair, @time, @context_json, @recorded_at)
       ON CONFLICT (decision_id) DO UPDATE SET owner = excluded.owner, run = excluded.run, pair = excluded.pair,
         time = excluded.time, context_json = excluded.context_json, recorded_at = excluded.recorded_at`,
    ),
    runs: db.prepare<[], RunSummary>(
      `SELECT run, SUM(decisions) AS decisions, SUM(trades) AS trades, MIN(first) AS first, MAX(last) AS last FROM (
         SELECT run, COUNT(*) AS decisions, 0 AS trades, MIN(time) AS first, MAX(time) AS last
           FROM decisions GROUP BY run
         UNION ALL
         SELECT run, 0, COUNT(*), MIN(exit_time), MAX(exit_time) FROM trades GROUP BY run
       ) GROUP BY run ORDER BY last DESC, run`,
    ),
    currentRun: db
      .prepare<[], string>(
        `SELECT run FROM (
           SELECT * FROM (SELECT run, recorded_at, 1 AS k FROM decisions ORDER BY id DESC LIMIT 1)
           UNION ALL
           SELECT * FROM (SELECT run, recorded_at, 0 AS k FROM trades ORDER BY recorded_at DESC LIMIT 1)
         ) ORDER BY recorded_at DESC, k DESC LIMIT 1`,
      )
      .pluck(),
    insertMissed: db.prepare(
      `INSERT INTO missed_candles (owner, run, pair, first_close, last_close, count, reason, recorded_at, logged)
       VALUES (@owner, @run, @pair, @first_close, @last_close, @count, @reason, @recorded_at, @logged)
       ON CONFLICT (owner, pair, first_close) DO NOTHING`,
    ),
    missedLogged: db
      .prepare<{ owner: string; pair: string; first_close: number }, number>(
        'SELECT logged FROM missed_candles WHERE owner = @owner AND pair = @pair AND first_close = @first_close',
      )
      .pluck(),
    markMissedLogged: db.prepare<{ owner: string; pair: string; first_close: number }>(
      'UPDATE missed_candles SET logged = 1 WHERE owner = @owner AND pair = @pair AND first_close = @first_close',
    ),
    missedCandles: db.prepare<{ pair: string | null; run: string | null; since: number; limit: number }, MissedRow>(
      `SELECT owner, run, pair, first_close, last_close, count, reason, recorded_at FROM missed_candles
       WHERE (@pair IS NULL OR pair = @pair) AND (@run IS NULL OR run = @run) AND last_close > @since
       ORDER BY first_close, pair, owner LIMIT @limit`,
    ),
    missedTotals: db.prepare<{ run: string | null }, { pair: string; gaps: number; candles: number }>(
      `SELECT pair, COUNT(*) AS gaps, SUM(count) AS candles FROM missed_candles WHERE (@run IS NULL OR run = @run)
       GROUP BY pair ORDER BY pair`,
    ),
    warningDecisions: db.prepare<
      { pair: string; before: number; limit: number },
      { time: number; tool: string; reason: string; pnl_pct: number | null }
    >(
      `SELECT time, tool, reason, pnl_pct FROM decisions WHERE pair = @pair AND time < @before
       ORDER BY time DESC, id DESC LIMIT @limit`,
    ),
    counts: db.prepare<[], { decisions: number; trades: number }>(
      'SELECT (SELECT COUNT(*) FROM decisions) AS decisions, (SELECT COUNT(*) FROM trades) AS trades',
    ),
    insertTrade: db.prepare(
      `INSERT INTO trades (trade_id, run, pair, side, entry_time, exit_time, entry_price, exit_price, quantity, leverage,
         margin, notional, pnl, pnl_pct, fees, funding, exit_reason, mfe_pct, mae_pct, holds, adjustments, entry_reason,
         exit_text, trade_score, entry_confidence, client_order_ids_json, grade, score, reward, review_json,
         reflection_json, evaluation_json, reward_json, recorded_at, logged)
       VALUES (@trade_id, @run, @pair, @side, @entry_time, @exit_time, @entry_price, @exit_price, @quantity, @leverage,
         @margin, @notional, @pnl, @pnl_pct, @fees, @funding, @exit_reason, @mfe_pct, @mae_pct, @holds, @adjustments,
         @entry_reason, @exit_text, @trade_score, @entry_confidence, @client_order_ids_json, @grade, @score, @reward,
         @review_json, @reflection_json, @evaluation_json, @reward_json, @recorded_at, @logged)
       ON CONFLICT (trade_id) DO NOTHING`,
    ),
    tradeLogged: db
      .prepare<{ trade_id: string }, number>('SELECT logged FROM trades WHERE trade_id = @trade_id')
      .pluck(),
    markTradeLogged: db.prepare<{ trade_id: string }>('UPDATE trades SET logged = 1 WHERE trade_id = @trade_id'),
    insertReward: db.prepare(
      `INSERT INTO rewards (trade_id, pair, time, reward, pnl_pct, leverage, trade_score)
       VALUES (@trade_id, @pair, @time, @reward, @pnl_pct, @leverage, @trade_score)`,
    ),
    tradesUntil: db.prepare<{ pair: string | null; run: string | null; until: number }, TradeRow>(
      `SELECT ${TRADE_COLUMNS} FROM trades WHERE (@pair IS NULL OR pair = @pair) AND (@run IS NULL OR run = @run)
       AND exit_time <= @until ORDER BY exit_time, trade_id`,
    ),
    tradesBetween: db.prepare<{ pair: string | null; from: number; to: number }, TradeRow>(
      `SELECT ${TRADE_COLUMNS} FROM trades WHERE (@pair IS NULL OR pair = @pair) AND exit_time >= @from
         AND exit_time <= @to ORDER BY exit_time, trade_id`,
    ),
    recentTrades: db.prepare<{ pair: string | null; run: string | null; limit: number }, TradeRow>(
      `SELECT ${TRADE_COLUMNS} FROM trades WHERE (@pair IS NULL OR pair = @pair) AND (@run IS NULL OR run = @run)
       ORDER BY exit_time DESC, trade_id DESC LIMIT @limit`,
    ),
    breakdown: db.prepare<{ pair: string | null; run: string | null }, BreakdownRow>(
      `SELECT side, exit_reason, COUNT(*) AS count, SUM(pnl > 0) AS wins, SUM(pnl < 0) AS losses,
         SUM(pnl) AS total_pnl, SUM(pnl_pct) AS sum_pnl_pct,
         SUM(CASE WHEN pnl > 0 THEN pnl_pct END) AS sum_win_pct, SUM(CASE WHEN pnl < 0 THEN pnl_pct END) AS sum_loss_pct
       FROM trades WHERE (@pair IS NULL OR pair = @pair) AND (@run IS NULL OR run = @run)
       GROUP BY side, exit_reason ORDER BY side, exit_reason`,
    ),
    allRewards: db.prepare<[], number>('SELECT reward FROM rewards ORDER BY seq').pluck(),
    lastRewards: db.prepare<{ limit: number }, RewardEntry>(
      `SELECT trade_id AS tradeId, pair, time, reward, pnl_pct AS pnlPct, leverage, trade_score AS tradeScore
       FROM rewards ORDER BY seq DESC LIMIT @limit`,
    ),
  };
}

function checkOwnerPair(owner: unknown, pair: unknown, where: string): void {
  if (typeof owner !== 'string' || owner === '') {
    throw new RangeError(`${where}: owner must be the workflow id or backtest run id, got ${JSON.stringify(owner)}`);
  }
  if (typeof pair !== 'string' || pair === '') {
    throw new RangeError(`${where}: pair must be a symbol like BTC/USDT:USDT, got ${JSON.stringify(pair)}`);
  }
}

/** The decision id of (owner, pair, time): `given` when it is that id (or omitted); a RangeError when it is another. */
function checkDecisionId(given: string | undefined, owner: string, pair: string, time: number, where: string): string {
  const expected = decisionId(owner, pair, time);
  if (given !== undefined && given !== expected) {
    throw new RangeError(
      `${where}: decisionId ${JSON.stringify(given)} is not the id of (${owner}, ${pair}, ${time}): ` +
        `expected ${expected}; pass decisionId(owner, pair, time) from src/core/ids.ts`,
    );
  }
  return expected;
}

function checkRun(run: unknown, where: string): RunId {
  if (typeof run !== 'string') {
    throw new RangeError(`${where}: run must be a string (paper, live, replay-<id>), got ${JSON.stringify(run)}`);
  }
  if (run === 'all') {
    throw new RangeError(`${where}: run "all" is reserved (the CLI's --run all means every run); name the run`);
  }
  return run;
}

function checkDecisionEntry(entry: DecisionEntry): void {
  const where = 'Journal.recordDecision';
  checkOwnerPair(entry.owner, entry.pair, where);
  if (!Number.isSafeInteger(entry.record.time) || entry.record.time < 0) {
    throw new RangeError(`${where}: record.time must be the decision time in Unix ms, got ${entry.record.time}`);
  }
}

function checkCount(n: number, where: string): number {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`Journal.${where}: n must be an integer >= 0, got ${n}`);
  return n;
}

/** The `llm_decisions.jsonl` line of an (already redacted) entry. */
export function decisionLine(entry: DecisionEntry): DecisionLine {
  const { record, result, context } = entry;
  const calls: LoggedToolCall[] =
    result?.rawToolCalls?.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments, origin: c.origin })) ??
    (result ? [{ id: null, name: result.decision.tool, arguments: result.decision.args, origin: null }] : []);
  return {
    timestamp: new Date(record.time).toISOString(),
    pair: entry.pair,
    action: record.tool,
    decision: result ? result.decision.args : null,
    reasoning: record.reason,
    confidence: record.confidence,
    market_context: context
      ? {
          price: context.price,
          has_position: context.hasPosition,
          allowed_tools: context.allowedTools,
          prompt_tokens: context.tokens,
          messages: context.messages,
        }
      : null,
    function_calls: calls,
    tokens: { input: result?.usage.input ?? 0, output: result?.usage.output ?? 0 },
    latency_ms: result?.latencyMs ?? 0,
    model: result?.model ?? null,
    source: record.source,
    outcome: record.outcome,
    detail: record.detail,
    verdict: entry.verdict,
    pnl_pct: record.pnlPct,
    thinking: result?.thinking ?? null,
    problems: result?.problems ?? [],
    notes: result?.notes ?? [],
    owner: entry.owner,
    client_order_id: entry.clientOrderId,
    decision_id: entry.decisionId ?? decisionId(entry.owner, entry.pair, record.time),
    run: entry.run ?? '',
  };
}

/** The `trade_experience.jsonl` line of an (already redacted) trade and its review. */
export function tradeLine(
  trade: ClosedTrade,
  review: TradeReview,
  reflection: Reflection,
  evaluation: TradeEvaluation,
  reward: number,
  run: RunId = '',
): TradeExperienceLine {
  return {
    timestamp: new Date(trade.exitTime).toISOString(),
    trade_id: trade.tradeId,
    pair: trade.pair,
    side: trade.side,
    entry_time: new Date(trade.entryTime).toISOString(),
    exit_time: new Date(trade.exitTime).toISOString(),
    duration_minutes: (trade.exitTime - trade.entryTime) / 60_000,
    entry_price: trade.entryPrice,
    exit_price: trade.exitPrice,
    quantity: trade.quantity,
    leverage: trade.leverage,
    stake: trade.margin,
    notional: trade.notional,
    profit_usdt: trade.pnl,
    profit_pct: trade.pnlPct,
    fees: trade.fees,
    funding: trade.funding,
    max_profit_pct: trade.mfePct,
    max_drawdown_pct: trade.maePct,
    exit_reason: trade.exitReason,
    trade_score: trade.tradeScore,
    entry_confidence: trade.entryConfidence,
    entry_reason: trade.entryReason,
    exit_text: trade.exitText,
    holds: trade.holds,
    adjustments: trade.adjustments,
    outcome: review.outcome,
    bucket: reflection.bucket,
    entry_quality: reflection.entryQuality,
    exit_quality: reflection.exitQuality,
    lessons: reflection.lessons,
    summary: review.summary,
    reflection: reflection.summary,
    grade: evaluation.grade,
    evaluation_score: evaluation.total,
    evaluation_scores: evaluation.scores,
    reward,
    client_order_ids: trade.clientOrderIds,
    run,
  };
}

function toDecision(row: DecisionRow): JournaledDecision {
  return {
    id: row.id,
    decisionId: row.decision_id,
    run: row.run,
    owner: row.owner,
    pair: row.pair,
    time: row.time,
    tool: row.tool as ToolName,
    reason: row.reason,
    pnlPct: row.pnl_pct,
    confidence: row.confidence,
    source: row.source as JournaledDecision['source'],
    outcome: row.outcome as JournaledDecision['outcome'],
    detail: row.detail,
    model: row.model,
    decision: parseJson<Decision>(row.decision_json),
    verdict: parseJson<Verdict>(row.verdict_json),
    tokensIn: row.tokens_in,
    tokensOut: row.tokens_out,
    latencyMs: row.latency_ms,
    thinking: row.thinking,
    clientOrderId: row.client_order_id,
    functionCalls: parseJson<LoggedToolCall[]>(row.calls_json) ?? [],
    problems: parseJson<string[]>(row.problems_json) ?? [],
    notes: parseJson<string[]>(row.notes_json) ?? [],
    context: parseJson<JournalContext>(row.context_json),
    recordedAt: row.recorded_at,
  };
}

function toClosedTrade(row: TradeRow): ClosedTrade {
  const ids = parseJson<unknown>(row.client_order_ids_json);
  return {
    tradeId: row.trade_id,
    pair: row.pair,
    side: row.side as Side,
    entryTime: row.entry_time,
    exitTime: row.exit_time,
    entryPrice: row.entry_price,
    exitPrice: row.exit_price,
    quantity: row.quantity,
    leverage: row.leverage,
    margin: row.margin,
    notional: row.notional,
    pnl: row.pnl,
    pnlPct: row.pnl_pct,
    fees: row.fees,
    funding: row.funding,
    exitReason: row.exit_reason as CloseReason,
    mfePct: row.mfe_pct,
    maePct: row.mae_pct,
    holds: row.holds,
    adjustments: row.adjustments,
    entryReason: row.entry_reason,
    exitText: row.exit_text,
    tradeScore: row.trade_score,
    entryConfidence: row.entry_confidence,
    clientOrderIds: Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string') : [],
  };
}

interface Acc {
  count: number;
  wins: number;
  losses: number;
  totalPnl: number;
  sumPnlPct: number;
}

function emptyAcc(): Acc {
  return { count: 0, wins: 0, losses: 0, totalPnl: 0, sumPnlPct: 0 };
}

function addRow(acc: Acc, row: BreakdownRow): void {
  acc.count += row.count;
  acc.wins += row.wins;
  acc.losses += row.losses;
  acc.totalPnl += row.total_pnl;
  acc.sumPnlPct += row.sum_pnl_pct;
}

function finishAcc(acc: Acc): OutcomeStats {
  return {
    count: acc.count,
    wins: acc.wins,
    losses: acc.losses,
    breakeven: acc.count - acc.wins - acc.losses,
    winRate: acc.count > 0 ? acc.wins / acc.count : null,
    totalPnl: acc.totalPnl,
    avgPnlPct: acc.count > 0 ? acc.sumPnlPct / acc.count : null,
  };
}

/** JSON.parse of a stored column; null for SQL NULL or unreadable text (a damaged row degrades, it does not throw). */
function parseJson<T>(text: string | null): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
