/**
 * The project's one redactor: everything it writes (config printing, logs, journals, JSONL, result.json, the HTML
 * report, workflow memos) and the messages of its errors pass through a {@link Redactor}, which hides
 * - every configured secret value (API keys, the exchange secret, the environment's secret variables), replaced by
 *   `***` wherever it occurs (values shorter than {@link MIN_SECRET_LENGTH} are ignored: placeholders such as
 *   "ollama" are not credentials, and replacing them would mangle ordinary text);
 * - bearer tokens (`Bearer <token>`) and strings shaped like OpenAI keys (`sk-...`);
 * - credentials inside URLs: the user info (`https://user:password@host` → `https://***@host`) and the values of
 *   query parameters that carry keys (`?api-key=...`, `key`, `token`, `secret`, `password`, `access_token`,
 *   `signature`...: `?api-key=***`).
 *
 * Pure (no I/O): the secret values are passed in; {@link secretsOf} collects them from a config and an environment.
 */

/** Environment variables whose values are secrets (the config loader's and the Temporal client's). */
export const SECRET_ENV_VARS = [
  'OPENAI_API_KEY',
  'EXCHANGE_API_KEY',
  'EXCHANGE_API_SECRET',
  'TEMPORAL_API_KEY',
] as const;

/** Values shorter than this are not treated as secrets (see the module comment). */
export const MIN_SECRET_LENGTH = 8;

export const REDACTED = '***';

/**
 * Query parameter names whose values are credentials, compared case-insensitively after removing `-` and `_`
 * (so `api-key`, `api_key` and `apiKey` are one name).
 */
const SECRET_PARAMS = new Set([
  'apikey',
  'key',
  'token',
  'secret',
  'password',
  'passwd',
  'pwd',
  'accesstoken',
  'authtoken',
  'auth',
  'clientsecret',
  'apisecret',
  'signature',
  'sig',
  'credential',
  'credentials',
]);

/** `scheme://user[:password]@` (the user info of a URL). */
const URL_USERINFO_RE = /([a-z][a-z0-9+.-]*:\/\/)[^/\s?#@"'<>]+@/gi;
/** `?name=value` or `&name=value` (a query parameter, also inside longer text). */
const QUERY_PARAM_RE = /([?&;])([A-Za-z0-9_.-]+)=([^&#\s"'<>]*)/g;
const BEARER_RE = /\b(Bearer)\s+[^\s"',;]+/gi;
const OPENAI_KEY_RE = /\bsk-[A-Za-z0-9_-]{8,}/g;

function isSecretParam(name: string): boolean {
  return SECRET_PARAMS.has(name.toLowerCase().replace(/[-_]/g, ''));
}

/** Hides credentials inside URLs, bearer tokens and OpenAI-shaped keys in `text` (no configured secrets needed). */
export function redactCredentials(text: string): string {
  if (text.length < 8) return text;
  let out = text;
  if (out.includes('://')) out = out.replace(URL_USERINFO_RE, `$1${REDACTED}@`);
  if (out.includes('=')) {
    out = out.replace(QUERY_PARAM_RE, (whole, sep: string, name: string, value: string) =>
      value !== '' && value !== REDACTED && isSecretParam(name) ? `${sep}${name}=${REDACTED}` : whole,
    );
  }
  if (/bearer/i.test(out)) out = out.replace(BEARER_RE, `$1 ${REDACTED}`);
  if (out.includes('sk-')) out = out.replace(OPENAI_KEY_RE, `sk-${REDACTED}`);
  return out;
}

/** Hides secrets (see the module comment). Immutable once built. */
export class Redactor {
  private readonly secrets: readonly string[];

  /** `secrets`: the values to hide; empty strings, duplicates and values shorter than 8 characters are ignored. */
  constructor(secrets: readonly string[] = []) {
    const kept = new Set(secrets.filter((s) => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH));
    // Longest first, so a secret that contains another is replaced whole.
    this.secrets = [...kept].sort((a, b) => b.length - a.length);
  }

  /** A redactor of the secrets of a config and of the environment (see {@link secretsOf}). */
  static fromConfig(config: SecretSources, env: NodeJS.ProcessEnv = process.env): Redactor {
    return new Redactor(secretsOf(config, env));
  }

  /** Number of distinct secret values this redactor hides (the patterns are always applied). */
  get size(): number {
    return this.secrets.length;
  }

  /** `text` with every secret value, URL credential, bearer token and OpenAI-shaped key replaced by `***`. */
  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return redactCredentials(out);
  }

  /**
   * A copy of a JSON-like value (plain objects, arrays, strings, numbers, booleans, null) with every string and
   * every object key redacted; numbers, booleans, null and undefined are returned as they are. The input is not
   * modified. Objects with a `toJSON` (e.g. a backtest's decision log) are redacted in their JSON form.
   */
  redactDeep<T>(value: T): T {
    const visit = (v: unknown): unknown => {
      if (typeof v === 'string') return this.redact(v);
      if (Array.isArray(v)) return v.map(visit);
      if (v !== null && typeof v === 'object') {
        const json = (v as { toJSON?: unknown }).toJSON;
        if (typeof json === 'function') return visit((json as () => unknown).call(v));
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[this.redact(k)] = visit(x);
        return out;
      }
      return v;
    };
    return visit(value) as T;
  }
}

/** The parts of a config that hold secrets. */
export interface SecretSources {
  llm: { api_key: string };
  exchange: { api_key: string; api_secret: string };
}

/**
 * Every secret value a process knows: `llm.api_key`, `exchange.api_key`, `exchange.api_secret`, and the values of the
 * environment variables in {@link SECRET_ENV_VARS} (they may differ from the config's). Empty values are left out.
 */
export function secretsOf(config: SecretSources, env: NodeJS.ProcessEnv = process.env): string[] {
  const values = [config.llm.api_key, config.exchange.api_key, config.exchange.api_secret];
  for (const name of SECRET_ENV_VARS) {
    const value = env[name];
    if (value !== undefined && value !== '') values.push(value);
  }
  return values.filter((v) => v !== '');
}
