/**
 * Validation of the model's tool calls into a `Decision`.
 *
 * Pure. Every problem is one sentence that names the field, the rule and the value received, because problems are
 * sent back to the model verbatim in a repair round: `leverage must be an integer in 1..125, got 500`.
 * Notes record what was accepted after a harmless repair (a missing pair filled in, a numeric string read as a
 * number, double-encoded arguments, an unknown extra field dropped), so that the journal shows it.
 *
 * Lenient where it is harmless, strict where it matters: a field the tool does not have is dropped and named in
 * `dropped` (a model that adds a harmless `"note": ...` still decides); a wrong type, a value out of range, another
 * pair, an unknown tool or a tool not allowed in the state is a problem.
 */
import type { z } from 'zod';
import type { Decision, ToolName } from './types';
import { NUMERIC_FIELDS, TOOL_SCHEMAS, allowedTools, isToolName } from './tools';

/** A tool call as the provider returns it: `arguments` is usually a JSON string, sometimes already an object. */
export interface RawToolCall {
  name: string;
  arguments: unknown;
}

export interface ValidationContext {
  /** the pair being decided, e.g. "BTC/USDT:USDT" */
  pair: string;
  /** whether the pair has an open position (decides which tools are allowed) */
  hasPosition: boolean;
}

export type ValidationResult =
  | {
      ok: true;
      decision: Decision;
      notes: string[];
      /** fields of the call that the tool does not have, dropped before validation (in the order received) */
      dropped: string[];
    }
  | { ok: false; problems: string[] };

type DecodeResult = { ok: true; value: Record<string, unknown>; notes: string[] } | { ok: false; problem: string };

/** A JSON number literal, nothing around it: "10", "-2.5", "1e3". Not "0x10", " 10", "10%", "Infinity". */
const EXACT_NUMBER_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** ```json ... ``` (or a bare ``` fence) around the whole text. */
const CODE_FENCE_RE = /^```[A-Za-z0-9_-]*[ \t]*\r?\n?([\s\S]*?)\r?\n?```$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A short, unambiguous rendering of a received value for a problem message. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') {
    if (value.length > 60)
      return `a string of ${value.length} characters starting ${JSON.stringify(value.slice(0, 40))}`;
    return JSON.stringify(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length} item(s)`;
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/**
 * Turn a tool call's `arguments` into a plain object. Accepts an object; a JSON string of an object; a JSON string
 * whose content is itself a JSON string of the object (double-encoded); and a Markdown code fence (```json ... ```)
 * around either JSON text. Anything else (invalid JSON, an array, a number, null, more than two encodings) fails
 * with a problem saying what was received and what is expected.
 */
export function decodeArguments(raw: unknown, tool: string): DecodeResult {
  const notes: string[] = [];
  const expected = `send the arguments of ${tool} as one JSON object of its fields`;
  let value = raw;
  for (let decodes = 0; typeof value === 'string'; decodes++) {
    if (decodes === 2) {
      return { ok: false, problem: `arguments of ${tool} are JSON-encoded more than twice: ${expected}` };
    }
    let text = value.trim();
    const fence = CODE_FENCE_RE.exec(text);
    if (fence) {
      text = (fence[1] ?? '').trim();
      notes.push(`arguments of ${tool} were wrapped in a code fence; the fence was removed`);
    }
    if (text === '') return { ok: false, problem: `arguments of ${tool} are empty: ${expected}` };
    try {
      value = JSON.parse(text);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      return { ok: false, problem: `arguments of ${tool} are not valid JSON (${detail}): ${expected}` };
    }
    if (decodes === 1) notes.push(`arguments of ${tool} were double-encoded JSON (a JSON string of the JSON object)`);
  }
  if (!isPlainObject(value)) {
    return {
      ok: false,
      problem: `arguments of ${tool} must be a JSON object of fields, got ${kindOf(value)}: ${expected}`,
    };
  }
  return { ok: true, value, notes };
}

type CheckResult<T> = { ok: true; data: T } | { ok: false; problems: string[] };

/**
 * Parse `args` (only fields of the tool: unknown ones were dropped before) with a tool schema; one problem per field
 * (the first failed check).
 */
function check<T>(schema: z.ZodType<T>, args: Record<string, unknown>): CheckResult<T> {
  const result = schema.safeParse(args);
  if (result.success) return { ok: true, data: result.data };
  const problems: string[] = [];
  const reported = new Set<string>();
  for (const issue of result.error.issues) {
    const path = issue.path.map(String).join('.') || '(arguments)';
    if (reported.has(path)) continue;
    reported.add(path);
    const first = issue.path[0];
    const value = typeof first === 'string' || typeof first === 'number' ? args[first] : undefined;
    problems.push(
      value === undefined
        ? `${path} is missing: it ${issue.message}`
        : `${path} ${issue.message}, got ${describeValue(value)}`,
    );
  }
  return { ok: false, problems };
}

/**
 * Validate one tool call against the tool schemas and the state of the pair.
 *
 * - The tool must exist and be allowed in the state (`allowedTools(ctx.hasPosition)`); otherwise the only problem
 *   says which tools may be used.
 * - `arguments` go through `decodeArguments`.
 * - `pair` missing (absent, null or "") is filled with `ctx.pair` (noted); any other pair than `ctx.pair` is a problem.
 * - A numeric field sent as an exact number string ("10", "-2.5") is read as that number (noted).
 * - A field the tool does not have is dropped (listed in `dropped`, noted): harmless, so not a reason to reject.
 * - Every other violation is one problem per field: `<field> <rule>, got <value>`, or `<field> is missing: it <rule>`.
 * - `stake_amount` absent becomes null (the risk gate sizes the stake).
 */
export function validateToolCall(raw: RawToolCall, ctx: ValidationContext): ValidationResult {
  const allowed = allowedTools(ctx.hasPosition);
  const name = raw.name;
  if (!isToolName(name)) {
    return { ok: false, problems: [`unknown tool ${JSON.stringify(name)}: call one of ${allowed.join(', ')}`] };
  }
  if (!allowed.includes(name)) {
    const state = ctx.hasPosition
      ? `there is an open position on ${ctx.pair}`
      : `there is no open position on ${ctx.pair}`;
    return { ok: false, problems: [`${name} is not allowed: ${state}; use one of ${allowed.join(', ')}`] };
  }

  const decoded = decodeArguments(raw.arguments, name);
  if (!decoded.ok) return { ok: false, problems: [decoded.problem] };
  const notes = [...decoded.notes];
  const problems: string[] = [];
  const args: Record<string, unknown> = { ...decoded.value };
  const fields = TOOL_SCHEMAS[name].shape;
  const dropped: string[] = [];
  for (const key of Object.keys(args)) {
    if (Object.hasOwn(fields, key)) continue;
    dropped.push(key);
    delete args[key];
  }
  if (dropped.length > 0) {
    notes.push(`unknown field(s) ${dropped.join(', ')} of ${name} dropped (the tool has no such field)`);
  }

  const givenPair = args.pair;
  if (givenPair === undefined || givenPair === null || givenPair === '') {
    args.pair = ctx.pair;
    notes.push(`pair was missing; filled with "${ctx.pair}"`);
  } else if (givenPair !== ctx.pair) {
    problems.push(`pair must be "${ctx.pair}" (the pair being decided), got ${describeValue(givenPair)}`);
    // The pair problem is reported once, above; give the schema the right pair so it does not report it again.
    args.pair = ctx.pair;
  }

  for (const [field, value] of Object.entries(args)) {
    if (!NUMERIC_FIELDS.has(field) || typeof value !== 'string' || !EXACT_NUMBER_RE.test(value)) continue;
    const number = Number(value);
    if (!Number.isFinite(number)) continue;
    args[field] = number;
    notes.push(`${field} was the string ${JSON.stringify(value)}; read as the number ${number}`);
  }

  const result = checkArgs(name, args);
  if (!result.ok) problems.push(...result.problems);
  if (problems.length > 0 || !result.ok) return { ok: false, problems };
  return { ok: true, decision: result.decision, notes, dropped };
}

function checkArgs(
  tool: ToolName,
  args: Record<string, unknown>,
): { ok: true; decision: Decision } | { ok: false; problems: string[] } {
  switch (tool) {
    case 'signal_entry_long':
    case 'signal_entry_short': {
      const r = check(TOOL_SCHEMAS[tool], args);
      return r.ok ? { ok: true, decision: { tool, args: r.data } } : r;
    }
    case 'signal_exit': {
      const r = check(TOOL_SCHEMAS[tool], args);
      return r.ok ? { ok: true, decision: { tool, args: r.data } } : r;
    }
    case 'adjust_position': {
      const r = check(TOOL_SCHEMAS[tool], args);
      return r.ok ? { ok: true, decision: { tool, args: r.data } } : r;
    }
    case 'signal_hold':
    case 'signal_wait': {
      const r = check(TOOL_SCHEMAS[tool], args);
      return r.ok ? { ok: true, decision: { tool, args: r.data } } : r;
    }
  }
}

/**
 * Validate the tool calls of one model answer. Tools are final, so the first call is the decision: extra calls are
 * ignored (a note on success; on failure an extra problem line reminds the model to call exactly one tool).
 * No call at all is a problem listing the tools allowed in the state.
 */
export function validateToolCalls(calls: readonly RawToolCall[], ctx: ValidationContext): ValidationResult {
  const first = calls[0];
  if (first === undefined) {
    return { ok: false, problems: [`no tool call: call exactly one of ${allowedTools(ctx.hasPosition).join(', ')}`] };
  }
  const result = validateToolCall(first, ctx);
  if (calls.length === 1) return result;
  const extra = calls.slice(1).map((c) => c.name);
  if (result.ok) {
    const note = `${extra.length} extra tool call(s) ignored (${extra.join(', ')}): only the first call counts`;
    return { ...result, notes: [...result.notes, note] };
  }
  const reminder = `you made ${calls.length} tool calls; only the first (${first.name}) counts: call exactly one tool`;
  return { ok: false, problems: [...result.problems, reminder] };
}

/** What went wrong in a rejected answer, by kind (for the fallback alarm and the result's fallback counts). */
export type ProblemKind =
  | 'no_tool_call'
  | 'unknown_tool'
  | 'tool_not_allowed'
  | 'invalid_arguments'
  | 'wrong_pair'
  | 'missing_field'
  | 'invalid_value'
  | 'cut_off'
  | 'several_calls'
  | 'other';

/** A short label of each kind, for messages. */
export const PROBLEM_KIND_LABELS: Readonly<Record<ProblemKind, string>> = {
  no_tool_call: 'no tool call',
  unknown_tool: 'unknown tool',
  tool_not_allowed: 'tool not allowed in the state',
  invalid_arguments: 'arguments not a JSON object',
  wrong_pair: 'another pair',
  missing_field: 'missing field',
  invalid_value: 'wrong type or out of range',
  cut_off: 'answer cut off at the output limit',
  several_calls: 'several tool calls',
  other: 'other',
};

/**
 * The kind of one problem sentence of this module (or of the provider: an answer cut off at the output limit),
 * with or without the provider's `answer N: ` prefix. The patterns follow the sentences built above (tested with
 * every one of them).
 */
export function problemKind(problem: string): ProblemKind {
  const p = problem.replace(/^answer \d+: /, '');
  if (p.startsWith('no tool call:')) return 'no_tool_call';
  if (p.startsWith('unknown tool ')) return 'unknown_tool';
  if (/^[a-z_]+ is not allowed: there is/.test(p)) return 'tool_not_allowed';
  if (p.startsWith('arguments of ')) return 'invalid_arguments';
  if (/^pair must be ".*" \(the pair being decided\)/.test(p)) return 'wrong_pair';
  if (/^[A-Za-z0-9_.()]+ is missing: it /.test(p)) return 'missing_field';
  if (p.startsWith('the answer was cut off at the output limit')) return 'cut_off';
  if (/^you made \d+ tool calls;/.test(p)) return 'several_calls';
  if (/^[A-Za-z0-9_.()]+ .*, got /.test(p)) return 'invalid_value';
  return 'other';
}
