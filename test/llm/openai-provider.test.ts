import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { LlmError } from '../../src/llm/errors';
import { OpenAIProvider } from '../../src/llm/openai-provider';
import type { ProviderDecision } from '../../src/llm/provider';
import { startScriptedServer, type ScriptStep, type ScriptedServer } from '../helpers/scripted-openai-server';
import {
  FAKE_API_KEY,
  HOLD_ARGS,
  LONG_ARGS,
  PAIR,
  RSI,
  WAIT_ARGS,
  decisionContext,
  llmConfig,
} from '../helpers/llm-fixtures';
import type { LlmConfig } from '../../src/core/config';

type Msg = {
  role: string;
  content?: unknown;
  tool_calls?: { id: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
};
type Body = Record<string, unknown> & { messages: Msg[] };

let server: ScriptedServer;
before(async () => {
  server = await startScriptedServer();
});
after(async () => {
  await server.close();
});

/** Run one decision against a fresh script; returns the result, the requests it made and the elapsed ms. */
async function run(
  steps: ScriptStep[],
  opts: { hasPosition?: boolean; rsi?: number | null; llm?: Partial<LlmConfig>; provider?: OpenAIProvider } = {},
): Promise<{ result: ProviderDecision; bodies: Body[]; elapsed: number }> {
  const start = server.requests.length;
  server.push(...steps);
  const provider = opts.provider ?? new OpenAIProvider(llmConfig(server.url, opts.llm));
  const t0 = performance.now();
  const result = await provider.decide(decisionContext({ hasPosition: opts.hasPosition, rsi: opts.rsi }));
  const elapsed = performance.now() - t0;
  assert.equal(server.remaining(), 0, 'every scripted step was used');
  return { result, bodies: server.requests.slice(start).map((r) => r.body as Body), elapsed };
}

/** Expect the decision to reject with an LlmError; returns it and the elapsed ms. */
async function runFailing(
  steps: ScriptStep[],
  llm: Partial<LlmConfig> = {},
  url = server.url,
): Promise<{ error: LlmError; requests: number; elapsed: number }> {
  const start = server.requests.length;
  server.push(...steps);
  const provider = new OpenAIProvider(llmConfig(url, llm));
  const t0 = performance.now();
  let caught: unknown;
  try {
    await provider.decide(decisionContext());
  } catch (err) {
    caught = err;
  }
  const elapsed = performance.now() - t0;
  assert.ok(caught instanceof LlmError, `expected an LlmError, got ${inspect(caught)}`);
  assertNoKey(inspect(caught), 'error');
  assertNoKey(String(caught), 'error');
  return { error: caught, requests: server.requests.length - start, elapsed };
}

function assertNoKey(text: string, what: string) {
  assert.ok(!text.includes(FAKE_API_KEY), `${what} contains the API key: ${text}`);
  assert.ok(!text.includes('SECRET-1234567890'), `${what} contains part of the API key`);
}

const waitCall = (args: unknown = WAIT_ARGS): ScriptStep => ({
  reply: 'tool_calls',
  calls: [{ name: 'signal_wait', arguments: args }],
});

describe('OpenAIProvider: valid answers', () => {
  test('a valid native tool call becomes the decision; the request carries strict tools and required tool choice', async () => {
    const { result, bodies } = await run([
      {
        reply: 'tool_calls',
        calls: [{ name: 'signal_wait', arguments: WAIT_ARGS }],
        usage: { prompt_tokens: 812, completion_tokens: 57 },
      },
    ]);
    assert.deepEqual(result.decision, { tool: 'signal_wait', args: WAIT_ARGS });
    assert.equal(result.source, 'openai');
    assert.equal(result.model, 'test-model');
    assert.deepEqual(result.usage, { input: 812, output: 57 });
    assert.deepEqual(result.problems, []);
    assert.equal(result.rounds, 1);
    assert.ok(result.latencyMs >= 0);
    assertNoKey(JSON.stringify(result), 'result');

    assert.equal(bodies.length, 1);
    const body = bodies[0]!;
    const ctx = decisionContext();
    assert.deepEqual(body.messages, ctx.messages);
    assert.deepEqual(body.tools, JSON.parse(JSON.stringify(ctx.tools)));
    assert.deepEqual(
      (body.tools as { function: { name: string; strict: boolean } }[]).map((t) => [
        t.function.name,
        t.function.strict,
      ]),
      [
        ['signal_entry_long', true],
        ['signal_entry_short', true],
        ['signal_wait', true],
      ],
    );
    assert.equal(body.tool_choice, 'required');
    assert.equal(body.temperature, 0.2);
    assert.equal(body.max_tokens, 800);
    assert.equal(body.parallel_tool_calls, false);
    assert.equal(body.model, 'test-model');
    // the key goes to the server as the bearer token, and only there
    assert.equal(server.requests.at(-1)!.headers.authorization, `Bearer ${FAKE_API_KEY}`);
  });

  for (const encoding of ['string', 'object', 'double'] as const) {
    test(`arguments sent as ${encoding} JSON are accepted`, async () => {
      const { result } = await run([
        { reply: 'tool_calls', calls: [{ name: 'signal_entry_long', arguments: LONG_ARGS, encoding }] },
      ]);
      assert.deepEqual(result.decision, { tool: 'signal_entry_long', args: LONG_ARGS });
      assert.deepEqual(result.problems, []);
      assert.equal(result.rounds, 1);
      if (encoding === 'double')
        assert.ok(
          result.notes?.some((n) => n.includes('double-encoded')),
          String(result.notes),
        );
    });
  }

  test('several tool calls: the first counts, the rest are noted', async () => {
    const { result } = await run(
      [
        {
          reply: 'tool_calls',
          calls: [
            { name: 'signal_hold', arguments: HOLD_ARGS },
            { name: 'signal_exit', arguments: { ...HOLD_ARGS, trade_score: 60 } },
          ],
        },
      ],
      { hasPosition: true },
    );
    assert.deepEqual(result.decision, { tool: 'signal_hold', args: HOLD_ARGS });
    assert.ok(
      result.notes?.some((n) => n.includes('extra tool call')),
      String(result.notes),
    );
    assert.equal(result.rawToolCalls?.length, 2);
  });
});

describe('OpenAIProvider: calls written in the text, thinking', () => {
  const textCases: [string, string][] = [
    ['bare JSON', `I will wait.\n${JSON.stringify({ name: 'signal_wait', arguments: WAIT_ARGS })}`],
    [
      'a ```json fence',
      `Decision:\n\`\`\`json\n${JSON.stringify({ name: 'signal_wait', arguments: WAIT_ARGS }, null, 2)}\n\`\`\``,
    ],
    ['<tool_call> tags', `<tool_call>\n${JSON.stringify({ name: 'signal_wait', arguments: WAIT_ARGS })}\n</tool_call>`],
    ['"parameters" instead of "arguments"', JSON.stringify({ name: 'signal_wait', parameters: WAIT_ARGS })],
  ];
  for (const [label, content] of textCases) {
    test(`a call as ${label} in the message text is read`, async () => {
      const { result, bodies } = await run([{ reply: 'text', content }]);
      assert.equal(bodies.length, 1, 'no repair round');
      assert.deepEqual(result.decision, { tool: 'signal_wait', args: WAIT_ARGS });
      assert.equal(result.source, 'openai');
      assert.equal(result.rawToolCalls?.[0]?.origin, 'text');
      assert.equal(result.thinking, null);
    });
  }

  test('<think> text in the content is kept as thinking and the call after it is used', async () => {
    const thought = 'RSI 47.5 is neutral and ADX 22 is weak; no edge.';
    const { result } = await run([
      {
        reply: 'text',
        content: `<think>\n${thought}\n</think>\n\n<tool_call>${JSON.stringify({ name: 'signal_wait', arguments: WAIT_ARGS })}</tool_call>`,
      },
    ]);
    assert.deepEqual(result.decision, { tool: 'signal_wait', args: WAIT_ARGS });
    assert.equal(result.thinking, thought);
  });

  test('a thinking-template answer without the opening <think> tag', async () => {
    const { result } = await run([
      {
        reply: 'text',
        content: `Let me check the trend first.\n</think>\n${JSON.stringify({ name: 'signal_wait', arguments: WAIT_ARGS })}`,
      },
    ]);
    assert.deepEqual(result.decision, { tool: 'signal_wait', args: WAIT_ARGS });
    assert.equal(result.thinking, 'Let me check the trend first.');
  });

  test('reasoning_content / reasoning fields are kept as thinking next to a native call', async () => {
    const { result } = await run([
      { reply: 'tool_calls', calls: [{ name: 'signal_wait', arguments: WAIT_ARGS }], reasoning_content: 'step one' },
    ]);
    assert.equal(result.thinking, 'step one');
    const second = await run([
      { reply: 'tool_calls', calls: [{ name: 'signal_wait', arguments: WAIT_ARGS }], reasoning: 'step two' },
    ]);
    assert.equal(second.result.thinking, 'step two');
  });
});

describe('OpenAIProvider: repair round and fallback', () => {
  test('out-of-range leverage: one repair round naming leverage, then the valid decision', async () => {
    const { result, bodies } = await run([
      {
        reply: 'tool_calls',
        calls: [{ name: 'signal_entry_long', arguments: { ...LONG_ARGS, leverage: 500 }, id: 'call_bad' }],
        usage: { prompt_tokens: 900, completion_tokens: 60 },
      },
      {
        reply: 'tool_calls',
        calls: [{ name: 'signal_entry_long', arguments: LONG_ARGS }],
        usage: { prompt_tokens: 1010, completion_tokens: 55 },
      },
    ]);
    assert.deepEqual(result.decision, { tool: 'signal_entry_long', args: LONG_ARGS });
    assert.equal(result.source, 'openai');
    assert.equal(result.rounds, 2);
    // 900 + 1010 input, 60 + 55 output
    assert.deepEqual(result.usage, { input: 1910, output: 115 });
    assert.equal(result.problems.length, 1);
    assert.match(result.problems[0]!, /^answer 1: leverage .*500/);

    assert.equal(bodies.length, 2);
    const repair = bodies[1]!.messages;
    const ctx = decisionContext();
    assert.deepEqual(repair.slice(0, 2), ctx.messages, 'the original prompt is resent unchanged');
    assert.equal(repair.length, 4);
    const assistant = repair[2]!;
    assert.equal(assistant.role, 'assistant');
    assert.equal(assistant.tool_calls?.[0]?.id, 'call_bad');
    assert.equal(assistant.tool_calls?.[0]?.function.name, 'signal_entry_long');
    assert.equal(JSON.parse(assistant.tool_calls?.[0]?.function.arguments ?? '{}').leverage, 500);
    const tool = repair[3]!;
    assert.equal(tool.role, 'tool');
    assert.equal(tool.tool_call_id, 'call_bad');
    assert.match(String(tool.content), /leverage must be an integer in 1\.\.125, got 500/);
    assert.match(String(tool.content), /signal_entry_long, signal_entry_short, signal_wait/);
    // the repair request uses the same tools and tool choice
    assert.deepEqual(bodies[1]!.tools, bodies[0]!.tools);
    assert.equal(bodies[1]!.tool_choice, 'required');
  });

  test('no tool call at all: the repair is a user message; thinking is not sent back', async () => {
    const { result, bodies } = await run([
      {
        reply: 'text',
        content: '<think>PRIVATE-THOUGHT-ONE</think>The market looks calm.',
        reasoning_content: 'PRIVATE-THOUGHT-TWO',
      },
      {
        reply: 'tool_calls',
        calls: [{ name: 'signal_wait', arguments: WAIT_ARGS }],
        reasoning_content: 'PRIVATE-THOUGHT-THREE',
      },
    ]);
    assert.deepEqual(result.decision, { tool: 'signal_wait', args: WAIT_ARGS });
    assert.equal(result.rounds, 2);
    const repair = bodies[1]!.messages;
    assert.equal(repair.length, 4);
    assert.deepEqual(repair[2], { role: 'assistant', content: 'The market looks calm.' });
    assert.equal(repair[3]!.role, 'user');
    assert.match(
      String(repair[3]!.content),
      /no tool call: call exactly one of signal_entry_long, signal_entry_short, signal_wait/,
    );
    const sent = JSON.stringify(bodies[1]);
    assert.ok(!sent.includes('PRIVATE-THOUGHT'), 'thinking must not be sent back');
    // all thinking of both answers is in the result, in order
    for (const t of ['PRIVATE-THOUGHT-ONE', 'PRIVATE-THOUGHT-TWO', 'PRIVATE-THOUGHT-THREE']) {
      assert.ok(result.thinking?.includes(t), `thinking keeps ${t}: ${result.thinking}`);
    }
    assert.ok(result.thinking!.indexOf('PRIVATE-THOUGHT-TWO') < result.thinking!.indexOf('PRIVATE-THOUGHT-THREE'));
  });

  test('several invalid native calls: every call id gets a tool message', async () => {
    const { bodies } = await run([
      {
        reply: 'tool_calls',
        calls: [
          { name: 'signal_entry_long', arguments: { ...LONG_ARGS, leverage: 0 }, id: 'a' },
          { name: 'signal_wait', arguments: WAIT_ARGS, id: 'b' },
        ],
      },
      waitCall(),
    ]);
    const repair = bodies[1]!.messages;
    assert.deepEqual(
      repair.slice(3).map((m) => [m.role, m.tool_call_id]),
      [
        ['tool', 'a'],
        ['tool', 'b'],
      ],
    );
    assert.match(String(repair[3]!.content), /leverage/);
    assert.match(String(repair[3]!.content), /only the first/);
  });

  test('two invalid answers when flat: signal_wait fallback with the problems as reason', async () => {
    const { result, bodies } = await run([
      { reply: 'tool_calls', calls: [{ name: 'signal_entry_long', arguments: { ...LONG_ARGS, leverage: 500 } }] },
      { reply: 'tool_calls', calls: [{ name: 'signal_entry_long', arguments: { ...LONG_ARGS, leverage: 300 } }] },
    ]);
    assert.equal(bodies.length, 2, 'exactly one repair round');
    assert.equal(result.source, 'fallback');
    assert.equal(result.decision.tool, 'signal_wait');
    assert.deepEqual(result.decision.args, {
      pair: PAIR,
      confidence_score: 0,
      rsi_value: RSI,
      reason: 'invalid model output: leverage must be an integer in 1..125, got 300',
    });
    assert.equal(result.problems.length, 2);
    assert.match(result.problems[1]!, /^answer 2: leverage .*300/);
  });

  test('two invalid answers in a position: signal_hold fallback; RSI 50 when the indicator is missing', async () => {
    const { result } = await run(
      [
        { reply: 'text', content: 'I would hold.' },
        { reply: 'tool_calls', calls: [{ name: 'signal_entry_short', arguments: LONG_ARGS }] },
      ],
      { hasPosition: true, rsi: null },
    );
    assert.equal(result.source, 'fallback');
    assert.equal(result.decision.tool, 'signal_hold');
    const args = result.decision.args as { reason: string; rsi_value: number; confidence_score: number; pair: string };
    assert.match(args.reason, /^invalid model output: signal_entry_short is not allowed/);
    assert.equal(args.rsi_value, 50);
    assert.equal(args.confidence_score, 0);
    assert.equal(args.pair, PAIR);
  });

  test('an answer cut off at the token limit says so in the repair', async () => {
    const { bodies } = await run([
      { reply: 'text', content: '<think>long reasoning that never ends', finishReason: 'length' },
      waitCall(),
    ]);
    const last = bodies[1]!.messages.at(-1)!;
    assert.equal(last.role, 'user');
    assert.match(String(last.content), /cut off at the output limit of 800 tokens/);
  });
});

describe('OpenAIProvider: transport failures and retries', () => {
  test('429 with Retry-After, then 200: one decision after waiting as asked', async () => {
    const { result, bodies, elapsed } = await run([
      { reply: 'error', status: 429, message: 'Rate limit reached', headers: { 'retry-after': '1' } },
      waitCall(),
    ]);
    assert.equal(bodies.length, 2);
    assert.deepEqual(result.decision, { tool: 'signal_wait', args: WAIT_ARGS });
    assert.equal(result.source, 'openai');
    // the client's own first backoff is at most 0.5 s; 1 s means Retry-After was honoured
    assert.ok(elapsed >= 950, `waited ${elapsed} ms`);
  });

  test('a huge Retry-After is capped (maxRetryAfterMs) and reported on the final error', async () => {
    server.push({ reply: 'error', status: 429, message: 'slow down', headers: { 'retry-after': '3600' } }, waitCall());
    const provider = new OpenAIProvider(llmConfig(server.url), { maxRetryAfterMs: 100 });
    const t0 = performance.now();
    const result = await provider.decide(decisionContext());
    assert.ok(performance.now() - t0 < 2000, 'did not sleep for an hour');
    assert.equal(result.decision.tool, 'signal_wait');

    const { error, requests } = await runFailing(
      [
        { reply: 'error', status: 429, message: 'slow down', headers: { 'retry-after': '7' } },
        { reply: 'error', status: 429, message: 'slow down', headers: { 'retry-after': '7' } },
      ],
      { retry_times: 1 },
    );
    assert.equal(requests, 2);
    assert.equal(error.type, 'LlmRateLimited');
    assert.equal(error.name, 'LlmRateLimited');
    assert.equal(error.retryable, true);
    assert.equal(error.status, 429);
    assert.equal(error.retryAfterMs, 7000);
    assert.match(error.message, /rate limited \(HTTP 429\) after 2 attempt\(s\): slow down/);
  });

  test('500 then 200: one decision', async () => {
    const { result, bodies } = await run([{ reply: 'error', status: 500, message: 'upstream crashed' }, waitCall()]);
    assert.equal(bodies.length, 2);
    assert.deepEqual(result.decision, { tool: 'signal_wait', args: WAIT_ARGS });
  });

  test('500 on every attempt: retryable LlmUnavailable', async () => {
    const { error, requests } = await runFailing(
      [
        { reply: 'error', status: 503, message: 'overloaded' },
        { reply: 'error', status: 503, message: 'overloaded' },
      ],
      { retry_times: 1 },
    );
    assert.equal(requests, 2);
    assert.equal(error.type, 'LlmUnavailable');
    assert.equal(error.retryable, true);
    assert.equal(error.status, 503);
  });

  test('a server that does not answer within the timeout: LlmTimeout after about 1 s', async () => {
    const { error, requests, elapsed } = await runFailing([{ ...waitCall(), delayMs: 3000 } as ScriptStep], {
      timeout: 1,
      retry_times: 0,
    });
    assert.equal(requests, 1);
    assert.equal(error.type, 'LlmTimeout');
    assert.equal(error.retryable, true);
    assert.match(error.message, /timed out after 1 s per attempt, 1 attempt\(s\)/);
    assert.ok(elapsed >= 950 && elapsed < 2500, `took ${elapsed} ms`);
  });

  test('a server that sends headers and then stalls the body is cut off too', async () => {
    const { error, elapsed } = await runFailing([{ ...waitCall(), bodyDelayMs: 3000 } as ScriptStep], {
      timeout: 1,
      retry_times: 0,
    });
    assert.equal(error.type, 'LlmTimeout');
    assert.ok(elapsed >= 950 && elapsed < 2500, `took ${elapsed} ms`);
  });

  test('the timeout applies per attempt: a slow attempt is retried and the next one succeeds', async () => {
    const { result, bodies, elapsed } = await run([{ ...waitCall(), delayMs: 3000 } as ScriptStep, waitCall()], {
      llm: { timeout: 1, retry_times: 1 },
    });
    assert.equal(bodies.length, 2);
    assert.equal(result.decision.tool, 'signal_wait');
    // 1 s timeout + at most 0.5 s backoff + the fast attempt
    assert.ok(elapsed < 2500, `took ${elapsed} ms`);
  });

  test('401 echoing the key: non-retryable LlmAuthentication without the key in the message', async () => {
    const { error, requests } = await runFailing([
      {
        reply: 'error',
        status: 401,
        body: (req: { headers: Record<string, string> }) => ({
          error: { message: `Incorrect API key provided: ${req.headers.authorization}`, type: 'invalid_request_error' },
        }),
      },
    ]);
    assert.equal(requests, 1, 'authentication errors are not retried');
    assert.equal(error.type, 'LlmAuthentication');
    assert.equal(error.retryable, false);
    assert.match(error.message, /HTTP 401/);
    assert.match(error.message, /OPENAI_API_KEY/);
  });

  test('404 (unknown model): non-retryable LlmBadRequest naming the server message', async () => {
    const { error } = await runFailing([
      { reply: 'error', status: 404, message: 'The model test-model does not exist' },
    ]);
    assert.equal(error.type, 'LlmBadRequest');
    assert.equal(error.retryable, false);
    assert.match(error.message, /The model test-model does not exist/);
  });

  test('nothing listening: LlmUnavailable', async () => {
    const closed = await startScriptedServer();
    const url = closed.url;
    await closed.close();
    const { error } = await runFailing([], { retry_times: 0 }, url);
    assert.equal(error.type, 'LlmUnavailable');
    assert.equal(error.retryable, true);
    assert.match(error.message, /could not connect/);
  });

  test('HTTP 200 with a body that is not a chat completion: LlmUnavailable', async () => {
    const { error } = await runFailing([
      { reply: 'raw', status: 200, body: '<html>proxy login</html>', contentType: 'text/html' },
    ]);
    assert.equal(error.type, 'LlmUnavailable');
    assert.match(error.message, /not a chat completion/);
  });

  test('a server that rejects max_tokens gets max_completion_tokens from then on', async () => {
    const provider = new OpenAIProvider(llmConfig(server.url));
    const rejection: ScriptStep = {
      reply: 'error',
      status: 400,
      body: {
        error: {
          message:
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
          type: 'invalid_request_error',
          param: 'max_tokens',
          code: 'unsupported_parameter',
        },
      },
    };
    const first = await run([rejection, waitCall()], { provider });
    assert.equal(first.bodies.length, 2);
    assert.equal(first.bodies[0]!.max_tokens, 800);
    assert.equal(first.bodies[1]!.max_tokens, undefined);
    assert.equal(first.bodies[1]!.max_completion_tokens, 800);
    assert.ok(first.result.notes?.some((n) => n.includes('max_completion_tokens')));
    const second = await run([waitCall()], { provider });
    assert.equal(second.bodies.length, 1, 'the adaptation is remembered');
    assert.equal(second.bodies[0]!.max_completion_tokens, 800);
  });

  test('rejections of tool_choice "required" and of the temperature are adapted to, one after the other', async () => {
    const { result, bodies } = await run([
      { reply: 'error', status: 400, message: 'tool_choice must be "auto", "none" or a named tool' },
      {
        reply: 'error',
        status: 400,
        body: {
          error: {
            message: "Unsupported value: 'temperature' does not support 0.2 with this model.",
            param: 'temperature',
          },
        },
      },
      { reply: 'text', content: JSON.stringify({ name: 'signal_wait', arguments: WAIT_ARGS }) },
    ]);
    assert.equal(result.decision.tool, 'signal_wait');
    assert.deepEqual(
      bodies.map((b) => [b.tool_choice, b.temperature]),
      [
        ['required', 0.2],
        ['auto', 0.2],
        ['auto', undefined],
      ],
    );
  });

  test('a 400 about something else is not retried: LlmBadRequest', async () => {
    const { error, requests } = await runFailing([
      { reply: 'error', status: 400, message: 'messages: too many tokens' },
    ]);
    assert.equal(requests, 1);
    assert.equal(error.type, 'LlmBadRequest');
  });

  test('o-series and gpt-5 models get max_completion_tokens from the start', async () => {
    const { bodies } = await run([waitCall()], { llm: { model: 'o4-mini' } });
    assert.equal(bodies[0]!.max_completion_tokens, 800);
    assert.equal(bodies[0]!.max_tokens, undefined);
  });
});

describe('OpenAIProvider: the API key never leaks', () => {
  test('results of valid, repaired and fallback decisions do not contain the key, even when the model echoes it', async () => {
    const echoed = { ...WAIT_ARGS, reason: `my key is ${FAKE_API_KEY}` };
    const outcomes = [
      await run([waitCall()]),
      await run([{ reply: 'text', content: `<think>${FAKE_API_KEY}</think>` }, waitCall(echoed)]),
      await run([
        waitCall({ ...WAIT_ARGS, confidence_score: FAKE_API_KEY }),
        waitCall({ ...WAIT_ARGS, pair: FAKE_API_KEY }),
      ]),
    ];
    for (const { result } of outcomes) assertNoKey(JSON.stringify(result), 'result');
    assert.equal(outcomes[2]!.result.source, 'fallback');
  });
});

describe('OpenAIProvider: no API key', () => {
  test('a remote endpoint without a key is an error before anything is sent, not a placeholder key', () => {
    assert.throws(
      () => new OpenAIProvider(llmConfig('https://api.openai.com/v1', { api_key: '' })),
      (err: unknown) =>
        err instanceof LlmError &&
        err.type === 'LlmAuthentication' &&
        /no API key for https:\/\/api\.openai\.com\/v1: set OPENAI_API_KEY/.test(err.message),
    );
  });

  test('with deferKeyCheck (a dry run) the first decision fails instead, and still nothing is sent', async () => {
    const provider = new OpenAIProvider(llmConfig('https://api.openai.com/v1', { api_key: '' }), {
      deferKeyCheck: true,
    });
    await assert.rejects(
      provider.decide(decisionContext()),
      (err: unknown) => err instanceof LlmError && err.type === 'LlmAuthentication',
    );
  });

  test('a local server without a key gets no Authorization header at all', async () => {
    const { bodies } = await run([{ reply: 'tool_calls', calls: [{ name: 'signal_wait', arguments: WAIT_ARGS }] }], {
      llm: { api_key: '' },
    });
    assert.equal(bodies.length, 1);
    const headers = server.requests.at(-1)!.headers;
    assert.equal(headers.authorization, undefined, `sent Authorization: ${headers.authorization}`);
  });
});

describe('OpenAIProvider: usage and extra fields', () => {
  test('cached prompt tokens are read from prompt_tokens_details and summed over both rounds', async () => {
    const { argsFor, startModelServer } = await import('../helpers/model-server');
    const model = await startModelServer({
      usage: { promptTokens: 2000, completionTokens: 50, cachedTokens: 1536 },
      answer: (q) => ({ tool: 'signal_wait', arguments: { ...argsFor('signal_wait', q.pair, 'x'), rsi_value: 'x' } }),
      repair: (q) => ({ tool: 'signal_wait', arguments: argsFor('signal_wait', q.pair, 'fixed') }),
    });
    try {
      const result = await new OpenAIProvider(llmConfig(model.url)).decide(decisionContext());
      assert.equal(result.rounds, 2);
      assert.deepEqual(result.usage, { input: 4000, output: 100, cachedInput: 3072 });
    } finally {
      await model.close();
    }
  });

  test('extra fields in the tool call are dropped and listed; the decision stands', async () => {
    const { result } = await run([
      { reply: 'tool_calls', calls: [{ name: 'signal_wait', arguments: { ...WAIT_ARGS, note: 'fyi', mood: 3 } }] },
    ]);
    assert.equal(result.source, 'openai');
    assert.equal(result.rounds, 1);
    assert.deepEqual(result.decision, { tool: 'signal_wait', args: WAIT_ARGS });
    assert.deepEqual(result.droppedFields, ['note', 'mood']);
  });
});

describe('OpenAIProvider: with a request scheduler', () => {
  test('a 429 goes to the scheduler, which waits the Retry-After and asks again; the client does not retry it', async () => {
    const { RequestScheduler } = await import('../../src/llm/request-scheduler');
    const scheduler = new RequestScheduler({ concurrency: 2 });
    const provider = new OpenAIProvider(llmConfig(server.url, { retry_times: 0 }), { scheduler });
    const { result, bodies, elapsed } = await run(
      [
        { reply: 'error', status: 429, message: 'slow down', headers: { 'retry-after': '0.3' } },
        { reply: 'error', status: 429, message: 'slow down', headers: { 'retry-after': '0.2' } },
        { reply: 'tool_calls', calls: [{ name: 'signal_wait', arguments: WAIT_ARGS }] },
      ],
      { provider },
    );
    assert.equal(result.source, 'openai');
    assert.equal(bodies.length, 3);
    assert.ok(elapsed >= 450, `asked again after ${elapsed} ms, before the Retry-After of 0.3 + 0.2 s`);
    assert.equal(scheduler.stats().rateLimited, 2);
  });

  test('a 429 for an exhausted quota is not a rate limit: it fails at once and says to add credit', async () => {
    const { RequestScheduler } = await import('../../src/llm/request-scheduler');
    const scheduler = new RequestScheduler({ concurrency: 2 });
    const provider = new OpenAIProvider(llmConfig(server.url, { retry_times: 0 }), { scheduler });
    server.push({
      reply: 'error',
      status: 429,
      body: {
        error: { message: 'You exceeded your current quota', type: 'insufficient_quota', code: 'insufficient_quota' },
      },
    });
    await assert.rejects(
      provider.decide(decisionContext()),
      (err: unknown) => err instanceof LlmError && err.type === 'LlmRateLimited' && /add credit/.test(err.message),
    );
    assert.equal(server.remaining(), 0);
  });
});
