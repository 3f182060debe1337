/**
 * The six decision tools: zod schemas (the source of truth for field bounds), the strict OpenAI function-tool
 * definitions derived from them, and which tools the model may call in which state.
 *
 * Pure: imports zod only, so workflow code may import it.
 *
 * The `.describe()` texts and tool descriptions are sent to the model as part of every prompt: they say what a
 * field means and its units, briefly. Every check of a field carries the field's rule as its error message, which
 * validate.ts turns into `<field> <rule>, got <value>`.
 */
import { z } from 'zod';
import type { AdjustArgs, EntryArgs, ExitArgs, HoldArgs, ToolName } from './types';

/** Every tool name, in the order they are offered. */
export const TOOL_NAMES = [
  'signal_entry_long',
  'signal_entry_short',
  'signal_exit',
  'adjust_position',
  'signal_hold',
  'signal_wait',
] as const satisfies readonly ToolName[];

/** Longest `reason` accepted, in characters (UTF-16 code units). */
export const REASON_MAX_CHARS = 2000;
/** Leverage bounds the schema accepts. The risk gate enforces the (lower) configured maximum. */
export const LEVERAGE_MIN = 1;
export const LEVERAGE_MAX = 125;

// ---------------------------------------------------------------------------------------------
// Field builders. Every check of a field carries the same message, the field's rule, so that whatever check
// fails first the model reads one precise sentence: `<field> <rule>, got <value>`.
// ---------------------------------------------------------------------------------------------

function boundedNumber(rule: string, opts: { min?: number; max?: number; positive?: boolean; int?: boolean }) {
  const error = { error: rule };
  let schema = z.number(error);
  if (opts.int) schema = schema.int(error);
  if (opts.positive) schema = schema.positive(error);
  if (opts.min !== undefined) schema = schema.min(opts.min, error);
  if (opts.max !== undefined) schema = schema.max(opts.max, error);
  return schema;
}

const RULES = {
  pair: 'must be the pair being decided, a non-empty string like "BTC/USDT:USDT"',
  leverage: `must be an integer in ${LEVERAGE_MIN}..${LEVERAGE_MAX}`,
  stake_amount: 'must be a positive number of USDT, or null to let the risk gate size the stake',
  score: 'must be a number in 0..100',
  price: 'must be a positive price (a number > 0, in the quote currency)',
  trend_strength: 'must be one of strong, medium, weak',
  reason: `must be a non-empty string of at most ${REASON_MAX_CHARS} characters`,
  adjustment_pct: 'must be a non-zero number in -100..100 (percent of the current margin: + adds, - reduces)',
} as const;

const pair = z
  .string({ error: RULES.pair })
  .min(1, { error: RULES.pair })
  .describe('The pair being decided, e.g. "BTC/USDT:USDT".');

const leverage = boundedNumber(RULES.leverage, { int: true, min: LEVERAGE_MIN, max: LEVERAGE_MAX }).describe(
  'Leverage (integer); the risk gate caps it.',
);

const stakeAmount = boundedNumber(RULES.stake_amount, { positive: true })
  .nullable()
  .default(null)
  .describe('Margin in USDT; null lets the risk gate size it.');

const confidenceScore = boundedNumber(RULES.score, { min: 0, max: 100 }).describe('Confidence, 0-100.');

const rsiValue = boundedNumber(RULES.score, { min: 0, max: 100 }).describe('Main-timeframe RSI(14) from the context.');

const tradeScore = boundedNumber(RULES.score, { min: 0, max: 100 }).describe(
  'Your rating of the whole trade, 0 (very bad) to 100 (excellent).',
);

const keySupport = boundedNumber(RULES.price, { positive: true }).describe('Nearest relevant support price.');

const keyResistance = boundedNumber(RULES.price, { positive: true }).describe('Nearest relevant resistance price.');

const trendStrength = z.enum(['strong', 'medium', 'weak'], { error: RULES.trend_strength }).describe('Trend strength.');

const adjustmentPct = boundedNumber(RULES.adjustment_pct, { min: -100, max: 100 })
  .refine((v) => v !== 0, { error: RULES.adjustment_pct })
  .describe('% of the current margin: +50 adds half as much again, -50 closes half; never 0.');

function reason(meaning: string) {
  return z
    .string({ error: RULES.reason })
    .min(1, { error: RULES.reason })
    .max(REASON_MAX_CHARS, { error: RULES.reason })
    .refine((s) => s.trim().length > 0, { error: RULES.reason })
    .describe(meaning);
}

// ---------------------------------------------------------------------------------------------
// Tool argument schemas. Strict objects: an unknown field is an error, not silently dropped.
// ---------------------------------------------------------------------------------------------

export const EntryArgsSchema = z.strictObject({
  pair,
  leverage,
  stake_amount: stakeAmount,
  confidence_score: confidenceScore,
  key_support: keySupport,
  key_resistance: keyResistance,
  rsi_value: rsiValue,
  trend_strength: trendStrength,
  reason: reason('Why now: evidence across timeframes, invalidation level, risk.'),
}) satisfies z.ZodType<EntryArgs>;

export const ExitArgsSchema = z.strictObject({
  pair,
  confidence_score: confidenceScore,
  rsi_value: rsiValue,
  trade_score: tradeScore,
  reason: reason('Why exit now, a short self-review, and the lesson.'),
}) satisfies z.ZodType<ExitArgs>;

export const AdjustArgsSchema = z.strictObject({
  pair,
  adjustment_pct: adjustmentPct,
  confidence_score: confidenceScore,
  key_support: keySupport,
  key_resistance: keyResistance,
  reason: reason('Why adjust now.'),
}) satisfies z.ZodType<AdjustArgs>;

export const HoldArgsSchema = z.strictObject({
  pair,
  confidence_score: confidenceScore,
  rsi_value: rsiValue,
  reason: reason('What still supports the position, and what would make you exit.'),
}) satisfies z.ZodType<HoldArgs>;

export const WaitArgsSchema = z.strictObject({
  pair,
  confidence_score: confidenceScore,
  rsi_value: rsiValue,
  reason: reason('Why stay flat, and what setup would make you enter.'),
}) satisfies z.ZodType<HoldArgs>;

/** The argument schema of each tool. `signal_hold` and `signal_wait` share a shape but not their texts. */
export const TOOL_SCHEMAS = {
  signal_entry_long: EntryArgsSchema,
  signal_entry_short: EntryArgsSchema,
  signal_exit: ExitArgsSchema,
  adjust_position: AdjustArgsSchema,
  signal_hold: HoldArgsSchema,
  signal_wait: WaitArgsSchema,
} as const satisfies Record<ToolName, z.ZodType>;

const FINAL = 'Final for this candle.';

/** What each tool does and when to call it; sent to the model as the function description. */
export const TOOL_DESCRIPTIONS: Record<ToolName, string> = {
  signal_entry_long: `Open a LONG. Only when flat. ${FINAL} The risk gate may reduce leverage or stake, or reject it.`,
  signal_entry_short: `Open a SHORT. Only when flat. ${FINAL} The risk gate may reduce leverage or stake, or reject it.`,
  signal_exit: `Close the whole position at market. Only when in a position. ${FINAL}`,
  adjust_position: `Add to or reduce the position. Only when in a position. ${FINAL} The risk gate may reduce or reject an addition.`,
  signal_hold: `Keep the position unchanged. Only when in a position. ${FINAL}`,
  signal_wait: `Stay flat. Only when flat. ${FINAL}`,
};

/** Names of the numeric fields (those for which an exact number string like "10" may be coerced). */
export const NUMERIC_FIELDS: ReadonlySet<string> = new Set([
  'leverage',
  'stake_amount',
  'confidence_score',
  'rsi_value',
  'trade_score',
  'key_support',
  'key_resistance',
  'adjustment_pct',
]);

/**
 * The tools the model may call on a pair.
 * Flat: `signal_entry_long`, `signal_entry_short`, `signal_wait`. In a position: `signal_exit`, `adjust_position`,
 * `signal_hold`.
 */
export function allowedTools(hasPosition: boolean): ToolName[] {
  return hasPosition
    ? ['signal_exit', 'adjust_position', 'signal_hold']
    : ['signal_entry_long', 'signal_entry_short', 'signal_wait'];
}

/** True when `name` is one of the six tool names. */
export function isToolName(name: string): name is ToolName {
  return (TOOL_NAMES as readonly string[]).includes(name);
}

// ---------------------------------------------------------------------------------------------
// Strict OpenAI tool definitions
// ---------------------------------------------------------------------------------------------

/** A JSON Schema node in the subset OpenAI strict mode accepts (see STRICT_KEYWORDS). */
export type JsonSchema = { [keyword: string]: unknown };

/** An OpenAI Chat Completions function tool with strict schema adherence (structurally the SDK's type). */
export interface OpenAIToolDefinition {
  type: 'function';
  function: {
    name: ToolName;
    description: string;
    parameters: JsonSchema;
    strict: true;
  };
}

/**
 * JSON Schema keywords kept in a strict definition. OpenAI strict mode rejects others (e.g. `not`, `oneOf`,
 * `allOf`, `default`); a schema using one is a programming error and `toStrictJsonSchema` throws.
 */
const STRICT_KEYWORDS: ReadonlySet<string> = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'enum',
  'description',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'anyOf',
]);

/** Keywords zod emits that carry no constraint the model must obey; strict mode does not accept them. */
const DROPPED_KEYWORDS: ReadonlySet<string> = new Set(['$schema', 'default']);

function isRecord(v: unknown): v is JsonSchema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Allow `null` in a schema node: `type: 'number'` becomes `type: ['number', 'null']`. */
function makeNullable(node: JsonSchema): JsonSchema {
  if (Array.isArray(node.anyOf)) {
    const variants = node.anyOf as unknown[];
    const hasNull = variants.some((v) => isRecord(v) && v.type === 'null');
    return hasNull ? node : { ...node, anyOf: [...variants, { type: 'null' }] };
  }
  const out: JsonSchema = { ...node };
  if (typeof node.type === 'string') out.type = node.type === 'null' ? 'null' : [node.type, 'null'];
  else if (Array.isArray(node.type) && !node.type.includes('null')) out.type = [...(node.type as unknown[]), 'null'];
  if (Array.isArray(node.enum) && !node.enum.includes(null)) out.enum = [...(node.enum as unknown[]), null];
  return out;
}

/**
 * `anyOf: [{type: T, ...constraints}, {type: 'null'}]` (zod's `.nullable()`) becomes `{type: [T, 'null'],
 * ...constraints}`: the same language in fewer tokens. Other unions are kept as `anyOf`.
 */
function collapseNullableUnion(node: JsonSchema): JsonSchema {
  if (!Array.isArray(node.anyOf) || node.anyOf.length !== 2) return node;
  const [a, b] = node.anyOf as unknown[];
  const nullFirst = isRecord(a) && a.type === 'null' && Object.keys(a).length === 1;
  const nullSecond = isRecord(b) && b.type === 'null' && Object.keys(b).length === 1;
  const other = nullSecond ? a : nullFirst ? b : undefined;
  if (!isRecord(other) || typeof other.type !== 'string' || other.type === 'object' || other.type === 'array') {
    return node;
  }
  const { anyOf: _anyOf, ...rest } = node;
  const merged: JsonSchema = { ...other, ...rest };
  return makeNullable(merged);
}

/**
 * Rewrite zod's JSON Schema into what OpenAI strict mode requires: every object has `additionalProperties: false`
 * and lists every property in `required`, a property that was optional becomes nullable instead, and only the
 * keywords in STRICT_KEYWORDS remain (`$schema` and `default` are dropped). Throws, naming the keyword and its
 * location, if the schema uses anything else. Returns a new object; the input is not modified.
 */
export function toStrictJsonSchema(schema: JsonSchema, at = '(root)'): JsonSchema {
  let node: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (DROPPED_KEYWORDS.has(key)) continue;
    if (!STRICT_KEYWORDS.has(key)) {
      throw new Error(`JSON Schema keyword "${key}" at ${at} is not supported by OpenAI strict mode`);
    }
    node[key] = value;
  }
  if (Array.isArray(node.anyOf)) {
    node.anyOf = (node.anyOf as unknown[]).map((v, i) => toStrictJsonSchema(isRecord(v) ? v : {}, `${at}.anyOf[${i}]`));
    node = collapseNullableUnion(node);
  }
  if (node.type === 'object' || isRecord(node.properties)) {
    const props = isRecord(node.properties) ? node.properties : {};
    const required = new Set(Array.isArray(node.required) ? (node.required as string[]) : []);
    const strictProps: JsonSchema = {};
    for (const [name, prop] of Object.entries(props)) {
      const converted = toStrictJsonSchema(isRecord(prop) ? prop : {}, `${at}.properties.${name}`);
      strictProps[name] = required.has(name) ? converted : makeNullable(converted);
    }
    node.properties = strictProps;
    node.required = Object.keys(strictProps);
    node.additionalProperties = false;
  }
  return node;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

const definitionCache = new Map<ToolName, OpenAIToolDefinition>();

function buildDefinition(name: ToolName): OpenAIToolDefinition {
  // io: 'input' describes what the model sends (stake_amount may be omitted there; the parsed output always has it).
  const jsonSchema = z.toJSONSchema(TOOL_SCHEMAS[name], { io: 'input', unrepresentable: 'throw' }) as JsonSchema;
  return deepFreeze({
    type: 'function',
    function: {
      name,
      description: TOOL_DESCRIPTIONS[name],
      parameters: toStrictJsonSchema(jsonSchema),
      strict: true,
    },
  });
}

/**
 * Strict OpenAI function-tool definitions for `names`, in the given order. Built from the zod schemas once per tool
 * and then shared: the returned objects are deeply frozen (copy before modifying). Unknown names cannot occur
 * (typed); an empty list gives an empty array.
 */
export function toolDefinitions(names: readonly ToolName[]): OpenAIToolDefinition[] {
  return names.map((name) => {
    let def = definitionCache.get(name);
    if (!def) {
      def = buildDefinition(name);
      definitionCache.set(name, def);
    }
    return def;
  });
}
