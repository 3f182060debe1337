/**
 * A scripted OpenAI-compatible server for tests: POST /v1/chat/completions on 127.0.0.1 (random port) answers from a
 * script, one step per request in order, and records every request (method, path, headers, parsed body).
 *
 * Steps cover what real servers do: native tool calls (arguments as a JSON string, an object, or double-encoded),
 * plain text (JSON in the text, <tool_call> tags, <think> blocks), reasoning fields, several calls in one answer,
 * HTTP errors with headers (429 + retry-after, 500, 401...), a non-JSON body, and slow replies (a delay before the
 * headers, or headers first and a delay before the body). When the script is exhausted the server answers 400 with
 * "script exhausted", so an unexpected extra request fails the test visibly.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

export interface ScriptedToolCall {
  name: string;
  arguments: unknown;
  /**
   * How `arguments` goes on the wire: `string` (a JSON string, the OpenAI format; the default), `object` (the JSON
   * object itself, as some servers send it), `double` (a JSON string of the JSON string), `verbatim` (`arguments` must
   * be a string and is sent as is, e.g. invalid JSON).
   */
  encoding?: 'string' | 'object' | 'double' | 'verbatim';
  /** call id; default `call_<request number>_<index>`; null omits it */
  id?: string | null;
}

interface Timing {
  /** wait this long before sending anything, ms */
  delayMs?: number;
  /** send the status and headers at once, then wait this long before the body, ms */
  bodyDelayMs?: number;
}

interface MessageFields extends Timing {
  /** the assistant message's text (`null` is sent as null) */
  content?: string | null;
  reasoning_content?: string;
  reasoning?: string;
  finishReason?: string;
  /** default DEFAULT_USAGE; null omits the usage object */
  usage?: ScriptedUsage | null;
  /** the model name reported; default: the requested model */
  model?: string;
}

export type ScriptStep =
  | ({ reply: 'tool_calls'; calls: ScriptedToolCall[] } & MessageFields)
  | ({ reply: 'text'; content: string } & Omit<MessageFields, 'content'>)
  | ({
      reply: 'error';
      status: number;
      /** the OpenAI-style error message; or `body` for a full body (a function receives the request) */
      message?: string;
      body?: unknown;
      headers?: Record<string, string>;
    } & Timing)
  | ({ reply: 'raw'; status: number; body: string; contentType?: string; headers?: Record<string, string> } & Timing);

export interface RecordedRequest {
  method: string;
  path: string;
  /** lower-case header names */
  headers: Record<string, string>;
  /** the parsed JSON body, or the raw text when it is not JSON */
  body: unknown;
  /** the raw body text */
  text: string;
}

export interface ScriptedServer {
  /** base URL for the client, e.g. http://127.0.0.1:43121/v1 */
  url: string;
  /** every request received, in order */
  requests: RecordedRequest[];
  /** steps not yet consumed */
  remaining(): number;
  /** add steps to the end of the script */
  push(...steps: ScriptStep[]): void;
  /** stop: cancel pending delays, drop connections, close the listener */
  close(): Promise<void>;
}

export const DEFAULT_USAGE: ScriptedUsage = { prompt_tokens: 100, completion_tokens: 10 };

function encodeArguments(call: ScriptedToolCall): unknown {
  switch (call.encoding ?? 'string') {
    case 'object':
      return call.arguments;
    case 'double':
      return JSON.stringify(JSON.stringify(call.arguments));
    case 'verbatim':
      if (typeof call.arguments !== 'string') throw new Error('scripted server: verbatim arguments must be a string');
      return call.arguments;
    default:
      return JSON.stringify(call.arguments);
  }
}

function completionBody(step: ScriptStep & { reply: 'tool_calls' | 'text' }, requestNo: number, requestModel: unknown) {
  const message: Record<string, unknown> = { role: 'assistant', content: step.content ?? null };
  if (step.reply === 'tool_calls') {
    message.tool_calls = step.calls.map((c, i) => {
      const id = c.id === undefined ? `call_${requestNo}_${i}` : c.id;
      return {
        ...(id === null ? {} : { id }),
        type: 'function',
        function: { name: c.name, arguments: encodeArguments(c) },
      };
    });
  }
  if (step.reasoning_content !== undefined) message.reasoning_content = step.reasoning_content;
  if (step.reasoning !== undefined) message.reasoning = step.reasoning;
  const usage = step.usage === undefined ? DEFAULT_USAGE : step.usage;
  return {
    id: `chatcmpl-${requestNo}`,
    object: 'chat.completion',
    created: 1_700_000_000,
    model: step.model ?? (typeof requestModel === 'string' ? requestModel : 'scripted'),
    choices: [
      {
        index: 0,
        message,
        finish_reason: step.finishReason ?? (step.reply === 'tool_calls' ? 'tool_calls' : 'stop'),
      },
    ],
    ...(usage === null ? {} : { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Start a scripted server. `script` is consumed one step per chat-completions request. */
export async function startScriptedServer(script: ScriptStep[] = []): Promise<ScriptedServer> {
  const steps = [...script];
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const wait = (ms: number, res: ServerResponse) =>
    new Promise<boolean>((resolve) => {
      if (ms <= 0) return resolve(!res.destroyed);
      const t = setTimeout(() => {
        timers.delete(t);
        resolve(!res.destroyed);
      }, ms);
      timers.add(t);
      // the client gave up: stop waiting
      res.once('close', () => {
        clearTimeout(t);
        timers.delete(t);
        resolve(false);
      });
    });

  const send = async (
    res: ServerResponse,
    status: number,
    headers: Record<string, string>,
    body: string,
    timing: Timing,
  ) => {
    if (!(await wait(timing.delayMs ?? 0, res))) return;
    res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
    if (timing.bodyDelayMs) {
      res.flushHeaders();
      if (!(await wait(timing.bodyDelayMs, res))) return;
    }
    res.end(body);
  };

  const json = { 'content-type': 'application/json' };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const text = await readBody(req);
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // keep the raw text
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : (v ?? '');
    const recorded: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers, body, text };
    requests.push(recorded);
    const requestNo = requests.length;

    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      const error = { error: { message: `scripted server: no route ${req.method} ${req.url}`, type: 'not_found' } };
      return send(res, 404, json, JSON.stringify(error), {});
    }
    const step = steps.shift();
    if (step === undefined) {
      const error = {
        error: { message: `scripted server: script exhausted at request ${requestNo}`, type: 'invalid_request_error' },
      };
      return send(res, 400, json, JSON.stringify(error), {});
    }
    const requestModel = typeof body === 'object' && body !== null ? (body as { model?: unknown }).model : undefined;
    switch (step.reply) {
      case 'tool_calls':
      case 'text':
        return send(res, 200, json, JSON.stringify(completionBody(step, requestNo, requestModel)), step);
      case 'error': {
        const payload =
          typeof step.body === 'function'
            ? (step.body as (r: RecordedRequest) => unknown)(recorded)
            : (step.body ?? {
                error: { message: step.message ?? `scripted error ${step.status}`, type: 'scripted_error', code: null },
              });
        return send(res, step.status, { ...json, ...step.headers }, JSON.stringify(payload), step);
      }
      case 'raw':
        return send(
          res,
          step.status,
          { 'content-type': step.contentType ?? 'text/plain', ...step.headers },
          step.body,
          step,
        );
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, json);
      res.end(JSON.stringify({ error: { message: `scripted server failed: ${String(err)}` } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    remaining: () => steps.length,
    push: (...more) => {
      steps.push(...more);
    },
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
