/**
 * The configuration schema (zod). Pure: reading the file and the environment lives in src/config/load.ts.
 *
 * Every number has real bounds, and every error names the key path, the rule and the value, e.g.
 * `risk.max_leverage must be an integer in 1..125, got 500`.
 */
import { z } from 'zod';
import { parseDateTime } from './dates';
import { PAIR_RE } from './pair-symbol';
import { CCXT_EXCHANGE_IDS } from './exchange-ids';
import { REDACTED, Redactor, secretsOf } from './redact';
import { timeframeMs } from './timeframe';

function number(opts: { min?: number; max?: number; int?: boolean; gt?: number; lt?: number }) {
  const kind = opts.int ? 'an integer' : 'a number';
  const range =
    opts.gt !== undefined || opts.lt !== undefined
      ? `${opts.gt !== undefined ? `> ${opts.gt}` : ''}${opts.gt !== undefined && opts.lt !== undefined ? ' and ' : ''}${opts.lt !== undefined ? `< ${opts.lt}` : ''}`
      : opts.min !== undefined && opts.max !== undefined
        ? `in ${opts.min}..${opts.max}`
        : opts.min !== undefined
          ? `>= ${opts.min}`
          : opts.max !== undefined
            ? `<= ${opts.max}`
            : '';
  const message = `must be ${kind}${range ? ` ${range}` : ''}`;
  return z.number({ error: message }).check((ctx) => {
    const v = ctx.value;
    const bad =
      !Number.isFinite(v) ||
      (opts.int === true && !Number.isInteger(v)) ||
      (opts.min !== undefined && v < opts.min) ||
      (opts.max !== undefined && v > opts.max) ||
      (opts.gt !== undefined && v <= opts.gt) ||
      (opts.lt !== undefined && v >= opts.lt);
    if (bad) ctx.issues.push({ code: 'custom', message, input: v });
  });
}

/**
 * The candle timeframes exchanges serve (ccxt's common set; Binance USDT-M has exactly these): a config timeframe
 * must be one of them, so that a download can fetch it and a recorded one can be aggregated from a finer one.
 */
export const TIMEFRAMES = [
  '1m',
  '3m',
  '5m',
  '15m',
  '30m',
  '1h',
  '2h',
  '4h',
  '6h',
  '8h',
  '12h',
  '1d',
  '3d',
  '1w',
] as const;
const timeframe = z.string().refine((tf) => (TIMEFRAMES as readonly string[]).includes(tf), {
  error: `must be one of the exchange timeframes ${TIMEFRAMES.join(', ')}`,
});

// in its own module for the command's argument checks, which do not load the schema
export { PAIR_RE };
const pair = z
  .string()
  .regex(PAIR_RE, { error: 'must be a ccxt perpetual symbol like BTC/USDT:USDT (base/quote:settle)' });

/** A model's price, USD per million tokens; `cached_input` null: cached prompt tokens cost as much as others. */
export const ModelPriceSchema = z
  .object({
    input: number({ min: 0, max: 100_000 }),
    cached_input: number({ min: 0, max: 100_000 }).nullable().default(null),
    output: number({ min: 0, max: 100_000 }),
  })
  .strict();

export const LlmConfigSchema = z
  .object({
    /** which decision provider: the offline rule baseline, any OpenAI-compatible endpoint, or a recorded journal */
    provider: z
      .enum(['baseline', 'openai', 'replay'], { error: 'must be one of baseline, openai, replay' })
      .default('baseline'),
    api_base: z
      .string()
      .url({ error: 'must be a URL like https://api.openai.com/v1' })
      .default('https://api.openai.com/v1'),
    /** prefer the OPENAI_API_KEY environment variable; never logged */
    api_key: z.string().default(''),
    model: z.string().min(1, { error: 'must be a model name' }).default('gpt-4.1-mini'),
    temperature: number({ min: 0, max: 2 }).default(0.2),
    max_tokens: number({ min: 16, max: 100_000, int: true }).default(1000),
    /** per-call timeout, seconds */
    timeout: number({ min: 1, max: 600 }).default(60),
    /** retries after the first attempt (429, 5xx, network) */
    retry_times: number({ min: 0, max: 10, int: true }).default(2),
    /**
     * cache decisions by a hash of the request (model, endpoint without credentials, request parameters, prompt, tools)
     * so that reruns cost nothing and give the same decisions
     */
    cache: z.boolean().default(true),
    /** for provider=replay: a previous llm_decisions.jsonl */
    replay_file: z.string().nullable().default(null),
    /**
     * USD per million tokens by model name, over the built-in table of common OpenAI models (src/llm/pricing.ts); a
     * model in neither has no cost estimate
     */
    pricing: z.record(z.string().min(1, { error: 'must be a model name' }), ModelPriceSchema).default({}),
    /** backtests: stop before the model spend of the run would pass this many USD (resumable from the cache) */
    max_cost_usd: number({ gt: 0 }).nullable().default(null),
  })
  .strict();

/** How backtests drive the model; none of it changes a backtest's result (see `resultConfig`). */
export const BacktestConfigSchema = z
  .object({
    /** model requests in flight at once (lowered for a while when the server answers 429) */
    concurrency: number({ min: 1, max: 256, int: true }).default(8),
    /** stop when more than this % of the first `fallback_alarm_decisions` model decisions are fallbacks */
    fallback_alarm_pct: number({ min: 0, max: 100 }).default(20),
    fallback_alarm_decisions: number({ min: 1, max: 1_000_000, int: true }).default(50),
    /**
     * ask the next decision time's questions while the last answers of one are outstanding, guessing that those
     * answers place no order; a wrong guess costs the requests asked for it (see README "LLM backtests")
     */
    prefetch: z.boolean().default(false),
  })
  .strict();

export const ExchangeConfigSchema = z
  .object({
    /** ccxt exchange id with swap markets */
    name: z
      .string()
      .refine((id) => CCXT_EXCHANGE_IDS.includes(id), {
        error: 'must be an exchange id ccxt knows, e.g. binanceusdm, bybit, okx (see ccxt.exchanges)',
      })
      .default('binanceusdm'),
    /** prefer EXCHANGE_API_KEY / EXCHANGE_API_SECRET environment variables; never logged */
    api_key: z.string().default(''),
    api_secret: z.string().default(''),
    sandbox: z.boolean().default(false),
    demo_trading: z.boolean().default(false),
    /**
     * base URL that replaces the exchange's API URLs (their paths are kept), e.g. the local test exchange
     * `http://127.0.0.1:8900`; null: ccxt's URLs. http only on 127.0.0.1 / localhost.
     */
    api_url: z.string().url({ error: 'must be a URL like http://127.0.0.1:8900' }).nullable().default(null),
    /** extra ccxt constructor options */
    ccxt_options: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export const PaperConfigSchema = z
  .object({
    starting_balance: number({ gt: 0 }).default(10_000),
    /** fractions, e.g. 0.0005 = 0.05 % */
    taker_fee: number({ min: 0, max: 0.01 }).default(0.0005),
    maker_fee: number({ min: 0, max: 0.01 }).default(0.0002),
    /** adverse slippage applied to market fills, fraction of price */
    slippage: number({ min: 0, max: 0.05 }).default(0.0002),
    maintenance_margin_rate: number({ gt: 0, lt: 0.5 }).default(0.005),
    /** exchange minimum order notional in USDT, when the market does not say */
    min_notional: number({ min: 0 }).default(5),
  })
  .strict();

export const RiskConfigSchema = z
  .object({
    max_leverage: number({ min: 1, max: 125, int: true }).default(20),
    default_leverage: number({ min: 1, max: 125, int: true }).default(5),
    /** margin of one position as % of equity */
    max_position_pct: number({ gt: 0, max: 100 }).default(25),
    /** margin used when the model gives no stake, % of equity */
    default_stake_pct: number({ gt: 0, max: 100 }).default(10),
    /** total notional of all open positions as % of equity (300 = 3x equity) */
    max_total_exposure_pct: number({ gt: 0, max: 12_500 }).default(300),
    max_open_trades: number({ min: 1, max: 100, int: true }).default(4),
    /** entries below this confidence_score are rejected */
    min_confidence: number({ min: 0, max: 100 }).default(60),
    /** no new entry on a pair for this long after a stop-out (emergency stop, stop, liquidation) */
    cooldown_minutes: number({ min: 0, max: 100_000 }).default(120),
    /** reject entries whose liquidation price is within k x ATR(14, main timeframe) of the entry */
    liquidation_atr_multiple: number({ min: 0, max: 100 }).default(3),
    max_adjustments_per_trade: number({ min: 0, max: 100, int: true }).default(3),
    /** true: clamp an out-of-limit order into the limits (with reasons); false: reject it */
    allow_model_freedom: z.boolean().default(true),
    /** protective exit at this leveraged PnL (fraction of margin), checked every cycle before the model */
    emergency_stop_loss: number({ gt: -1, lt: 0 }).default(-0.15),
    /** protective exit when the price is within this fraction of price from the liquidation price */
    liquidation_buffer: number({ min: 0, lt: 1 }).default(0.01),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.default_leverage > r.max_leverage) {
      ctx.addIssue({
        code: 'custom',
        path: ['default_leverage'],
        message: `must be <= risk.max_leverage (${r.max_leverage})`,
        input: r.default_leverage,
      });
    }
    if (r.default_stake_pct > r.max_position_pct) {
      ctx.addIssue({
        code: 'custom',
        path: ['default_stake_pct'],
        message: `must be <= risk.max_position_pct (${r.max_position_pct})`,
        input: r.default_stake_pct,
      });
    }
  });

export const ExperienceConfigSchema = z
  .object({
    log_decisions: z.boolean().default(true),
    log_trades: z.boolean().default(true),
    max_recent_trades_context: number({ min: 0, max: 50, int: true }).default(5),
    max_recent_decisions_context: number({ min: 0, max: 50, int: true }).default(5),
    include_pair_specific_trades: z.boolean().default(true),
  })
  .strict();

export const ContextConfigSchema = z
  .object({
    /** hard budget for system + user + tools when flat, counted with the o200k_base tokenizer */
    max_context_tokens: number({ min: 500, max: 200_000, int: true }).default(2500),
    /** the same budget for prompts while a position is open (the position prompt carries the position section) */
    max_position_context_tokens: number({ min: 500, max: 200_000, int: true }).default(3000),
    indicator_history_points: number({ min: 0, max: 500, int: true }).default(12),
    raw_kline_history_points: number({ min: 0, max: 500, int: true }).default(8),
    include_multi_timeframe_data: z.boolean().default(true),
  })
  .strict();

export const TimeframesConfigSchema = z
  .object({
    main: timeframe.default('30m'),
    /** context timeframes: each longer than `main`, each listed once */
    informative: z.array(timeframe).default(['1h', '4h', '1d']),
  })
  .strict()
  .superRefine((t, ctx) => {
    const mainMs = TIMEFRAMES.includes(t.main as (typeof TIMEFRAMES)[number]) ? timeframeMs(t.main) : null;
    t.informative.forEach((tf, i) => {
      if (!TIMEFRAMES.includes(tf as (typeof TIMEFRAMES)[number])) return; // reported by the element's own check
      const first = t.informative.indexOf(tf);
      if (first < i) {
        ctx.addIssue({
          code: 'custom',
          path: ['informative', i],
          message: `repeats timeframes.informative[${first}]: list each informative timeframe once`,
          input: tf,
        });
      } else if (mainMs !== null && timeframeMs(tf) <= mainMs) {
        ctx.addIssue({
          code: 'custom',
          path: ['informative', i],
          message: `must be longer than timeframes.main (${t.main}): informative timeframes add a longer view`,
          input: tf,
        });
      }
    });
  });

export const TemporalConfigSchema = z
  .object({
    address: z.string().min(1).default('localhost:7233'),
    namespace: z.string().min(1).default('default'),
    task_queue: z.string().min(1).default('llm-trader'),
    /** TLS for a hosted server; the API key comes from TEMPORAL_API_KEY */
    tls: z.boolean().default(false),
    /** seconds to wait after a candle close before deciding (lets the exchange publish the candle) */
    grace_seconds: number({ min: 0, max: 600 }).default(5),
    /**
     * continue-as-new after this many cycles even if the server does not suggest it. A recovering worker replays the
     * whole current run in its first workflow task (about 2 ms per event on this project's 2-core machine under load,
     * the SDK's per-call isolate timeout included), so this bounds recovery: 32 cycles are about 600 events.
     */
    max_cycles_per_run: number({ min: 1, max: 100_000, int: true }).default(32),
  })
  .strict();

export const ReplayConfigSchema = z
  .object({
    /**
     * a folder of recorded candles in the ../shared/data layout (CSV / CSV.gz), read directly; null (the default):
     * the candle database `<data_dir>/candles.sqlite` that import-data and download-data fill
     */
    data: z.string().min(1).nullable().default(null),
    /** recorded time at which the replay starts (ISO date); default: 20 days into the data */
    start: z
      .string()
      .refine((text) => parseDateTime(text) !== null, {
        error: 'must be an existing UTC date or ISO time like 2025-06-10 or 2025-06-10T00:00:00Z',
      })
      .nullable()
      .default(null),
    /** wall-clock seconds per main-timeframe candle */
    seconds_per_candle: number({ gt: 0, max: 86_400 }).default(2),
  })
  .strict();

export const ConfigSchema = z
  .object({
    mode: z.enum(['live', 'paper', 'replay'], { error: 'must be one of live, paper, replay' }).default('paper'),
    pairs: z.array(pair).min(1, { error: 'must list at least one pair' }).default(['BTC/USDT:USDT', 'ETH/USDT:USDT']),
    timeframes: TimeframesConfigSchema.default(TimeframesConfigSchema.parse({})),
    data_dir: z.string().min(1).default('user_data/'),
    llm: LlmConfigSchema.default(LlmConfigSchema.parse({})),
    exchange: ExchangeConfigSchema.default(ExchangeConfigSchema.parse({})),
    paper: PaperConfigSchema.default(PaperConfigSchema.parse({})),
    risk: RiskConfigSchema.default(RiskConfigSchema.parse({})),
    experience: ExperienceConfigSchema.default(ExperienceConfigSchema.parse({})),
    context: ContextConfigSchema.default(ContextConfigSchema.parse({})),
    temporal: TemporalConfigSchema.default(TemporalConfigSchema.parse({})),
    replay: ReplayConfigSchema.default(ReplayConfigSchema.parse({})),
    backtest: BacktestConfigSchema.default(BacktestConfigSchema.parse({})),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type TradingMode = Config['mode'];
export type RiskConfig = z.infer<typeof RiskConfigSchema>;
export type PaperConfig = z.infer<typeof PaperConfigSchema>;
export type LlmConfig = z.infer<typeof LlmConfigSchema>;
export type ModelPrice = z.infer<typeof ModelPriceSchema>;
export type BacktestConfig = z.infer<typeof BacktestConfigSchema>;
export type ContextConfig = z.infer<typeof ContextConfigSchema>;
export type ExperienceConfig = z.infer<typeof ExperienceConfigSchema>;

export interface ConfigProblem {
  path: string;
  message: string;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** `risk.max_leverage`, `pairs[0]`; `(root)` for the top level. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
  return out || '(root)';
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

const PRICING_MOVED =
  'the price settings moved to llm.pricing: {"<model>": {"input": <USD per million>, "cached_input": <USD per ' +
  'million or null>, "output": <USD per million>}}';

/** Keys of earlier releases, with where their setting went. */
const REPLACED_KEYS: Readonly<Record<string, string>> = {
  'llm.price_input_per_mtok': PRICING_MOVED,
  'llm.price_output_per_mtok': PRICING_MOVED,
};

/** Validate a parsed JSON value. Returns the config or one readable line per problem. */
export function parseConfig(raw: unknown): { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] } {
  const result = ConfigSchema.safeParse(raw);
  if (result.success) return { ok: true, config: result.data };
  const problems = result.error.issues.map((issue) => {
    const path = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const moved = issue.keys.map((k) => REPLACED_KEYS[`${path}.${k}`]).filter((m) => m !== undefined);
      return {
        path,
        message: `${path} has unknown key(s) ${issue.keys.join(', ')}: remove or rename them${moved.length > 0 ? ` (${[...new Set(moved)].join('; ')})` : ''}`,
      };
    }
    const value = valueAt(raw, issue.path);
    return { path, message: `${path} ${issue.message}, got ${describe(value)}` };
  });
  return { ok: false, problems };
}

/**
 * The effective config with every secret blanked (`llm.api_key`, `exchange.api_key`, `exchange.api_secret` become
 * `***` when set) and every string passed through the project's redactor (src/core/redact.ts), so credentials inside
 * URLs (`llm.api_base` with `user:password@` or `?api-key=`) and secrets quoted elsewhere are hidden too: safe for
 * printing, memos, logs, result.json and reports.
 */
export function redactConfig(config: Config): Config {
  const blanked: Config = {
    ...config,
    llm: { ...config.llm, api_key: config.llm.api_key ? REDACTED : '' },
    exchange: {
      ...config.exchange,
      api_key: config.exchange.api_key ? REDACTED : '',
      api_secret: config.exchange.api_secret ? REDACTED : '',
    },
  };
  return new Redactor(secretsOf(config, {})).redactDeep(blanked);
}
