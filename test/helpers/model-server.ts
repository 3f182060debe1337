/**
 * An OpenAI-compatible test server that answers like a model: from what it is asked, not from a script, so that it
 * gives the same answer to the same prompt whatever the order and concurrency of the requests (a backtest asks for
 * every pair of a decision time at once). POST /v1/chat/completions on 127.0.0.1 (random port).
 *
 * - The answer to a prompt is decided by `answer` (default {@link defaultAnswer}: a hash of the user message picks a
 *   wait or an entry when flat, a hold or an exit in a position), with valid arguments for the pair named in the
 *   prompt. A repair request (more than two messages) is answered by `repair` (default: the same as `answer`).
 * - `delayMs`: every answer waits this long (the benchmark's 1 s model).
 * - `rateLimit`: a request that arrives while `maxInFlight` are being answered gets HTTP 429 with `Retry-After`.
 * - `usage`: the usage reported, by default 100 prompt tokens per request... of which `cachedTokens` are reported as
 *   `prompt_tokens_details.cached_tokens`.
 * Counts every request, the answered ones, the 429s and the most requests in flight at once.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the server was asked, read from the request body. */
export interface ModelQuestion {
  /** the pair named in the user message */
  pair: string;
  /** whether the tools offered are those of an open position */
  hasPosition: boolean;
  /** the user message (the market context) */
  prompt: string;
  /** 1 for a first question, 2 for a repair round */
  round: number;
  /** a number in [0, 1) from a hash of the user message: the same for the same prompt */
  draw: number;
  body: Record<string, unknown>;
}

/** An answer: a tool call (arguments as an object, or a string sent verbatim) or plain text. */
export type ModelReply = { tool: string; arguments: unknown } | { text: string };

export interface ModelServerOptions {
  answer?: (q: ModelQuestion) => ModelReply;
  repair?: (q: ModelQuestion) => ModelReply;
  /** answer delay, ms: a number, or by question (so that answers arrive in another order than asked) */
  delayMs?: number | ((q: ModelQuestion) => number);
  rateLimit?: { maxInFlight: number; retryAfterSeconds: number };
  /** whether `rateLimit` applies now (default: always) */
  rateLimited?: () => boolean;
  usage?: { promptTokens: number; completionTokens: number; cachedTokens?: number };
}

export interface ModelServer {
  /** base URL for the client, e.g. http://127.0.0.1:43121/v1 */
  url: string;
  /** chat-completion requests received, answered with a completion, answered 429; most in flight at once */
  stats(): {
    requests: number;
    answered: number;
    rateLimited: number;
    maxInFlight: number;
    /** first-round questions answered, and how many distinct prompts they were (equal: none asked twice) */
    questions: number;
    distinctQuestions: number;
  };
  /** zero the counters */
  resetStats(): void;
  close(): Promise<void>;
}

const PAIR_RE = /\b([A-Z0-9]{2,15}\/USDT:USDT)\b/;

/** Valid arguments of `tool` for `pair`, with a reason. */
export function argsFor(tool: string, pair: string, reason: string): Record<string, unknown> {
  const base = { pair, confidence_score: 75, rsi_value: 50, reason };
  switch (tool) {
    case 'signal_entry_long':
    case 'signal_entry_short':
      return {
        ...base,
        leverage: 3,
        stake_amount: null,
        key_support: 1,
        key_resistance: 1_000_000,
        trend_strength: 'medium',
      };
    case 'signal_exit':
      return { ...base, trade_score: 60 };
    default:
      return base;
  }
}

/** Flat: an entry for 1 prompt in 8 (long or short), else a wait; in a position: an exit for 1 in 6, else a hold. */
export function defaultAnswer(q: ModelQuestion): ModelReply {
  if (q.hasPosition) {
    const tool = q.draw < 1 / 6 ? 'signal_exit' : 'signal_hold';
    return { tool, arguments: argsFor(tool, q.pair, `test model: ${tool} (${q.draw.toFixed(3)})`) };
  }
  const tool = q.draw < 1 / 16 ? 'signal_entry_long' : q.draw < 1 / 8 ? 'signal_entry_short' : 'signal_wait';
  return { tool, arguments: argsFor(tool, q.pair, `test model: ${tool} (${q.draw.toFixed(3)})`) };
}

function read(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function question(body: Record<string, unknown>): ModelQuestion {
  const messages = Array.isArray(body.messages) ? (body.messages as { role?: string; content?: unknown }[]) : [];
  const user = messages.find((m) => m.role === 'user');
  const prompt = typeof user?.content === 'string' ? user.content : '';
  const tools = Array.isArray(body.tools) ? (body.tools as { function?: { name?: string } }[]) : [];
  const names = tools.map((t) => t.function?.name ?? '');
  const digest = createHash('sha256').update(prompt).digest();
  return {
    pair: PAIR_RE.exec(prompt)?.[1] ?? 'BTC/USDT:USDT',
    hasPosition: names.includes('signal_hold'),
    prompt,
    round: messages.length > 2 ? 2 : 1,
    draw: digest.readUInt32BE(0) / 2 ** 32,
    body,
  };
}

export async function startModelServer(options: ModelServerOptions = {}): Promise<ModelServer> {
  const answer = options.answer ?? defaultAnswer;
  const repair = options.repair ?? answer;
  const usage = options.usage ?? { promptTokens: 100, completionTokens: 10 };
  let requests = 0;
  let answered = 0;
  let rateLimited = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let questions = 0;
  const asked = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const text = await read(req);
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      return send(res, 404, { error: { message: `no route ${req.method} ${req.url}` } });
    }
    requests++;
    if (options.rateLimit && (options.rateLimited?.() ?? true) && inFlight >= options.rateLimit.maxInFlight) {
      rateLimited++;
      return send(
        res,
        429,
        {
          error: {
            message: 'Rate limit reached: too many requests in flight',
            type: 'requests',
            code: 'rate_limit_exceeded',
          },
        },
        { 'retry-after': String(options.rateLimit.retryAfterSeconds) },
      );
    }
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const body = JSON.parse(text) as Record<string, unknown>;
      const q = question(body);
      const reply = q.round === 2 ? repair(q) : answer(q);
      const delay = typeof options.delayMs === 'function' ? options.delayMs(q) : (options.delayMs ?? 0);
      if (delay > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            timers.delete(t);
            resolve();
          }, delay);
          timers.add(t);
        });
      }
      const message: Record<string, unknown> =
        'text' in reply
          ? { role: 'assistant', content: reply.text }
          : {
              role: 'assistant',
              content: null,
              tool_calls: [
                {
                  id: `call_${requests}`,
                  type: 'function',
                  function: {
                    name: reply.tool,
                    arguments: typeof reply.arguments === 'string' ? reply.arguments : JSON.stringify(reply.arguments),
                  },
                },
              ],
            };
      answered++;
      if (q.round === 1) {
        questions++;
        asked.add(createHash('sha256').update(JSON.stringify(body.messages)).digest('hex'));
      }
      send(res, 200, {
        id: `chatcmpl-${requests}`,
        object: 'chat.completion',
        created: 1_700_000_000,
        model: typeof body.model === 'string' ? body.model : 'test-model',
        choices: [{ index: 0, message, finish_reason: 'text' in reply ? 'stop' : 'tool_calls' }],
        usage: {
          prompt_tokens: usage.promptTokens,
          completion_tokens: usage.completionTokens,
          total_tokens: usage.promptTokens + usage.completionTokens,
          ...(usage.cachedTokens !== undefined ? { prompt_tokens_details: { cached_tokens: usage.cachedTokens } } : {}),
        },
      });
    } finally {
      inFlight--;
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { error: { message: `model server failed: ${String(err)}` } });
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    stats: () => ({ requests, answered, rateLimited, maxInFlight, questions, distinctQuestions: asked.size }),
    resetStats: () => {
      requests = answered = rateLimited = maxInFlight = questions = 0;
      asked.clear();
    },
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
