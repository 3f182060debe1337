import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CachedProvider, DecisionCache, canonicalJson, decisionCacheKey } from '../../src/llm/decision-cache';
import { LlmError } from '../../src/llm/errors';
import { OpenAIProvider } from '../../src/llm/openai-provider';
import type { ProviderDecision, RequestIdentity } from '../../src/llm/provider';
import { startScriptedServer, type ScriptStep, type ScriptedServer } from '../helpers/scripted-openai-server';
import { FAKE_API_KEY, HOLD_ARGS, LONG_ARGS, WAIT_ARGS, decisionContext, llmConfig } from '../helpers/llm-fixtures';

let server: ScriptedServer;
let dir: string;
before(async () => {
  server = await startScriptedServer();
  dir = mkdtempSync(join(tmpdir(), 'decision-cache-'));
});
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const REQUEST: RequestIdentity = {
  endpoint: 'http://127.0.0.1:8000/v1',
  model: 'm',
  temperature: 0.2,
  max_tokens: 1000,
  tool_choice: 'required',
  parallel_tool_calls: false,
};

describe('cache key', () => {
  test('canonical JSON sorts keys at every level and drops undefined properties', () => {
    assert.equal(
      canonicalJson({ b: 1, a: [{ d: 2, c: 'x' }, null], e: undefined, c: { z: true, y: 1.5 } }),
      '{"a":[{"c":"x","d":2},null],"b":1,"c":{"y":1.5,"z":true}}',
    );
  });

  test('the key is the sha256 of the canonical request, whatever the key order', () => {
    const ctx = decisionContext();
    const key = decisionCacheKey({ request: REQUEST, messages: ctx.messages, tools: ctx.tools });
    // reference: the same payload written out by hand in sorted-key order
    const reference = createHash('sha256')
      .update(
        canonicalJson({
          messages: ctx.messages,
          request: { ...REQUEST },
          tools: JSON.parse(JSON.stringify(ctx.tools)),
          version: 2,
        }),
      )
      .digest('hex');
    assert.equal(key, reference);
    // messages with the same role and content in a different property order give the same key
    const reordered = ctx.messages.map((m) => ({ content: m.content, role: m.role }));
    assert.equal(decisionCacheKey({ request: REQUEST, messages: reordered, tools: ctx.tools }), key);
  });

  test('the endpoint, the model, every request parameter, the messages and the tools each change the key', () => {
    const flat = decisionContext();
    const base = { request: REQUEST, messages: flat.messages, tools: flat.tools };
    const key = decisionCacheKey(base);
    const variants = [
      { ...base, request: { ...REQUEST, endpoint: 'http://127.0.0.1:8001/v1' } },
      { ...base, request: { ...REQUEST, model: 'm2' } },
      { ...base, request: { ...REQUEST, temperature: 0.3 } },
      { ...base, request: { ...REQUEST, max_tokens: 500 } },
      { ...base, request: { ...REQUEST, tool_choice: 'auto' } },
      { ...base, request: { ...REQUEST, parallel_tool_calls: true } },
      { ...base, messages: decisionContext({ variant: 'one more line' }).messages },
      { ...base, tools: decisionContext({ hasPosition: true }).tools },
    ];
    const keys = new Set(variants.map(decisionCacheKey));
    assert.equal(keys.size, variants.length);
    assert.ok(!keys.has(key));
  });
});

/** Three different contexts: flat, flat with another prompt, in a position. */
const contexts = () => [
  decisionContext(),
  decisionContext({ variant: 'Funding turned negative.' }),
  decisionContext({ hasPosition: true }),
];

const script = (): ScriptStep[] => [
  {
    reply: 'tool_calls',
    calls: [{ name: 'signal_wait', arguments: WAIT_ARGS }],
    usage: { prompt_tokens: 700, completion_tokens: 40 },
  },
  // the second context needs a repair round: both answers must be replayed as one cached result
  { reply: 'tool_calls', calls: [{ name: 'signal_entry_long', arguments: { ...LONG_ARGS, leverage: 500 } }] },
  {
    reply: 'tool_calls',
    calls: [{ name: 'signal_entry_long', arguments: LONG_ARGS }],
    reasoning_content: 'trend is up',
  },
  { reply: 'tool_calls', calls: [{ name: 'signal_hold', arguments: HOLD_ARGS }] },
];

async function decideAll(provider: CachedProvider): Promise<ProviderDecision[]> {
  const out: ProviderDecision[] = [];
  for (const ctx of contexts()) out.push(await provider.decide(ctx));
  return out;
}

describe('CachedProvider with the real OpenAI client', () => {
  test('a second identical run makes no HTTP request and gives identical decisions (SQLite file, reopened)', async () => {
    const file = join(dir, 'nested', 'decision-cache.sqlite');
    const firstCache = DecisionCache.open(file);
    server.push(...script());
    const before = server.requests.length;
    const first = await decideAll(new CachedProvider(new OpenAIProvider(llmConfig(server.url)), firstCache));
    assert.equal(server.requests.length - before, 4, 'first run: one request per answer (4 answers)');
    assert.deepEqual(
      first.map((r) => r.source),
      ['openai', 'openai', 'openai'],
    );
    assert.equal(firstCache.size(), 3);
    firstCache.close();

    // a new process would open the same file with a new provider
    const secondCache = DecisionCache.open(file);
    const afterFirst = server.requests.length;
    const second = await decideAll(new CachedProvider(new OpenAIProvider(llmConfig(server.url)), secondCache));
    assert.equal(server.requests.length, afterFirst, 'second run: 0 HTTP requests');
    secondCache.close();

    assert.deepEqual(
      second.map((r) => r.decision),
      first.map((r) => r.decision),
    );
    for (const [i, hit] of second.entries()) {
      const original = first[i]!;
      assert.equal(hit.source, 'cache');
      assert.equal(hit.cached, true);
      assert.deepEqual(hit.usage, { input: 0, output: 0 });
      assert.deepEqual(hit.originalUsage, original.usage);
      assert.equal(hit.rounds, original.rounds);
      assert.equal(hit.model, original.model);
      assert.deepEqual(hit.problems, original.problems);
      assert.equal(hit.thinking, original.thinking);
      assert.equal(hit.cacheKey, original.cacheKey);
    }
    assert.deepEqual(first[0]!.usage, { input: 700, output: 40 });
    assert.equal(second[1]!.thinking, 'trend is up');
    assert.match(second[1]!.problems[0]!, /leverage/);
  });

  test('the cache file never contains the API key', async () => {
    const file = join(dir, 'secrets.sqlite');
    const cache = DecisionCache.open(file);
    server.push({
      reply: 'tool_calls',
      calls: [{ name: 'signal_wait', arguments: { ...WAIT_ARGS, reason: `echo ${FAKE_API_KEY}` } }],
      reasoning_content: `thinking about ${FAKE_API_KEY}`,
    });
    const result = await new CachedProvider(new OpenAIProvider(llmConfig(server.url)), cache).decide(decisionContext());
    assert.equal(result.source, 'openai');
    assert.equal(cache.size(), 1);
    cache.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      if (!existsSync(f)) continue;
      const bytes = readFileSync(f).toString('latin1');
      assert.ok(!bytes.includes(FAKE_API_KEY), `${f} contains the API key`);
      assert.ok(!bytes.includes('SECRET-1234567890'), `${f} contains part of the API key`);
    }
    assert.ok(readFileSync(file).toString('latin1').includes('echo ***'), 'the decision was written to the file');
  });

  test('an invalid answer is cached as what the model said: a rerun replays the same fallback without asking', async () => {
    const cache = DecisionCache.inMemory();
    const provider = new CachedProvider(new OpenAIProvider(llmConfig(server.url)), cache);
    server.push({ reply: 'text', content: 'no idea' }, { reply: 'text', content: 'still no idea' });
    const first = await provider.decide(decisionContext());
    assert.equal(first.source, 'fallback');
    assert.deepEqual(first.answerTexts, ['no idea', 'still no idea']);
    assert.equal(cache.size(), 1);

    const before = server.requests.length;
    const second = await provider.decide(decisionContext());
    assert.equal(server.requests.length, before, 'the rerun asked the model again');
    assert.equal(second.source, 'fallback');
    assert.equal(second.cached, true);
    assert.deepEqual(second.decision, first.decision);
    assert.deepEqual(second.problems, first.problems);
    assert.deepEqual(second.answerTexts, first.answerTexts);
    assert.deepEqual(second.originalUsage, first.usage);
  });

  test('refresh mode (--no-cache) asks again and replaces the stored answer', async () => {
    const cache = DecisionCache.inMemory();
    const llm = llmConfig(server.url);
    server.push({ reply: 'tool_calls', calls: [{ name: 'signal_wait', arguments: WAIT_ARGS }] });
    await new CachedProvider(new OpenAIProvider(llm), cache).decide(decisionContext());
    const refresh = new CachedProvider(new OpenAIProvider(llm), cache, 'refresh');
    assert.equal(refresh.isCached(decisionContext()), false);
    server.push({
      reply: 'tool_calls',
      calls: [{ name: 'signal_wait', arguments: { ...WAIT_ARGS, reason: 'asked again' } }],
    });
    const before = server.requests.length;
    const again = await refresh.decide(decisionContext());
    assert.equal(server.requests.length - before, 1);
    assert.equal(again.decision.args.reason, 'asked again');
    const reread = await new CachedProvider(new OpenAIProvider(llm), cache).decide(decisionContext());
    assert.equal(reread.cached, true);
    assert.equal(reread.decision.args.reason, 'asked again');
  });

  test('a transport error passes through and nothing is stored', async () => {
    const cache = DecisionCache.inMemory();
    const provider = new CachedProvider(new OpenAIProvider(llmConfig(server.url, { retry_times: 0 })), cache);
    server.push({ reply: 'error', status: 401, message: 'bad key' });
    await assert.rejects(
      provider.decide(decisionContext()),
      (err: unknown) => err instanceof LlmError && err.type === 'LlmAuthentication',
    );
    assert.equal(cache.size(), 0);
  });

  test('another temperature, model, output limit or endpoint is a miss; the key in the URL is not part of it', async () => {
    const cache = DecisionCache.inMemory();
    const wait: ScriptStep = { reply: 'tool_calls', calls: [{ name: 'signal_wait', arguments: WAIT_ARGS }] };
    const other = await startScriptedServer();
    try {
      server.push(wait, wait, wait, wait);
      other.push(wait);
      const before = server.requests.length;
      const variants = [
        {},
        { temperature: 0.7 },
        { model: 'other-model' },
        { max_tokens: 500 },
        { api_base: other.url },
      ];
      for (const llm of variants) {
        const r = await new CachedProvider(new OpenAIProvider(llmConfig(server.url, llm)), cache).decide(
          decisionContext(),
        );
        assert.equal(r.source, 'openai');
      }
      assert.equal(server.requests.length - before, 4);
      assert.equal(other.requests.length, 1, 'the answer of one server was served for another');
      assert.equal(cache.size(), 5);
      // the same endpoint with credentials in the URL is the same endpoint for the cache
      const withUser = server.url.replace('http://', 'http://user:pw@');
      const hit = await new CachedProvider(new OpenAIProvider(llmConfig(withUser)), cache).decide(decisionContext());
      assert.equal(hit.cached, true);
    } finally {
      await other.close();
    }
  });
});
