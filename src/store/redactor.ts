/**
 * The journal's last line of defence against leaked credentials. The journal never receives the config's secrets,
 * but free text that reaches it (a model's reason, an exchange error, a provider note) could quote one; every string
 * written to the journal goes through a `Redactor` that replaces each configured secret value with `***`.
 */
import type { Config } from '../core/config';

/** Environment variables whose values are secrets (the config loader's and the Temporal client's). */
export const SECRET_ENV_VARS = [
  'OPENAI_API_KEY',
  'EXCHANGE_API_KEY',
  'EXCHANGE_API_SECRET',
  'TEMPORAL_API_KEY',
] as const;

/**
 * Values shorter than this are not treated as secrets: replacing a short placeholder ("none", "ollama") everywhere
 * would mangle ordinary text, and real API keys and secrets are far longer.
 */
export const MIN_SECRET_LENGTH = 8;

export const REDACTED = '***';

/** Replaces every occurrence of a set of secret strings with `***`. Immutable once built. */
export class Redactor {
  private readonly secrets: readonly string[];

  /** `secrets`: the values to hide; empty strings, duplicates and values shorter than 8 characters are ignored. */
  constructor(secrets: readonly string[]) {
    const kept = new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH));
    // Longest first, so a secret that contains another is replaced whole.
    this.secrets = [...kept].sort((a, b) => b.length - a.length);
  }

  /**
   * A redactor for the configured secrets: `llm.api_key`, `exchange.api_key`, `exchange.api_secret`, and the values
   * of the environment variables in {@link SECRET_ENV_VARS} (they may differ from the config when a file overrides
   * nothing but a process has them set).
   */
  static fromConfig(config: Pick<Config, 'llm' | 'exchange'>, env: NodeJS.ProcessEnv = process.env): Redactor {
    const values: string[] = [config.llm.api_key, config.exchange.api_key, config.exchange.api_secret];
    for (const name of SECRET_ENV_VARS) {
      const value = env[name];
      if (value !== undefined) values.push(value);
    }
    return new Redactor(values);
  }

  /** Number of distinct secrets this redactor hides. */
  get size(): number {
    return this.secrets.length;
  }

  /** `text` with every occurrence of every secret replaced by `***`. */
  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  }

  /**
   * A copy of a JSON-like value (plain objects, arrays, strings, numbers, booleans, null) with every string and
   * every object key redacted; numbers, booleans, null and undefined are returned as they are. The input is not
   * modified. With no secrets the value itself is returned.
   */
  redactDeep<T>(value: T): T {
    if (this.secrets.length === 0) return value;
    const visit = (v: unknown): unknown => {
      if (typeof v === 'string') return this.redact(v);
      if (Array.isArray(v)) return v.map(visit);
      if (v !== null && typeof v === 'object') {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[this.redact(k)] = visit(x);
        return out;
      }
      return v;
    };
    return visit(value) as T;
  }
}
