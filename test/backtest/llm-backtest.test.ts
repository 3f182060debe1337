/**
 * LLM backtests at real-model scale (issue 14 acceptance): the real `openai` client against a local
 * OpenAI-compatible test server that answers from the prompt (test/helpers/model-server.ts), with answer delays that
 * reorder the answers, HTTP 429 with Retry-After, extra fields and invalid answers; the decision cache, the request
 * scheduler and the run's meter (cost cap, fallback alarm) as the CLI wires them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BacktestStop, resultJson, runBacktest, type RequestPreview } from '../../src/backtest/engine';
import { LlmRun, type RunEstimate } from '../../src/backtest/llm-run';
import { openaiPolicy } from '../../src/backtest/policy';
import type { DecisionLog } from '../../src/backtest/decision-log';
import type { BacktestResult } from '../../src/backtest/result';
import { renderReport } from '../../src/backtest/report';
import { DecisionCache } from '../../src/llm/decision-cache';
import { RequestScheduler } from '../../src/llm/request-scheduler';
import type { RecordedMarketSource } from '../../src/exchange/market-source';
import { DAY_MS, MAIN_MS, recordedMarket, testConfig } from '../helpers/backtest';
import {
  argsFor,
  defaultAnswer,
  startModelServer,
  type ModelServer,
  type ModelServerOptions,
} from '../helpers/model-server';

const PAIRS = ['BTC/USDT:USDT', 'ETH/USDT:USDT', 'SOL/USDT:USDT', 'XRP/USDT:USDT'];
const DATA_START = Date.UTC(2025, 4, 22, 0, 30);
/** three days in (indicators warmed up), then 36 decision times: 35 x 4 = 140 model decisions */
const FROM = DATA_START + 3 * DAY_MS;
const TO = FROM + 35 * MAIN_MS;
const DECISIONS = 35 * PAIRS.length;
const MODEL = 'test-model';
/** USD per million tokens; with the server's usage below a request costs 0.0021 USD */
const PRICE = { input: 1, cached_input: 0.5, output: 1 };
const USAGE = { promptTokens: 2500, completionTokens: 100, cachedTokens: 1000 };
const REQUEST_USD = (1500 * 1 + 1000 * 0.5 + 100 * 1) / 1e6;

let market: RecordedMarketSource;
const servers: ModelServer[] = [];
before(() => {
  market = recordedMarket();
});
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function server(options: ModelServerOptions = {}): Promise<ModelServer> {
  const s = await startModelServer({ usage: USAGE, delayMs: (q) => Math.floor(q.draw * 8), ...options });
  servers.push(s);
  return s;
}

interface RunOptions {
  cache: DecisionCache;
  concurrency: number;
  maxCostUsd?: number | null;
  allowFallbacks?: boolean;
  prefetch?: boolean;
  beforeFirstRequest?: (preview: RequestPreview) => void;
}

/** One backtest of the model at `url`, wired as `llm-trader backtest --policy openai` wires it. */
async function modelBacktest(
  url: string,
  o: RunOptions,
): Promise<{
  result: BacktestResult;
  decisions: DecisionLog;
  text: string;
  run: LlmRun;
  prefetched: { answered: number; used: number };
}> {
  const config = testConfig({
    pairs: PAIRS,
    llm: {
      provider: 'openai',
      api_base: url,
      model: MODEL,
      retry_times: 0,
      timeout: 30,
      max_tokens: 200,
      pricing: { [MODEL]: PRICE },
      max_cost_usd: o.maxCostUsd ?? null,
    },
    backtest: { concurrency: o.concurrency },
  });
  const scheduler = new RequestScheduler({ concurrency: o.concurrency });
  const run = new LlmRun({ config, scheduler, allowFallbacks: o.allowFallbacks ?? false });
  const policy = await openaiPolicy(config.llm, { cache: o.cache, scheduler, wrap: run.meter });
  const { result, decisions } = await runBacktest({
    config,
    market,
    pairs: PAIRS,
    from: FROM,
    to: TO,
    policy,
    onDecision: run.observe,
    ...(o.beforeFirstRequest ? { beforeFirstRequest: o.beforeFirstRequest } : {}),
    ...(o.prefetch ? { prefetch: true } : {}),
  });
  run.finish();
  // result.json and the decisions (which the decision log records): what must not depend on how the model was asked
  return {
    result,
    decisions,
    text: resultJson(result) + JSON.stringify(decisions),
    run,
    prefetched: policy.prefetchStats?.() ?? { answered: 0, used: 0 },
  };
}

describe('concurrent model decisions, deterministic results', () => {
  test('concurrency 1 and 16 give the same result.json, asked or cached; a cached rerun makes no request', async () => {
    const s = await server();
    const cache16 = DecisionCache.inMemory();
    const cache1 = DecisionCache.inMemory();
    const at16 = await modelBacktest(s.url, { cache: cache16, concurrency: 16 });
    assert.equal(s.stats().questions, DECISIONS);
    assert.equal(s.stats().maxInFlight, PAIRS.length, 'every pair of a decision time was asked at once');
    s.resetStats();
    const at1 = await modelBacktest(s.url, { cache: cache1, concurrency: 1 });
    assert.equal(s.stats().questions, DECISIONS);
    assert.equal(s.stats().maxInFlight, 1);
    assert.ok(
      at16.result.trades.length >= 3,
      `the model traded too little to show anything: ${at16.result.trades.length}`,
    );
    assert.ok(at16.result.orders.length >= 6);
    assert.ok(at16.text === at1.text, 'concurrency 16 and 1 gave different results');

    // cached reruns, each at the other concurrency: no request, the same bytes
    s.resetStats();
    const rerun1 = await modelBacktest(s.url, { cache: cache16, concurrency: 1 });
    const rerun16 = await modelBacktest(s.url, { cache: cache1, concurrency: 16 });
    assert.equal(s.stats().requests, 0, 'a cached rerun asked the model');
    assert.equal(rerun1.run.progress(0).cacheHits, DECISIONS);
    assert.equal(rerun1.run.progress(0).requests, 0);
    assert.ok(rerun1.text === at16.text && rerun16.text === at16.text, 'a cached rerun gave another result.json');
  });

  test('HTTP 429 with Retry-After: the run slows down, asks again, never fails, and trades the same', async () => {
    // one endpoint for both runs (the endpoint is part of the result's config): rate limiting switched on for the second
    let limit = false;
    const limited = await server({
      rateLimit: { maxInFlight: 2, retryAfterSeconds: 0.05 },
      rateLimited: () => limit,
      delayMs: 15,
    });
    const reference = await modelBacktest(limited.url, { cache: DecisionCache.inMemory(), concurrency: 1 });
    limited.resetStats();
    limit = true;
    const run = await modelBacktest(limited.url, { cache: DecisionCache.inMemory(), concurrency: 8 });
    const stats = limited.stats();
    assert.ok(stats.rateLimited > 0, 'the server never answered 429: the test shows nothing');
    assert.equal(run.run.progress(0).scheduler.rateLimited, stats.rateLimited);
    assert.ok(stats.maxInFlight <= 2);
    assert.equal(stats.questions, DECISIONS, 'every decision was answered once');
    assert.ok(run.text === reference.text, 'the rate-limited run traded differently');
  });

  test('prefetching the next decision time while the last answers are out: the same result, no prompt asked twice', async () => {
    // 4 pairs at concurrency 3: the fourth question of a decision time waits for a place, and is answered last
    const s = await server({ delayMs: 20 });
    const plain = await modelBacktest(s.url, { cache: DecisionCache.inMemory(), concurrency: 3 });
    s.resetStats();
    const ahead = await modelBacktest(s.url, { cache: DecisionCache.inMemory(), concurrency: 3, prefetch: true });
    assert.ok(ahead.text === plain.text, 'prefetching changed the result');
    const stats = s.stats();
    assert.equal(stats.distinctQuestions, stats.questions, 'a prompt was asked twice');
    assert.ok(ahead.prefetched.used >= DECISIONS / 4, `only ${ahead.prefetched.used} prefetched answers were used`);
    assert.ok(ahead.prefetched.answered >= ahead.prefetched.used);
    // every decision was asked once, plus the prefetched answers no decision used (wrong guesses)
    assert.equal(stats.questions, DECISIONS + ahead.prefetched.answered - ahead.prefetched.used);
    assert.equal(ahead.run.progress(0).prefetchRequests, ahead.prefetched.answered);
  });
});

describe('the cost cap', () => {
  test('a run stopped by the cost cap resumes from the cache and ends as an uninterrupted run, no decision paid twice', async () => {
    const capped = await server();
    const uninterrupted = await modelBacktest(capped.url, { cache: DecisionCache.inMemory(), concurrency: 4 });
    capped.resetStats();
    const cache = DecisionCache.inMemory();
    const cap = 0.1;
    const previews: RequestPreview[] = [];
    let stops = 0;
    let final: Awaited<ReturnType<typeof modelBacktest>> | null = null;
    for (let attempt = 0; attempt < 20 && final === null; attempt++) {
      const asked = capped.stats().questions;
      let run: LlmRun | null = null;
      try {
        final = await modelBacktest(capped.url, {
          cache,
          concurrency: 4,
          maxCostUsd: cap,
          beforeFirstRequest: (p) => {
            previews.push(p);
          },
        });
        run = final.run;
      } catch (err) {
        assert.ok(err instanceof BacktestStop && err.kind === 'cost-cap', String(err));
        assert.match(err.message, /the cost cap stopped the run: .* USD spent .* of 0\.1000 USD allowed/);
        stops++;
      }
      const paid = capped.stats().questions - asked;
      assert.ok(paid * REQUEST_USD <= cap + 1e-12, `run ${attempt} paid ${paid * REQUEST_USD} USD, over the cap`);
      if (run) assert.ok(run.progress(0).spentUsd! <= cap);
    }
    assert.ok(final, 'the capped run never finished');
    assert.ok(stops >= 2, `expected the cap to stop the run several times, it stopped ${stops}`);
    assert.ok(final.text === uninterrupted.text, 'the resumed run ended with another result.json');
    const stats = capped.stats();
    assert.equal(stats.questions, DECISIONS, 'the resumed runs together asked as many questions as one run');
    assert.equal(stats.distinctQuestions, stats.questions, 'a decision was paid twice');

    // each resumed run previewed from where the previous one stopped, with the output measured on cached answers
    assert.equal(previews.length, stops + 1);
    assert.equal(previews[0]!.cachedBefore, 0);
    for (let i = 1; i < previews.length; i++) {
      assert.ok(previews[i]!.cachedBefore + previews[i]!.cachedNow > 0);
      assert.ok(previews[i]!.time >= previews[i - 1]!.time);
      const estimate: RunEstimate = final.run.estimate(previews[i]!);
      assert.equal(estimate.outputMeasured, true);
      assert.equal(estimate.outputPerAnswer, USAGE.completionTokens);
    }
  });

  test('tokens and cost in total and by prompt kind, with the cached prompt tokens the server reports', async () => {
    const { result } = await modelBacktest((await server()).url, { cache: DecisionCache.inMemory(), concurrency: 8 });
    const llm = result.llm!;
    assert.equal(llm.decisions, DECISIONS);
    assert.equal(llm.requests, DECISIONS);
    assert.deepEqual(llm.tokens, {
      input: DECISIONS * USAGE.promptTokens,
      cached_input: DECISIONS * USAGE.cachedTokens,
      output: DECISIONS * USAGE.completionTokens,
    });
    assert.ok(Math.abs(llm.cost_usd! - DECISIONS * REQUEST_USD) < 1e-9);
    const { entry, position } = llm.by_kind;
    assert.ok(entry.decisions > 0 && position.decisions > 0, 'the run had no position: nothing to split');
    assert.equal(entry.decisions + position.decisions, llm.decisions);
    assert.equal(entry.tokens.cached_input + position.tokens.cached_input, llm.tokens.cached_input);
    assert.ok(Math.abs(entry.cost_usd! + position.cost_usd! - llm.cost_usd!) < 1e-9);
    assert.deepEqual(llm.price, { ...PRICE, model: MODEL, source: 'config' });
    assert.equal(result.metrics.estimated_cost_usd, llm.cost_usd);
    assert.equal(result.metrics.model_tokens_in, llm.tokens.input);
    // the decisions panel of result.json (and the report) counts the same model decisions, tokens and cost
    const panel = result.breakdowns.decisions.model;
    assert.deepEqual(
      [panel.decisions, panel.requests, panel.tokens, panel.cost_usd],
      [llm.decisions, llm.requests, llm.tokens, llm.cost_usd],
    );
    const html = renderReport(result, {});
    assert.match(html, />Model usage<\/h3>/);
    assert.match(html, new RegExp(`<td class="l">all</td><td>${DECISIONS}</td><td>${DECISIONS}</td>`));
    assert.match(html, new RegExp(`A model decided ${DECISIONS} times in ${DECISIONS} requests`));
  });

  test('the preview comes before the first request, from the prompts of the first decision time; a dry run sends none', async () => {
    const s = await server();
    let seen: RequestPreview | null = null;
    await assert.rejects(
      modelBacktest(s.url, {
        cache: DecisionCache.inMemory(),
        concurrency: 8,
        beforeFirstRequest: (p) => {
          seen = p;
          assert.equal(s.stats().requests, 0, 'a request went out before the preview');
          throw new BacktestStop('dry-run', 'dry run');
        },
      }),
      (err: unknown) => err instanceof BacktestStop && err.kind === 'dry-run',
    );
    assert.equal(s.stats().requests, 0);
    const preview = seen as RequestPreview | null;
    assert.ok(preview);
    assert.equal(preview.time, FROM);
    assert.equal(preview.remainingSlots, DECISIONS);
    assert.equal(preview.prompts.length, PAIRS.length);
    for (const p of preview.prompts) assert.ok(p.tokens! > 1000 && p.tokens! <= 2500);
  });
});

describe('what the model answers', () => {
  test('the fallback alarm stops a run whose answers are mostly invalid, saying why with an example', async () => {
    // two prompts in five get a wrong type, in the answer and in the repair round
    const invalid: ModelServerOptions['answer'] = (q) =>
      q.draw < 0.4
        ? {
            tool: q.hasPosition ? 'signal_hold' : 'signal_wait',
            arguments: { ...argsFor('signal_wait', q.pair, 'x'), rsi_value: 'high' },
          }
        : defaultAnswer(q);
    const s = await server({ answer: invalid });
    const cache = DecisionCache.inMemory();
    await assert.rejects(modelBacktest(s.url, { cache, concurrency: 8 }), (err: unknown) => {
      assert.ok(err instanceof BacktestStop && err.kind === 'fallbacks', String(err));
      assert.match(err.message, /^fallback alarm: \d+ of the first \d+ model decisions/);
      assert.match(err.message, /more than (20 % of the first 50|backtest\.fallback_alarm_pct 20 %)/);
      assert.match(err.message, /why, by kind: wrong type or out of range \d+/);
      assert.match(
        err.message,
        /a rejected answer \([A-Z]+\/USDT:USDT at 2025-05-25T.*\): tool call signal_(wait|hold) \{.*"rsi_value":"high"/,
      );
      assert.match(err.message, /its problems: answer 1: rsi_value must be a number in 0\.\.100, got "high"/);
      assert.match(err.message, /--allow-fallbacks/);
      return true;
    });
    const asked = s.stats().requests;
    assert.ok(asked < 2 * DECISIONS, 'the alarm came late');

    // the invalid answers are cached as they were: a rerun replays the same fallbacks without asking
    await assert.rejects(
      modelBacktest(s.url, { cache, concurrency: 8 }),
      (err: unknown) => err instanceof BacktestStop && err.kind === 'fallbacks',
    );
    assert.equal(s.stats().requests, asked, 'the rerun asked the model again');

    const allowed = await modelBacktest(s.url, { cache, concurrency: 8, allowFallbacks: true });
    const llm = allowed.result.llm!;
    assert.ok(llm.fallbacks.decisions > 20);
    assert.equal(llm.fallbacks.by_reason.invalid_value, llm.fallbacks.decisions);
    assert.equal(allowed.result.metrics.fallbacks, llm.fallbacks.decisions);
    assert.ok(Math.abs(llm.fallbacks.pct! - (100 * llm.fallbacks.decisions) / llm.decisions) < 1e-9);
    // a fallback took two requests (the answer and the repair round)
    assert.equal(llm.requests, llm.decisions + llm.fallbacks.decisions);
  });

  test('extra fields in a tool call are dropped and counted; the call is accepted', async () => {
    const chatty: ModelServerOptions['answer'] = (q) => {
      const reply = defaultAnswer(q);
      if (!('tool' in reply) || Math.floor(q.draw * 1000) % 3 !== 0) return reply;
      return {
        ...reply,
        arguments: { ...(reply.arguments as object), note: 'just saying', confidence_reasoning: 'gut' },
      };
    };
    let extra = false;
    const s = await server({ answer: (q) => (extra ? chatty(q) : defaultAnswer(q)) });
    const plain = await modelBacktest(s.url, { cache: DecisionCache.inMemory(), concurrency: 8 });
    extra = true;
    const { result, decisions } = await modelBacktest(s.url, { cache: DecisionCache.inMemory(), concurrency: 8 });
    const rows = decisions.toArray().filter((d) => d.dropped_fields.length > 0);
    assert.ok(rows.length >= 10, `too few answers had extra fields: ${rows.length}`);
    for (const r of rows) assert.deepEqual(r.dropped_fields, ['note', 'confidence_reasoning']);
    assert.equal(result.metrics.fallbacks, 0);
    assert.deepEqual(result.llm!.extra_fields, {
      decisions: rows.length,
      fields: { confidence_reasoning: rows.length, note: rows.length },
    });
    // the same decisions as without the extra fields: the same trades
    assert.deepEqual(
      result.trades.map((t) => [t.pair, t.entry_time, t.exit_time, t.pnl]),
      plain.result.trades.map((t) => [t.pair, t.entry_time, t.exit_time, t.pnl]),
    );
  });
});
