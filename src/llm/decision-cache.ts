/**
 * A cache of model decisions keyed by the request, so that rerunning a backtest or replay with the same prompts costs
 * no tokens and gives the same decisions.
 *
 * The key is the sha256 of the canonical JSON (object keys sorted, no whitespace) of the request: the provider's
 * request identity (endpoint without credentials, model, temperature, max_tokens, tool_choice, parallel_tool_calls),
 * the messages (role and content) and the tools, plus a format version. Answers from one server are therefore never
 * served for another, nor for other request parameters.
 *
 * Stored: the provider's result (decision, model, original usage and latency, problems, thinking, the raw answers:
 * tool calls and texts, notes). An invalid answer is stored too, as what the model answered and the fallback it
 * became, so a rerun replays the same fallback instead of asking again and deciding differently.
 *
 * Storage: a SQLite table (better-sqlite3, WAL, safe for several worker processes on one file) or an in-memory Map.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { ChatMessage, DecisionContext } from '../core/context-types';
import type { OpenAIToolDefinition } from '../core/tools';
import type { CacheableProvider, DecideOptions, DecisionProvider, ProviderDecision, RequestIdentity } from './provider';

/**
 * Bumped when the key or the stored format changes, so old entries are no longer hit (2: the request identity in the
 * key; fallbacks stored).
 */
const CACHE_FORMAT_VERSION = 2;

export interface CacheKeyParts {
  request: RequestIdentity;
  messages: readonly ChatMessage[];
  tools: readonly OpenAIToolDefinition[];
}

/**
 * JSON with object keys sorted at every level and no whitespace, so equal values give equal text whatever the key
 * order. `undefined` properties are omitted (as JSON.stringify does); non-finite numbers become null.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The cache key of a request: 64 hex characters (sha256 of the canonical JSON of the parts and the format version). */
export function decisionCacheKey(parts: CacheKeyParts): string {
  const payload = canonicalJson({
    version: CACHE_FORMAT_VERSION,
    request: parts.request,
    // only role and content are part of a message
    messages: parts.messages.map((m) => ({ role: m.role, content: m.content })),
    tools: parts.tools,
  });
  return createHash('sha256').update(payload).digest('hex');
}

interface CacheBackend {
  get(key: string): string | null;
  put(key: string, model: string, storedAt: number, json: string): void;
  size(): number;
  close(): void;
}

class MemoryBackend implements CacheBackend {
  private readonly rows = new Map<string, string>();
  get(key: string): string | null {
    return this.rows.get(key) ?? null;
  }
  put(key: string, _model: string, _storedAt: number, json: string): void {
    this.rows.set(key, json);
  }
  size(): number {
    return this.rows.size;
  }
  close(): void {
    this.rows.clear();
  }
}

class SqliteBackend implements CacheBackend {
  private readonly db: Database.Database;
  private getStmt!: Database.Statement<[string], { result: string }>;
  private putStmt!: Database.Statement<[string, string, number, string]>;
  private sizeStmt!: Database.Statement<[], { n: number }>;

  constructor(private readonly file: string) {
    try {
      if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
      this.db = new Database(file);
    } catch (err) {
      throw this.failure('cannot open', err);
    }
    try {
      this.prepare();
    } catch (err) {
      this.db.close();
      throw this.failure('cannot open', err);
    }
  }

  /** An Error naming the cache file, with the SQLite or file-system error as `cause` (its code tells what happened). */
  private failure(what: string, err: unknown): Error {
    const message = err instanceof Error ? err.message : String(err);
    return new Error(`decision cache ${this.file}: ${what}: ${message}`, { cause: err });
  }

  private prepare(): void {
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS decision_cache (
         key TEXT PRIMARY KEY,
         model TEXT NOT NULL,
         stored_at INTEGER NOT NULL,
         result TEXT NOT NULL
       ) WITHOUT ROWID`,
    );
    this.getStmt = this.db.prepare('SELECT result FROM decision_cache WHERE key = ?');
    this.putStmt = this.db.prepare(
      'INSERT OR REPLACE INTO decision_cache (key, model, stored_at, result) VALUES (?, ?, ?, ?)',
    );
    this.sizeStmt = this.db.prepare('SELECT COUNT(*) AS n FROM decision_cache');
  }
  get(key: string): string | null {
    return this.getStmt.get(key)?.result ?? null;
  }
  put(key: string, model: string, storedAt: number, json: string): void {
    try {
      this.putStmt.run(key, model, storedAt, json);
    } catch (err) {
      throw this.failure('cannot store a decision', err);
    }
  }
  size(): number {
    return this.sizeStmt.get()?.n ?? 0;
  }
  close(): void {
    this.db.close();
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The stored fields of a result: what the provider produced, without what a cache lookup adds. */
function storable(result: ProviderDecision): ProviderDecision {
  const { cacheKey: _cacheKey, originalUsage: _originalUsage, cached: _cached, ...rest } = result;
  return rest;
}

/** Decisions by request key. Not safe to use after `close()`. */
export class DecisionCache {
  private constructor(
    private readonly backend: CacheBackend,
    /** the SQLite file, or "memory" */
    readonly location: string,
  ) {}

  /** A cache in a SQLite file (created with its folder when missing), e.g. `user_data/decision-cache.sqlite`. */
  static open(file: string): DecisionCache {
    return new DecisionCache(new SqliteBackend(file), file);
  }

  /** A cache in a Map: nothing is written to disk (tests, one-off runs). */
  static inMemory(): DecisionCache {
    return new DecisionCache(new MemoryBackend(), 'memory');
  }

  /** The stored result for `key`, as stored (source `openai` or `fallback`); null when absent or unreadable. */
  get(key: string): ProviderDecision | null {
    const json = this.backend.get(key);
    if (json === null) return null;
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      return null;
    }
    if (!isRecord(value) || !isRecord(value.decision) || typeof value.decision.tool !== 'string') return null;
    return value as unknown as ProviderDecision;
  }

  /** True when a result is stored under `key`. */
  has(key: string): boolean {
    return this.get(key) !== null;
  }

  /** Store a result under `key` (replacing an older one). `storedAt` is Unix ms. */
  put(key: string, result: ProviderDecision, storedAt: number = Date.now()): void {
    this.backend.put(key, result.model, storedAt, JSON.stringify(storable(result)));
  }

  /** Number of stored decisions. */
  size(): number {
    return this.backend.size();
  }

  close(): void {
    this.backend.close();
  }
}

/**
 * How a {@link CachedProvider} uses its cache: `read-write` (a hit answers, a miss asks and stores) or `refresh`
 * (every decision is asked again and the new answer replaces the stored one: `backtest --no-cache`).
 */
export type CacheMode = 'read-write' | 'refresh';

/**
 * A provider in front of a cacheable provider. A hit returns the stored result with `cached: true`, usage 0/0 (the
 * stored usage is in `originalUsage`), the rounds of the original request, and makes no request; a valid decision
 * comes back with `source: 'cache'`, a stored fallback as the same fallback (`source: 'fallback'`). A miss asks the
 * inner provider and stores its result, fallbacks included. Errors of the inner provider (LlmError) pass through; a
 * failing cache read counts as a miss and a failing write is recorded in `notes`, neither fails the decision.
 *
 * `prefetch` asks for a decision before it is needed (a backtest guessing the next decision time's prompts): the
 * answer is stored as any other, and a decision asked for while its prefetch is in flight waits for it instead of
 * asking again. A decision served by a prefetch of this provider comes back as the answer it was (not as a cache
 * hit), in either mode. A prefetch that fails is forgotten: the decision, if it comes, asks again.
 */
export class CachedProvider implements DecisionProvider {
  readonly name: string;
  /** prefetches answered, and how many of them a decision used so far */
  readonly prefetches = { answered: 0, used: 0 };
  private readonly inflight = new Map<string, Promise<ProviderDecision>>();
  /** keys by context (a context is asked about, checked and prefetched: its canonical JSON is hashed once) */
  private readonly keys = new WeakMap<object, string>();
  /** prefetched answers no decision has used yet */
  private readonly ahead = new Map<string, ProviderDecision>();

  constructor(
    private readonly inner: CacheableProvider,
    private readonly cache: DecisionCache,
    private readonly mode: CacheMode = 'read-write',
  ) {
    this.name = inner.name;
  }

  /** The cache key of `ctx` for the inner provider's request identity (computed once per context object). */
  keyOf(ctx: Pick<DecisionContext, 'messages' | 'tools'>): string {
    let key = this.keys.get(ctx);
    if (key === undefined) {
      key = decisionCacheKey({ request: this.inner.requestIdentity(), messages: ctx.messages, tools: ctx.tools });
      this.keys.set(ctx, key);
    }
    return key;
  }

  /** True when `ctx` would be answered from the cache (no request); always false in `refresh` mode. */
  isCached(ctx: Pick<DecisionContext, 'messages' | 'tools'>): boolean {
    if (this.mode === 'refresh') return false;
    try {
      return this.cache.has(this.keyOf(ctx));
    } catch {
      return false;
    }
  }

  /** Asks for `ctx` ahead of its decision unless it is cached, answered ahead or being asked already. */
  prefetch(ctx: DecisionContext): void {
    const key = this.keyOf(ctx);
    if (this.inflight.has(key) || this.ahead.has(key) || this.isCached(ctx)) return;
    const asked = Promise.resolve(this.inner.decide(ctx, { prefetch: true })).then((result) => {
      this.store(key, result);
      this.ahead.set(key, result);
      this.prefetches.answered++;
      return result;
    });
    this.inflight.set(key, asked);
    asked.then(
      () => this.inflight.delete(key),
      () => this.inflight.delete(key),
    );
  }

  async decide(ctx: DecisionContext, options: DecideOptions = {}): Promise<ProviderDecision> {
    const started = performance.now();
    const key = this.keyOf(ctx);
    const asked = this.inflight.get(key);
    if (asked) {
      try {
        await asked;
      } catch {
        // the prefetch failed: ask below
      }
    }
    const early = this.ahead.get(key);
    if (early) {
      this.ahead.delete(key);
      this.prefetches.used++;
      return { ...early, cacheKey: key };
    }
    const notes: string[] = [];
    let hit: ProviderDecision | null = null;
    if (this.mode === 'read-write') {
      try {
        hit = this.cache.get(key);
      } catch (err) {
        notes.push(
          `decision cache read failed (${this.cache.location}): ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
    if (hit) {
      return {
        ...hit,
        source: hit.source === 'fallback' ? 'fallback' : 'cache',
        usage: { input: 0, output: 0 },
        originalUsage: hit.usage,
        latencyMs: Math.round(performance.now() - started),
        cached: true,
        cacheKey: key,
      };
    }
    const result = await this.inner.decide(ctx, options);
    const failed = this.store(key, result);
    if (failed) notes.push(failed);
    return { ...result, notes: [...(result.notes ?? []), ...notes], cacheKey: key };
  }

  /** Stores `result`; returns why the write failed, or null. */
  private store(key: string, result: ProviderDecision): string | null {
    try {
      this.cache.put(key, result);
      return null;
    } catch (err) {
      return `decision cache write failed (${this.cache.location}): ${err instanceof Error ? err.message : String(err)}`;
    }
  }
}
