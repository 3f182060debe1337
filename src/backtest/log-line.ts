/**
 * The lines a backtest writes to its decision log (`<out>/llm_decisions.jsonl`), one per decision: the journal's line
 * (src/store/journal.ts `decisionLine`) in compact form (src/store/compact-decision-line.ts), as JSON text.
 *
 * Most decisions of a run are alike: a provider's decision without a model call's extras (no tool calls as the model
 * sent them, no thinking, problems or notes, no tokens), and a context without a prompt. Their lines are written
 * straight to text here ({@link plainLine}), field by field in the compact line's order, every string and every value
 * that is not a plain number through `JSON.stringify`; any other decision goes the general way (the full line,
 * compacted, then `JSON.stringify`). Both give the same text, byte for byte (test/backtest/log-line.test.ts, over every
 * decision of a 17-pair run and over decisions that take the general way). The straight way took the 49,559 lines of a
 * 17-pair baseline run from ~180 to ~135 ms (in process, warm, 5 rounds): the full line and its compact copy were two
 * objects of ~20 fields each per decision, for 22.7 MB of lines.
 */
import type { DecisionContext } from '../core/context-types';
import { decisionIdAt, decisionIdPrefix } from '../core/ids';
import { allowedTools } from '../core/tools';
import type { ProviderDecision } from '../llm/provider';
import { compactDecisionLine } from '../store/compact-decision-line';
import { decisionLine, journalContext } from '../store/journal';
import { orderOwner, type DecisionEvent } from './engine';

/** Builds decision log lines: `line(runId, pair, event)` is the line of `event` (no newline; not yet redacted). */
export type BacktestLogLines = (runId: string, pair: string, event: DecisionEvent) => string;

interface Owner {
  owner: string;
  /** the hash part of the pair's decision ids (src/core/ids.ts `decisionIdPrefix`) */
  idPrefix: string;
  /** `"pair"` and `"owner"` as JSON */
  pairJson: string;
  ownerJson: string;
}

/**
 * A line builder for one backtest's decision log. It remembers each pair's owner and the hash part of its decision
 * ids, which every line of the pair shares (a 17-pair run writes ~50,000 lines), and the timestamp of the decision
 * time last seen, which the pairs of a decision time share.
 */
export function backtestLogLines(): BacktestLogLines {
  const owners = new Map<string, Owner>();
  let lastTime = NaN;
  let lastTimestamp = '';
  return (runId, pair, event) => {
    const key = `${runId} ${pair}`;
    let o = owners.get(key);
    if (o === undefined) {
      const owner = orderOwner(runId, pair);
      o = {
        owner,
        idPrefix: decisionIdPrefix(owner, pair),
        pairJson: JSON.stringify(pair),
        ownerJson: JSON.stringify(owner),
      };
      owners.set(key, o);
    }
    const time = event.record.time;
    const decisionId = decisionIdAt(o.idPrefix, time);
    if (time !== lastTime) {
      lastTimestamp = new Date(time).toISOString();
      lastTime = time;
    }
    return plainLine(pair, o, decisionId, lastTimestamp, event) ?? generalLine(pair, o.owner, decisionId, event);
  };
}

/** The line of any decision: the journal's full line, compacted, as JSON. */
function generalLine(pair: string, owner: string, decisionId: string, event: DecisionEvent): string {
  return JSON.stringify(
    compactDecisionLine(
      decisionLine({
        owner,
        decisionId,
        pair,
        record: event.record,
        result: event.result,
        verdict: event.verdict,
        context: event.context ? journalContext(event.context) : null,
        clientOrderId: event.clientOrderId,
      }),
    ),
  );
}

/** The tools of each position state (src/core/tools.ts), for comparing a context's with. */
const FLAT_TOOLS = allowedTools(false);
const POSITION_TOOLS = allowedTools(true);

/**
 * JSON strings of the few distinct names a log repeats on every line (tools, sources, outcomes, argument keys), kept
 * once each: a lookup costs less than `JSON.stringify` of the name.
 */
const NAMES = new Map<string, string>();
function name(s: string): string {
  let json = NAMES.get(s);
  if (json === undefined) {
    json = JSON.stringify(s);
    if (NAMES.size < 256) NAMES.set(s, json);
  }
  return json;
}

/** A number as `JSON.stringify` writes it. */
function num(v: number): string {
  return Number.isFinite(v) ? String(v) : 'null';
}

/**
 * The compact line of a plain decision (see the module comment), or null when `event` is not one. Every field that
 * {@link compactDecisionLine} leaves out of such a line holds its default here: the checks below are those defaults.
 */
function plainLine(pair: string, o: Owner, decisionId: string, timestamp: string, event: DecisionEvent): string | null {
  const { record, verdict, clientOrderId } = event;
  const result = event.result as ProviderDecision | null;
  const context = event.context as DecisionContext | null;
  let decision = 'null';
  let model = 'null';
  if (result !== null) {
    if (
      result.rawToolCalls !== undefined ||
      (result.thinking ?? null) !== null ||
      (result.problems?.length ?? 0) > 0 ||
      (result.notes !== undefined && result.notes.length > 0) ||
      (result.usage.input ?? 0) !== 0 ||
      (result.usage.output ?? 0) !== 0 ||
      result.latencyMs !== 0 ||
      result.decision.tool !== record.tool
    ) {
      return null;
    }
    // the arguments but the pair and the reason the line already says, in their order
    const args = result.decision.args as unknown as Readonly<Record<string, unknown>> | null;
    if (typeof args !== 'object' || args === null || Array.isArray(args)) return null;
    decision = '{';
    for (const k in args) {
      const v = args[k];
      if ((k === 'pair' && v === pair) || (k === 'reason' && v === record.reason)) continue;
      const json = typeof v === 'number' ? num(v) : JSON.stringify(v);
      // undefined, a function...: left out by JSON.stringify of the object; a `__proto__` key is not copied
      if (json === undefined || k === '__proto__') return null;
      decision += `${decision.length > 1 ? ',' : ''}${name(k)}:${json}`;
    }
    decision += '}';
    model = JSON.stringify(result.model ?? null);
  }
  let marketContext = 'null';
  if (context !== null) {
    if (context.messages.length > 0 || context.tokens !== null) return null;
    if (typeof context.hasPosition !== 'boolean' || typeof context.snapshot.price !== 'number') return null;
    const tools = context.hasPosition ? POSITION_TOOLS : FLAT_TOOLS;
    const given = context.allowedTools;
    if (given.length !== tools.length || given.some((t, i) => t !== tools[i])) return null;
    marketContext = `{"price":${num(context.snapshot.price)},"has_position":${context.hasPosition}}`;
  }
  const { tool, reason, confidence, source, outcome, detail, pnlPct } = record;
  // fields the compact line always has: a value JSON would leave out (undefined) goes the general way
  if (typeof tool !== 'string' || typeof reason !== 'string' || typeof source !== 'string') return null;
  if (typeof outcome !== 'string' || confidence === undefined) return null;
  let line =
    `{"timestamp":"${timestamp}","pair":${o.pairJson},"action":${name(tool)},"decision":${decision}` +
    `,"reasoning":${JSON.stringify(reason)},"confidence":${confidence === null ? 'null' : num(confidence)}` +
    `,"market_context":${marketContext},"model":${model},"source":${name(source)}` +
    `,"outcome":${name(outcome)}`;
  // optional fields: absent when null (or undefined, which JSON leaves out)
  if (detail != null) line += `,"detail":${JSON.stringify(detail)}`;
  if (verdict === null) line += ',"verdict":null';
  else if (verdict.status !== 'none') line += `,"verdict":${JSON.stringify(verdict)}`;
  if (pnlPct != null) line += `,"pnl_pct":${num(pnlPct)}`;
  line += `,"owner":${o.ownerJson}`;
  if (clientOrderId != null) line += `,"client_order_id":${JSON.stringify(clientOrderId)}`;
  // a decision id is `d`, hex digits and base-36 digits (src/core/ids.ts): nothing to escape
  return `${line},"decision_id":"${decisionId}"}`;
}
