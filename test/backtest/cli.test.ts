/**
 * `llm-trader backtest` end to end, as a user runs it: the real command in a child process, the recorded data of
 * ../shared/data, and for the model a scripted OpenAI-compatible server reached through --llm-base-url.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BacktestResultFile } from '../../src/backtest/result';
import { readBacktestLog } from '../helpers/backtest';
import { runCli, runCliAsync as spawnCli } from '../helpers/cli';
import { startModelServer, type ModelServer } from '../helpers/model-server';
import { DEFAULT_USAGE, startScriptedServer, type ScriptedServer } from '../helpers/scripted-openai-server';

const BTC = 'BTC/USDT:USDT';
const DAY_MS = 24 * 3_600_000;
const MAIN_MS = 30 * 60_000;
/** three days into the data (indicators warmed up), then four decision times */
const FROM = Date.UTC(2025, 4, 22, 0, 30) + 3 * DAY_MS;
const TO = FROM + 3 * MAIN_MS;

/** The CLI in a child process without blocking this one (the scripted server runs in this process), no API key. */
const runCliAsync = (args: string[]) => spawnCli(args, { OPENAI_API_KEY: '' });

const readResult = (dir: string): { text: string; result: BacktestResultFile } => {
  const text = readFileSync(join(dir, 'result.json'), 'utf8');
  return { text, result: JSON.parse(text) as BacktestResultFile };
};

describe('llm-trader backtest', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'backtest-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('baseline with the documented defaults: result.json, decision log, report and the comparison table', () => {
    const out = join(dir, 'baseline');
    const res = runCli([
      'backtest',
      '--data',
      '../shared/data',
      '--pairs',
      BTC,
      '--policy',
      'baseline',
      '--from',
      '2025-05-25',
      '--to',
      '2025-06-05',
      '--out',
      out,
    ]);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /policy baseline/);
    assert.match(res.stdout, /buy-and-hold BTC\/USDT:USDT/);
    // 2025-05-25 00:00 to 2025-06-05 00:00 inclusive: 11 days x 48 closes + 1 = 529 decision times
    assert.match(res.stdout, /529 pair-cycles \(529 decision times x 1 pairs\); the backtest took \d+\.\d\d s/);
    const { result } = readResult(out);
    assert.equal(result.range.from, Date.UTC(2025, 4, 25));
    assert.equal(result.range.to, Date.UTC(2025, 5, 5));
    assert.equal(result.config.llm.api_key, '');
    assert.ok(existsSync(join(out, 'report.html')));
    const lines = readBacktestLog(join(out, 'llm_decisions.jsonl'));
    assert.equal(lines.length, result.metrics.decisions);
    assert.equal(lines[0]!.pair, BTC);
    // the sizes of what was written, at the end of the run
    assert.match(
      res.stdout,
      /result\.json \(\d+(\.\d)? [kM]B\), .*llm_decisions\.jsonl \(\d+(\.\d)? [kM]B\) and .*report\.html \(\d+(\.\d)? [kM]B\)/,
    );
  });

  test('bad usage exits 2 and says what to pass', () => {
    const policy = runCli(['backtest', '--data', '../shared/data', '--pairs', BTC, '--policy', 'gpt']);
    assert.equal(policy.status, 2);
    assert.match(policy.stderr, /--policy must be baseline, openai or replay:<llm_decisions.jsonl>, got "gpt"/);
    const range = runCli(['backtest', '--data', '../shared/data', '--pairs', BTC, '--from', '2024-01-01']);
    assert.equal(range.status, 2);
    assert.match(range.stderr, /before the data; the data of every pair covers 2025-05-22T00:30/);
    const data = runCli(['backtest', '--data', join(dir, 'nowhere'), '--pairs', BTC]);
    assert.equal(data.status, 2);
    assert.match(data.stderr, /is not a folder/);
  });

  describe('--policy openai against a scripted OpenAI-compatible server', () => {
    let server: ScriptedServer;
    let config: string;
    before(async () => {
      server = await startScriptedServer();
      config = join(dir, 'openai.json');
      // llm.api_base stays the default (api.openai.com): --llm-base-url must override it
      writeFileSync(
        config,
        JSON.stringify({
          data_dir: join(dir, 'user_data'),
          llm: {
            model: 'scripted-model',
            retry_times: 0,
            timeout: 20,
            pricing: { 'scripted-model': { input: 0.4, output: 1.6 } },
          },
        }),
      );
    });
    after(async () => server?.close());

    const args = (out: string, extra: string[] = []) => [
      'backtest',
      '--config',
      config,
      '--data',
      '../shared/data/binanceusdm',
      '--pairs',
      BTC,
      '--from',
      String(FROM),
      '--to',
      String(TO),
      '--policy',
      'openai',
      '--llm-base-url',
      server.url,
      '--out',
      out,
      ...extra,
    ];

    test('asks the model once per decision, then a rerun is served by the decision cache: 0 requests, same result', async () => {
      const reason = 'Breakout above the 1h range with rising volume; invalidated below support.';
      server.push(
        {
          reply: 'tool_calls',
          calls: [
            {
              name: 'signal_entry_long',
              arguments: {
                pair: BTC,
                leverage: 3,
                stake_amount: null,
                confidence_score: 80,
                key_support: 100_000,
                key_resistance: 130_000,
                rsi_value: 55,
                trend_strength: 'medium',
                reason,
              },
            },
          ],
        },
        {
          reply: 'tool_calls',
          calls: [
            {
              name: 'signal_exit',
              arguments: { pair: BTC, confidence_score: 70, rsi_value: 60, trade_score: 60, reason: 'Target reached.' },
            },
          ],
        },
        {
          reply: 'tool_calls',
          calls: [
            { name: 'signal_wait', arguments: { pair: BTC, confidence_score: 40, rsi_value: 58, reason: 'No setup.' } },
          ],
        },
      );
      const first = await runCliAsync(args(join(dir, 'openai-1')));
      assert.equal(first.status, 0, first.stderr);
      // four decision times: three decisions, then the end of the run (no decision asked)
      assert.equal(server.requests.length, 3);
      assert.equal(server.remaining(), 0);
      const body = server.requests[0]!.body as {
        model: string;
        messages: { role: string; content: string }[];
        tools: unknown[];
      };
      assert.equal(body.model, 'scripted-model');
      assert.equal(body.messages[0]!.role, 'system');
      assert.match(body.messages[1]!.content, /BTC\/USDT:USDT/);
      assert.ok(body.tools.length === 3);
      const { text, result } = readResult(join(dir, 'openai-1'));
      assert.deepEqual(
        readBacktestLog(join(dir, 'openai-1', 'llm_decisions.jsonl')).map((d) => [d.action, d.source, d.outcome]),
        [
          ['signal_entry_long', 'openai', 'executed'],
          ['signal_exit', 'openai', 'executed'],
          ['signal_wait', 'openai', 'none'],
        ],
      );
      assert.equal(result.trades.length, 1);
      assert.equal(result.trades[0]!.entry_reason, reason);
      assert.equal(result.trades[0]!.leverage, 3);
      assert.equal(result.config.llm.api_base, server.url);
      // tokens: 3 requests x the scripted usage; cost at the configured price (0.4 and 1.6 USD per million)
      assert.equal(result.metrics.model_tokens_in, 3 * DEFAULT_USAGE.prompt_tokens);
      assert.equal(result.metrics.model_tokens_out, 3 * DEFAULT_USAGE.completion_tokens);
      const cost = (300 / 1e6) * 0.4 + (30 / 1e6) * 1.6;
      assert.ok(Math.abs(result.metrics.estimated_cost_usd! - cost) < 1e-12);
      assert.equal(result.llm?.requests, 3);
      assert.ok(Math.abs(result.llm!.cost_usd! - cost) < 1e-12);
      assert.deepEqual(result.llm?.price, {
        input: 0.4,
        cached_input: null,
        output: 1.6,
        model: 'scripted-model',
        source: 'config',
      });
      assert.ok(result.comparison.some((r) => r.kind === 'baseline'));
      const log = readFileSync(join(dir, 'openai-1', 'llm_decisions.jsonl'), 'utf8')
        .trim()
        .split('\n');
      assert.equal(log.length, 3);
      assert.equal(
        (JSON.parse(log[0]!) as { market_context: { messages: unknown[] } }).market_context.messages.length,
        2,
      );

      const second = await runCliAsync(args(join(dir, 'openai-2')));
      assert.equal(second.status, 0, second.stderr);
      assert.equal(server.requests.length, 3, 'the rerun asked the model again');
      assert.match(second.stdout, /3 from the decision cache/);
      assert.ok(readResult(join(dir, 'openai-2')).text === text, 'the cached rerun gave another result.json');

      const checked = await runCliAsync(args(join(dir, 'openai-3'), ['--check-lookahead', '--lookahead-samples', '4']));
      assert.equal(checked.status, 0, checked.stderr);
      assert.equal(server.requests.length, 3, 'the look-ahead check asked the model');
      assert.equal(readResult(join(dir, 'openai-3')).result.lookahead?.passed, true);
      assert.match(checked.stdout, /look-ahead check: passed/);
    });

    test('--no-cache asks the model again', async () => {
      // the script is exhausted: the server answers 400, so the run fails, which shows the request was made
      const before = server.requests.length;
      const res = await runCliAsync(args(join(dir, 'openai-4'), ['--no-cache']));
      assert.equal(res.status, 1);
      assert.ok(server.requests.length > before);
      assert.match(res.stderr, /backtest stopped at BTC\/USDT:USDT/);
    });
  });
});

describe('llm-trader backtest --policy openai: preview, progress, dry run, cost cap, API key', () => {
  let dir: string;
  let model: ModelServer;
  const ETH = 'ETH/USDT:USDT';
  const configFile = (name: string, llm: Record<string, unknown> = {}) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        data_dir: join(dir, `${name}-data`),
        llm: { model: 'gpt-4.1-mini', retry_times: 0, timeout: 20, ...llm },
      }),
    );
    return file;
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backtest-llm-cli-'));
    model = await startModelServer({ usage: { promptTokens: 2400, completionTokens: 90 } });
  });
  after(async () => {
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const args = (config: string, out: string, extra: string[] = []) => [
    'backtest',
    '--config',
    config,
    '--data',
    '../shared/data/binanceusdm',
    '--pairs',
    BTC,
    ETH,
    '--from',
    String(FROM),
    '--to',
    String(TO),
    '--policy',
    'openai',
    '--llm-base-url',
    model.url,
    '--out',
    out,
    ...extra,
  ];
  const PREVIEW = [
    /before the first request to gpt-4\.1-mini at http:\/\/127\.0\.0\.1:\d+\/v1 \(decision time \S+, 1 of 4\):/,
    /\n {2}decisions +6 to ask \(the run has up to 6\)/,
    /\n {2}input tokens +~\d+\.\d+k \([\d,]+ per prompt, the 2 prompt\(s\) of this decision time/,
    /\n {2}output tokens +~900 \(assumed 150 per answer/,
    /\n {2}cost +~0\.\d{4} USD at 0\.40 input, 0\.10 cached input, 1\.60 output USD per million tokens \(built-in price of gpt-4\.1-mini/,
    /\n {2}wall time +~3 answer times at concurrency 8 \(1 round\(s\) of requests for each of 3 decision times\): 3s at 1 s per answer/,
  ];

  test('--dry-run prints the preview and stops before the first request: nothing sent, nothing written', async () => {
    const out = join(dir, 'dry');
    const res = await runCliAsync(args(configFile('dry'), out, ['--dry-run']));
    assert.equal(res.status, 0, res.stderr);
    for (const re of PREVIEW) assert.match(res.stderr, re);
    assert.match(res.stderr, /dry run \(--dry-run\): nothing was sent to the model and nothing was written/);
    assert.equal(model.stats().requests, 0);
    assert.ok(!existsSync(join(out, 'result.json')));
    assert.ok(!existsSync(join(out, 'llm_decisions.jsonl')) && !existsSync(join(out, 'llm_decisions.jsonl.partial')));
  });

  test('a run shows the preview, a progress line in a log, and the tokens and cost', async () => {
    model.resetStats();
    const out = join(dir, 'run');
    const res = await runCliAsync(args(configFile('run'), out));
    assert.equal(res.status, 0, res.stderr);
    for (const re of PREVIEW) assert.match(res.stderr, re);
    assert.match(
      res.stderr,
      /\nbacktest: 6\/6 decisions \(100\.0 %\) up to \S+ \| 0 from the cache \| 6 requests, 0\.0066 USD \| tokens 14\.4k in \(0 cached\) \/ 540 out \| fallbacks 0\.0 % \| concurrency 8 \| ETA 0s\n/,
    );
    assert.match(
      res.stdout,
      /model gpt-4\.1-mini: 6 decisions in 6 requests; tokens 14\.4k in \(0 cached\) \/ 540 out, 0\.0066 USD/,
    );
    assert.match(res.stdout, /this run: 6 requests to the model, 0\.0066 USD/);
    assert.equal(model.stats().questions, 6);
    const { result } = readResult(out);
    assert.equal(result.llm?.requests, 6);
    assert.ok(existsSync(join(out, 'llm_decisions.jsonl')) && !existsSync(join(out, 'llm_decisions.jsonl.partial')));

    // the same command again: no request, no preview (nothing to pay for), the same result.json
    const again = await runCliAsync(args(configFile('run'), join(dir, 'run-again')));
    assert.equal(again.status, 0, again.stderr);
    assert.equal(model.stats().requests, 6);
    assert.doesNotMatch(again.stderr, /before the first request/);
    assert.match(again.stdout, /this run: 0 requests to the model/);
    assert.ok(readResult(join(dir, 'run-again')).text === readResult(out).text);
  });

  test('--max-cost stops the run before its spend would pass the cap; the same command continues from the cache', async () => {
    model.resetStats();
    const config = configFile('capped');
    const out = join(dir, 'capped');
    // a decision costs 0.0011 USD here; up to 0.0059 USD (two requests at the output limit) is reserved while it runs
    const first = await runCliAsync(args(config, out, ['--max-cost', '0.015']));
    assert.equal(first.status, 1, first.stderr);
    assert.match(
      first.stderr,
      /the cost cap stopped the run: 0\.00\d+ USD spent on 5 request\(s\) of 0\.0150 USD allowed/,
    );
    assert.match(first.stderr, /the same command continues from there/);
    assert.ok(!existsSync(join(out, 'result.json')));
    assert.equal(model.stats().questions, 5);
    const second = await runCliAsync(args(config, out, ['--max-cost', '0.015']));
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /decisions +1 to ask, 5 answered from the decision cache/);
    assert.match(second.stdout, /this run: 1 requests to the model/);
    assert.equal(model.stats().questions, 6);
    assert.equal(model.stats().distinctQuestions, 6, 'a decision was paid twice');
  });

  test('--max-cost for a model without a price is refused; so is a remote endpoint without an API key', async () => {
    const unpriced = runCli(
      args(configFile('unpriced', { model: 'qwen3-30b-a3b' }), join(dir, 'x'), ['--max-cost', '1']),
    );
    assert.equal(unpriced.status, 2);
    assert.match(unpriced.stderr, /needs the price of model "qwen3-30b-a3b"/);
    const before = model.stats().requests;
    const remote = runCli(
      [...args(configFile('remote'), join(dir, 'y')), '--llm-base-url', 'https://api.example.com/v1'],
      { OPENAI_API_KEY: '' },
    );
    assert.equal(remote.status, 1);
    assert.match(remote.stderr, /no API key for https:\/\/api\.example\.com\/v1: set OPENAI_API_KEY/);
    assert.equal(model.stats().requests, before);
  });
});
