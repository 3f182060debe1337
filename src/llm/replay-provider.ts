/**
 * The `replay` decision provider: answers with the decisions recorded in a previous `llm_decisions.jsonl`, so a run
 * can be repeated without a model (and without tokens).
 *
 * - The decision for a context is the line recorded for the same pair and decision time (`timestamp` = `asOf`).
 *   When the file holds several lines for one pair and time (several runs appended to one log), the last one wins.
 * - The recorded tool call is validated again with `validateToolCall` against the CURRENT state (position or not):
 *   a replay whose state has drifted from the recording (another risk config, another fill) must not, say, exit a
 *   position that does not exist.
 * - When there is no line, the line has no model decision (a protective or operator exit), or the recorded call is not
 *   allowed in the current state, the answer is a fallback: `signal_hold` with a position, `signal_wait` without,
 *   source `fallback`, and a reason saying the journal had no valid decision for that pair and time. These are counted
 *   ({@link ReplayStats}).
 * - Usage is always 0 tokens and latency 0 ms: nothing is asked of a model.
 * - Lines that are not JSON or lack the fields needed (pair, timestamp, action, decision) are skipped and counted,
 *   never fatal.
 */
import { existsSync } from 'node:fs';
import type { DecisionContext } from '../core/context-types';
import { REASON_MAX_CHARS } from '../core/tools';
import type { Decision, HoldArgs } from '../core/types';
import { validateToolCall } from '../core/validate';
import { readJsonLines, type CorruptLine } from '../store/jsonl';
import { expandDecisionLine } from '../store/compact-decision-line';
import type { DecisionProvider, ProviderDecision } from './provider';

/** Model name reported on fallbacks and on recorded lines that name no model. */
export const REPLAY_MODEL = 'replay';

/** What the replay provider keeps of a recorded decision line. */
export interface RecordedDecision {
  pair: string;
  /** decision time, Unix ms (from the line's ISO `timestamp`) */
  time: number;
  /** the recorded tool name (the line's `action`) */
  action: string;
  /** the recorded tool arguments (the line's `decision`); null for a protective or operator exit */
  args: unknown;
  model: string | null;
  /** the source the decision had when it was recorded (openai, baseline, cache, fallback, protective...) */
  source: string | null;
  /** 1-based line number in the file */
  line: number;
}

export interface ReplayStats {
  /** distinct (pair, time) decisions available */
  recorded: number;
  /** lines for a (pair, time) already recorded earlier in the file (the later line is used) */
  duplicates: number;
  /** skipped lines (not JSON, or missing a field) */
  corrupt: number;
  /** decisions answered from the journal */
  replayed: number;
  /** fallbacks, all causes */
  fallbacks: number;
  /** fallbacks because no line exists for the pair and time */
  missing: number;
  /** fallbacks because the line holds no model decision (protective or operator exit) */
  noDecision: number;
  /** fallbacks because the recorded call failed validation in the current state */
  invalid: number;
}

function key(pair: string, time: number): string {
  return `${pair}\u0000${time}`;
}

/**
 * Reads one parsed line into a recorded decision, or throws an Error saying which field is missing or malformed
 * (the line is then counted as corrupt).
 */
export function parseDecisionLine(value: unknown, line: number): RecordedDecision {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error('the line is not a JSON object');
  }
  const v = value as Record<string, unknown>;
  if (typeof v.pair !== 'string' || v.pair === '') throw new Error('pair is missing or not a string');
  if (typeof v.timestamp !== 'string') throw new Error('timestamp is missing or not an ISO date string');
  const time = Date.parse(v.timestamp);
  if (!Number.isFinite(time)) throw new Error(`timestamp ${JSON.stringify(v.timestamp)} is not an ISO date`);
  if (typeof v.action !== 'string' || v.action === '') throw new Error('action (the tool name) is missing');
  if (!('decision' in v)) throw new Error('decision (the tool arguments, or null) is missing');
  return {
    pair: v.pair,
    time,
    action: v.action,
    // a compact line (a backtest's) leaves out the arguments' pair and reason: the line's pair and reasoning
    args: expandDecisionLine(v).decision,
    model: typeof v.model === 'string' && v.model !== '' ? v.model : null,
    source: typeof v.source === 'string' ? v.source : null,
    line,
  };
}

/** Decisions replayed from a recorded decision log. See the module comment for the rules. */
export class ReplayProvider implements DecisionProvider {
  readonly name = 'replay';
  /** the skipped lines of the file, in file order */
  readonly corruptLines: readonly CorruptLine[];
  private readonly byKey = new Map<string, RecordedDecision>();
  private readonly counts: ReplayStats;

  /**
   * @param recorded the recorded decisions in file order (a later one replaces an earlier one for the same pair and time)
   * @param source where they were read from, for the fallback reasons (e.g. the file path)
   */
  constructor(
    recorded: readonly RecordedDecision[],
    readonly source: string,
    corruptLines: readonly CorruptLine[] = [],
  ) {
    let duplicates = 0;
    for (const r of recorded) {
      const k = key(r.pair, r.time);
      if (this.byKey.has(k)) duplicates += 1;
      this.byKey.set(k, r);
    }
    this.corruptLines = corruptLines;
    this.counts = {
      recorded: this.byKey.size,
      duplicates,
      corrupt: corruptLines.length,
      replayed: 0,
      fallbacks: 0,
      missing: 0,
      noDecision: 0,
      invalid: 0,
    };
  }

  /**
   * A replay provider over the decision log `file` (an `llm_decisions.jsonl` written by the journal). Throws an Error
   * when the file does not exist; corrupt lines are skipped and counted.
   */
  static fromFile(file: string): ReplayProvider {
    if (!existsSync(file)) {
      throw new Error(
        `replay provider: decision log ${file} does not exist; set llm.replay_file to the llm_decisions.jsonl of a previous run`,
      );
    }
    const { records, corrupt } = readJsonLines(file, parseDecisionLine);
    return new ReplayProvider(records, file, corrupt);
  }

  /** Counters since construction (a copy). */
  stats(): ReplayStats {
    return { ...this.counts };
  }

  /** The recorded decision for a pair and time, if any. */
  recordedAt(pair: string, time: number): RecordedDecision | null {
    return this.byKey.get(key(pair, time)) ?? null;
  }

  async decide(ctx: DecisionContext): Promise<ProviderDecision> {
    const recorded = this.recordedAt(ctx.pair, ctx.asOf);
    if (!recorded) {
      this.counts.missing += 1;
      return this.fallback(ctx, 'no decision was recorded for this pair and time');
    }
    if (recorded.args === null) {
      this.counts.noDecision += 1;
      return this.fallback(
        ctx,
        `line ${recorded.line} records ${recorded.action} by ${recorded.source ?? 'an unknown source'} without a model decision`,
      );
    }
    const checked = validateToolCall(
      { name: recorded.action, arguments: recorded.args },
      { pair: ctx.pair, hasPosition: ctx.hasPosition },
    );
    if (!checked.ok) {
      this.counts.invalid += 1;
      return this.fallback(
        ctx,
        `line ${recorded.line} (${recorded.action}) is not valid now: ${checked.problems.join('; ')}`,
      );
    }
    this.counts.replayed += 1;
    const notes = [
      `replayed from line ${recorded.line} (recorded source ${recorded.source ?? 'unknown'})`,
      ...checked.notes,
    ];
    return {
      decision: checked.decision,
      source: 'replay',
      model: recorded.model ?? REPLAY_MODEL,
      usage: { input: 0, output: 0 },
      latencyMs: 0,
      problems: [],
      notes,
      rounds: 0,
      thinking: null,
    };
  }

  private fallback(ctx: DecisionContext, why: string): ProviderDecision {
    this.counts.fallbacks += 1;
    const when = new Date(ctx.asOf).toISOString();
    const action = ctx.hasPosition ? 'holding' : 'waiting';
    const reason = truncate(
      `replay: the journal has no valid decision for ${ctx.pair} at ${when} (${why}); ${action}`,
      REASON_MAX_CHARS,
    );
    const rsi = ctx.snapshot.timeframes[ctx.snapshot.mainTimeframe]?.indicators.rsi14 ?? null;
    const args: HoldArgs = {
      pair: ctx.pair,
      confidence_score: 0,
      rsi_value: rsi !== null && Number.isFinite(rsi) ? Math.min(100, Math.max(0, rsi)) : 50,
      reason,
    };
    const decision: Decision = ctx.hasPosition ? { tool: 'signal_hold', args } : { tool: 'signal_wait', args };
    return {
      decision,
      source: 'fallback',
      model: REPLAY_MODEL,
      usage: { input: 0, output: 0 },
      latencyMs: 0,
      problems: [`${why} (${this.source})`],
      notes: [],
      rounds: 0,
      thinking: null,
    };
  }
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}
