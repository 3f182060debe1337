/**
 * Failpoints: named places in the activities where a crash test can stop the worker at a chosen step, in the spirit
 * of etcd's gofail and FreeBSD's fail(9). Off unless the worker's environment names them; then the activity logs one
 * line and pauses there, so a harness watching the log can SIGKILL the worker at exactly that step:
 *
 *   LLM_TRADER_FAILPOINTS='execute.afterOrder=3000,decide.beforeProvider=3000' llm-trader worker -c cfg.json
 *
 * Each entry is `<name>=<pause ms>`; a name may be given with `@<probability>` (0..1) to pause only on that share of
 * passes, e.g. `decide.beforeProvider=2000@0.25`. The log line is
 * `failpoint <name>: pausing <ms> ms` with `failpoint` and `pauseMs` fields. Unknown names are an error at start.
 *
 * `<name>=error(<type>|<type>...)` makes the step fail there with an exchange error of that type instead, the types
 * taken in turn at each pass (as gofail's `return` term): e.g. `execute.beforeOrder=error(ExchangeInsufficientFunds|
 * ExchangeInvalidOrder|none)` has the exchange refuse an order for insufficient margin, the next as invalid, let the
 * third through, and so on; LLM transport types (`decide.beforeProvider=error(LlmUnavailable)`) fail the model call.
 * The log line is `failpoint <name>: failing with <type>`.
 *
 * Activities only: workflow code never reads the environment.
 */
import { EXCHANGE_ERROR_TYPES, ExchangeError, type ExchangeErrorType } from '../exchange/errors';
import { LLM_ERROR_TYPES } from '../core/error-types';
import { LlmError, type LlmErrorType } from '../llm/errors';

/** What an error failpoint can fail with: an exchange error type, or an LLM transport error type. */
type InjectedError = ExchangeErrorType | LlmErrorType;
const INJECTABLE: readonly string[] = [...EXCHANGE_ERROR_TYPES, ...LLM_ERROR_TYPES];

/** Every place an activity can pause, in the order a decision cycle reaches them. */
export const FAILPOINTS = [
  /** fetchMarket, before the market data is read */
  'fetchMarket.start',
  /** decide, after the prompt was built and stored, before the provider (the model) is asked */
  'decide.beforeProvider',
  /** requestAdmission, after the request was handed to the account workflow, before the activity reports it */
  'requestAdmission.afterSignal',
  /** execute, before anything is sent to the exchange */
  'execute.beforeOrder',
  /** execute, after the exchange accepted the order, before the activity reports it (the order exists; no journal yet) */
  'execute.afterOrder',
  /** recordDecision, before the journal write */
  'recordDecision.start',
] as const;

export type FailpointName = (typeof FAILPOINTS)[number];

export const FAILPOINTS_ENV = 'LLM_TRADER_FAILPOINTS';

interface Failpoint {
  pauseMs: number;
  probability: number;
  /** exchange error types to fail with, in turn (`none`: that pass goes through); empty: pause */
  errors: (InjectedError | 'none')[];
}

export interface FailpointLogger {
  warn(message: string, meta?: Record<string, unknown>): void;
}

export type Failpoints = (name: FailpointName) => Promise<void>;

/**
 * Parses {@link FAILPOINTS_ENV}. Returns null when it is unset or empty.
 * @throws Error naming the entry and the accepted form when the value is malformed or names an unknown failpoint
 */
export function parseFailpoints(value: string | undefined): Map<FailpointName, Failpoint> | null {
  if (value === undefined || value.trim() === '') return null;
  const out = new Map<FailpointName, Failpoint>();
  for (const raw of value.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const m = /^([A-Za-z.]+)=(?:(\d+)|error\(([A-Za-z|]+)\))(?:@(0(?:\.\d+)?|1(?:\.0+)?))?$/.exec(entry);
    if (!m) {
      throw new Error(
        `${FAILPOINTS_ENV}: "${entry}" is not <name>=<pause ms>[@<probability 0..1>] or ` +
          '<name>=error(<exchange error type>|...)[@<probability>], e.g. execute.afterOrder=3000',
      );
    }
    const name = m[1] as FailpointName;
    if (!(FAILPOINTS as readonly string[]).includes(name)) {
      throw new Error(`${FAILPOINTS_ENV}: unknown failpoint "${m[1]}"; known: ${FAILPOINTS.join(', ')}`);
    }
    const errors = m[3] === undefined ? [] : m[3].split('|');
    for (const type of errors) {
      if (type !== 'none' && !INJECTABLE.includes(type)) {
        throw new Error(
          `${FAILPOINTS_ENV}: "${entry}": "${type}" is not an exchange or LLM error type; known: ${INJECTABLE.join(', ')}`,
        );
      }
    }
    out.set(name, {
      pauseMs: m[2] === undefined ? 0 : Number(m[2]),
      probability: m[4] === undefined ? 1 : Number(m[4]),
      errors: errors as (InjectedError | 'none')[],
    });
  }
  return out.size > 0 ? out : null;
}

/** Does nothing: the production default. */
const off: Failpoints = () => Promise.resolve();

/**
 * The failpoints of this process (from {@link FAILPOINTS_ENV}), or a function that does nothing when none are set.
 * `random` decides probabilistic entries (tests pass their own).
 */
export function createFailpoints(
  logger: FailpointLogger,
  env: NodeJS.ProcessEnv = process.env,
  random: () => number = Math.random,
): Failpoints {
  const points = parseFailpoints(env[FAILPOINTS_ENV]);
  if (points === null) return off;
  const passes = new Map<FailpointName, number>();
  return async (name) => {
    const point = points.get(name);
    if (point === undefined) return;
    if (point.probability < 1 && random() >= point.probability) return;
    if (point.errors.length > 0) {
      const type = point.errors[(passes.get(name) ?? 0) % point.errors.length]!;
      passes.set(name, (passes.get(name) ?? 0) + 1);
      if (type === 'none') return;
      logger.warn(`failpoint ${name}: failing with ${type}`, { failpoint: name, error: type });
      if ((LLM_ERROR_TYPES as readonly string[]).includes(type)) {
        throw new LlmError(type as LlmErrorType, `failpoint ${name}: the model server failed (${type}, injected)`);
      }
      throw new ExchangeError(
        type as ExchangeErrorType,
        `failpoint ${name}: the exchange refused the request (${type}, injected)`,
      );
    }
    logger.warn(`failpoint ${name}: pausing ${point.pauseMs} ms`, { failpoint: name, pauseMs: point.pauseMs });
    await new Promise((resolve) => setTimeout(resolve, point.pauseMs));
  };
}
