/**
 * Model prices and what a request costs.
 *
 * A price is USD per million tokens: `input` (prompt tokens), `cached_input` (prompt tokens the server served from
 * its prompt cache, which OpenAI reports as `usage.prompt_tokens_details.cached_tokens` and bills at a discount) and
 * `output` (completion tokens, reasoning included). `llm.pricing` in the config adds models or overrides the built-in
 * table below; a model in neither has no price, and every cost figure for it is null ("no estimate"), never a guess.
 *
 * The built-in table: OpenAI's list prices (standard tier) of common models, as published on
 * https://openai.com/api/pricing and collected from pricing pages dated March to November 2026. Prices change: set
 * `llm.pricing` for the model you pay for.
 */
import type { ModelPrice } from '../core/config';
import type { TokenUsage } from '../core/types';

/** Built-in prices, USD per million tokens (see the module comment). */
export const DEFAULT_PRICING: Readonly<Record<string, Readonly<ModelPrice>>> = Object.freeze({
  'gpt-5': { input: 1.25, cached_input: 0.125, output: 10 },
  'gpt-5-mini': { input: 0.25, cached_input: 0.025, output: 2 },
  'gpt-5-nano': { input: 0.05, cached_input: 0.005, output: 0.4 },
  'gpt-4.1': { input: 2, cached_input: 0.5, output: 8 },
  'gpt-4.1-mini': { input: 0.4, cached_input: 0.1, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, cached_input: 0.025, output: 0.4 },
  'gpt-4o': { input: 2.5, cached_input: 1.25, output: 10 },
  'gpt-4o-mini': { input: 0.15, cached_input: 0.075, output: 0.6 },
  o3: { input: 2, cached_input: 0.5, output: 8 },
  'o3-mini': { input: 1.1, cached_input: 0.55, output: 4.4 },
  'o4-mini': { input: 1.1, cached_input: 0.275, output: 4.4 },
});

/** A dated snapshot of a model: `gpt-4.1-mini-2025-04-14` is priced as `gpt-4.1-mini`. */
const SNAPSHOT_SUFFIX_RE = /-\d{4}-\d{2}-\d{2}$/;

/** A model's price and where it came from. */
export interface PriceQuote {
  /** the key it was found under (the model, or the model without its snapshot date) */
  model: string;
  price: ModelPrice;
  source: 'config' | 'built-in';
}

/**
 * The price of `model`: `configured` (llm.pricing) first, then the built-in table; an exact name first, then the name
 * without a snapshot date (`-YYYY-MM-DD`). Null when neither knows the model.
 */
export function priceOf(model: string, configured: Readonly<Record<string, ModelPrice>> = {}): PriceQuote | null {
  const names = SNAPSHOT_SUFFIX_RE.test(model) ? [model, model.replace(SNAPSHOT_SUFFIX_RE, '')] : [model];
  for (const name of names) {
    const own = configured[name];
    if (own) return { model: name, price: own, source: 'config' };
  }
  for (const name of names) {
    const builtIn = DEFAULT_PRICING[name];
    if (builtIn) return { model: name, price: builtIn, source: 'built-in' };
  }
  return null;
}

/**
 * USD for `usage` at `price`: prompt tokens not served from the server's cache at `input`, cached ones at
 * `cached_input` (at `input` when the price has none), output at `output`.
 */
export function costUsd(usage: TokenUsage, price: ModelPrice): number {
  const cached = Math.min(usage.input, usage.cachedInput ?? 0);
  const cachedRate = price.cached_input ?? price.input;
  return ((usage.input - cached) * price.input + cached * cachedRate + usage.output * price.output) / 1e6;
}

/** `0.40 input, 0.10 cached input, 1.60 output USD per million tokens`. */
export function describePrice(price: ModelPrice): string {
  const f = (v: number) => (v >= 0.1 ? v.toFixed(2) : String(v));
  const cached = price.cached_input === null ? '' : `, ${f(price.cached_input)} cached input`;
  return `${f(price.input)} input${cached}, ${f(price.output)} output USD per million tokens`;
}
