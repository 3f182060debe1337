import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { parseConfig, type Config } from '../../src/core/config';
import { RecordedMarketSource, csvRecordedData } from '../../src/exchange/market-source';
import { OperatorError } from '../../src/worker/errors';
import {
  decideAttempts,
  decideTimeoutMs,
  initialSearchAttributes,
  pairMemo,
  pairTraderInput,
  replaySchedule,
  startPairs,
  withStartOverrides,
} from '../../src/worker/starter';
import { SEARCH_ATTRIBUTES, type ReplaySchedule } from '../../src/workflows/messages';

const DATA_DIR = path.resolve(process.cwd(), '../shared/data/binanceusdm');
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const FAKE_LLM_KEY = 'sk-FAKE-llm-key-0123456789abcdef';
const FAKE_EXCHANGE_KEY = 'FAKE-exchange-key-ABCDEFGH12345678';
const FAKE_EXCHANGE_SECRET = 'FAKE-exchange-secret-ZYXWVUT987654321';
const FAKE_TEMPORAL_KEY = 'FAKE-temporal-api-key-QWERTY-000111';
const ENV = { TEMPORAL_API_KEY: FAKE_TEMPORAL_KEY } as NodeJS.ProcessEnv;
const SECRETS = [FAKE_LLM_KEY, FAKE_EXCHANGE_KEY, FAKE_EXCHANGE_SECRET, FAKE_TEMPORAL_KEY];

function config(raw: Record<string, unknown> = {}): Config {
  const parsed = parseConfig(raw);
  if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('; '));
  return parsed.config;
}

/** A config with every secret set, as a user with keys in the file would have it. */
function configWithSecrets(raw: Record<string, unknown> = {}): Config {
  return config({
    ...raw,
    llm: { provider: 'openai', api_key: FAKE_LLM_KEY, ...(raw.llm as object | undefined) },
    exchange: { api_key: FAKE_EXCHANGE_KEY, api_secret: FAKE_EXCHANGE_SECRET },
  });
}

function assertNoSecret(value: unknown, what: string): void {
  const json = JSON.stringify(value);
  for (const secret of SECRETS) assert.ok(!json.includes(secret), `${what} contains the secret ${secret}`);
}

/** Open times of a recorded candle file (first column), read here independently of the code under test. */
function openTimes(file: string): number[] {
  const text = gunzipSync(readFileSync(path.join(DATA_DIR, file))).toString('utf8');
  return text
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => Number(l.split(',')[0]));
}

describe('decide activity timeout and attempts', () => {
  test('the timeout covers both answer rounds with every retry and Retry-After wait, plus the margin', () => {
    // defaults: timeout 60 s, retry_times 2 -> per round 3 requests x 60 s + 2 waits x 30 s = 240 s; x2 + 30 s = 510 s
    assert.equal(decideTimeoutMs({ timeout: 60, retry_times: 2 }), 510_000);
    // no retries, 10 s: 2 x 10 s + 30 s = 50 s
    assert.equal(decideTimeoutMs({ timeout: 10, retry_times: 0 }), 50_000);
    // 2.5 s, 1 retry: per round 2 x 2.5 s + 30 s = 35 s; x2 + 30 s = 100 s
    assert.equal(decideTimeoutMs({ timeout: 2.5, retry_times: 1 }), 100_000);
  });

  test('attempts: as many timeouts as fit in one candle of wall time, 1 to 3', () => {
    // 30m = 1800 s; 1800 / 510 = 3.5 -> 3
    assert.equal(decideAttempts(config()), 3);
    // timeout 120 s: 2 x (3 x 120 + 60) + 30 = 870 s; 1800 / 870 = 2.07 -> 2
    assert.equal(decideAttempts(config({ llm: { timeout: 120 } })), 2);
    // timeout 600 s, 10 retries: 2 x (11 x 600 + 10 x 30) + 30 = 13830 s > 1800 s -> at least 1
    assert.equal(decideAttempts(config({ llm: { timeout: 600, retry_times: 10 } })), 1);
    // 1d = 86400 s: 169 timeouts fit, capped at 3
    assert.equal(decideAttempts(config({ timeframes: { main: '1d', informative: ['1w'] } })), 3);
    // replay: a candle lasts 2 wall seconds -> 1
    assert.equal(decideAttempts(config({ mode: 'replay' })), 1);
  });
});

describe('pair workflow input, memo and search attributes', () => {
  test('the input carries the configured limits and timings', () => {
    const c = config({
      pairs: ['SOL/USDT:USDT'],
      temporal: { grace_seconds: 7.5, max_cycles_per_run: 40 },
      experience: { max_recent_decisions_context: 8 },
      paper: { maintenance_margin_rate: 0.004 },
      risk: { max_leverage: 10, default_leverage: 3 },
    });
    const input = pairTraderInput(c, 'SOL/USDT:USDT', null, ENV);
    assert.equal(input.pair, 'SOL/USDT:USDT');
    assert.equal(input.exchange, 'binanceusdm');
    assert.equal(input.mode, 'paper');
    assert.equal(input.timeframe, '30m');
    assert.equal(input.graceMs, 7500);
    assert.equal(input.maxCyclesPerRun, 40);
    assert.equal(input.maxRecentDecisions, 8);
    assert.equal(input.maintenanceMarginRate, 0.004);
    assert.deepEqual(input.risk, c.risk);
    assert.equal(input.risk.max_leverage, 10);
    assert.equal(input.decideTimeoutMs, 510_000);
    assert.equal(input.decideAttempts, 3);
    assert.equal(input.replay, null);
    assert.equal(input.carried, undefined);
    assert.equal(input.configSummary.provider, 'baseline');
  });

  test('the status query always has a last decision to show: at least one recent decision is kept', () => {
    const input = pairTraderInput(config({ experience: { max_recent_decisions_context: 0 } }), 'BTC/USDT:USDT', null);
    assert.equal(input.maxRecentDecisions, 1);
  });

  test('replay mode needs a schedule', () => {
    assert.throws(() => pairTraderInput(config({ mode: 'replay' }), 'BTC/USDT:USDT', null), /replay schedule/);
  });

  test('no secret reaches the input, the memo or the search attributes', () => {
    const c = configWithSecrets({ mode: 'live' });
    const input = pairTraderInput(c, 'BTC/USDT:USDT', null, ENV);
    assertNoSecret(input, 'the workflow input');
    assertNoSecret(pairMemo(input), 'the memo');
    assertNoSecret(initialSearchAttributes(input), 'the search attributes');
    // what the memo does say
    assert.equal(input.configSummary.model, 'gpt-4.1-mini');
    assert.equal(input.configSummary.endpoint, 'https://api.openai.com/v1');
    assert.equal(input.configSummary.sandbox, false);
  });

  test('a key pasted into a free-text setting is still hidden, and credentials in the endpoint URL are dropped', () => {
    const c = configWithSecrets({
      llm: { model: `my-${FAKE_LLM_KEY}-model`, api_base: 'https://user:hunter2pass@llm.example.com/v1?key=abc' },
    });
    const input = pairTraderInput(c, 'BTC/USDT:USDT', null, ENV);
    assertNoSecret(input, 'the workflow input');
    assert.equal(input.configSummary.model, 'my-***-model');
    assert.equal(input.configSummary.endpoint, 'https://llm.example.com/v1');
    assert.ok(!JSON.stringify(pairMemo(input)).includes('hunter2pass'));
  });

  test('the memo stays small (the server warns above 2 KiB)', () => {
    const input = pairTraderInput(configWithSecrets({ mode: 'live' }), 'BTC/USDT:USDT', null, ENV);
    assert.ok(JSON.stringify(pairMemo(input)).length < 2048);
  });

  test('the initial search attributes are the registered ones, with their types', () => {
    const input = pairTraderInput(config({ mode: 'paper' }), 'ETH/USDT:USDT', null);
    const attrs = initialSearchAttributes(input);
    const typeOf = { KEYWORD: 'Keyword', BOOL: 'Bool' } as Record<string, string>;
    assert.deepEqual(
      Object.fromEntries(attrs.map((a) => [a.key.name, typeOf[a.key.type]])),
      SEARCH_ATTRIBUTES as Record<string, string>,
    );
    const values = Object.fromEntries(attrs.map((a) => [a.key.name, a.value]));
    assert.deepEqual(values, {
      TradingPair: 'ETH/USDT:USDT',
      TradingMode: 'paper',
      Paused: false,
      PositionSide: 'flat',
      LastAction: 'none',
    });
  });

  test('command-line overrides replace mode, pairs and the replay folder only', () => {
    const c = config();
    const o = withStartOverrides(c, { mode: 'replay', pairs: ['XRP/USDT:USDT'], replayData: '/data/x' });
    assert.equal(o.mode, 'replay');
    assert.deepEqual(o.pairs, ['XRP/USDT:USDT']);
    assert.equal(o.replay.data, '/data/x');
    assert.equal(o.replay.seconds_per_candle, c.replay.seconds_per_candle);
    assert.deepEqual(o.risk, c.risk);
    assert.deepEqual(withStartOverrides(c, {}), c);
  });
});

describe('replay schedule from the recorded data', () => {
  const btc = {
    m30: openTimes('BTC_USDT_USDT-30m.csv.gz'),
    h1: openTimes('BTC_USDT_USDT-1h.csv.gz'),
    d1: openTimes('BTC_USDT_USDT-1d.csv.gz'),
  };
  const replayConfig = (raw: Record<string, unknown> = {}): Config =>
    config({ mode: 'replay', replay: { data: DATA_DIR, ...raw } });

  /** Reference: the last 30m close at which the 30m, 1h, 4h (aggregated from 1h) and 1d candles are all recorded. */
  function expectedEnd(): number {
    const floor30 = (t: number): number => Math.floor(t / (30 * MIN)) * 30 * MIN;
    // a timeframe of length L whose last recorded candle opens at `last` serves every asOf < last + 2L
    const servedUntil = (last: number, length: number): number => floor30(last + 2 * length - 1);
    const buckets = new Map<number, number>();
    for (const t of btc.h1)
      buckets.set(Math.floor(t / (4 * HOUR)) * 4 * HOUR, (buckets.get(Math.floor(t / (4 * HOUR)) * 4 * HOUR) ?? 0) + 1);
    const complete4h = [...buckets].filter(([, n]) => n === 4).map(([open]) => open);
    return Math.min(
      btc.m30.at(-1)! + 30 * MIN,
      servedUntil(btc.h1.at(-1)!, HOUR),
      servedUntil(Math.max(...complete4h), 4 * HOUR),
      servedUntil(btc.d1.at(-1)!, DAY),
    );
  }

  test('default: 20 days after the first candle, until the last close every timeframe can serve', async () => {
    const schedule = await replaySchedule(replayConfig(), 'BTC/USDT:USDT');
    // the 30m data starts on the half-hour grid, so first + 20 days is already a candle boundary
    assert.equal(btc.m30[0]! % (30 * MIN), 0);
    assert.equal(schedule.recordedStart, btc.m30[0]! + 20 * DAY);
    assert.equal(schedule.recordedEnd, expectedEnd());
    assert.equal(schedule.wallStart, null);
    assert.equal(schedule.secondsPerCandle, 2);
  });

  test('the market source serves every configured timeframe at the end, and not one candle later', async () => {
    const c = replayConfig();
    const schedule = await replaySchedule(c, 'BTC/USDT:USDT');
    const source = new RecordedMarketSource(csvRecordedData(DATA_DIR));
    for (const tf of [c.timeframes.main, ...c.timeframes.informative]) {
      const candles = await source.candles('BTC/USDT:USDT', tf, schedule.recordedEnd, 1);
      assert.equal(candles.length, 1, `${tf} at the end`);
    }
    const later = schedule.recordedEnd + 30 * MIN;
    const failures = await Promise.all(
      [c.timeframes.main, ...c.timeframes.informative].map((tf) =>
        source.candles('BTC/USDT:USDT', tf, later, 1).then(
          () => null,
          () => tf,
        ),
      ),
    );
    assert.ok(
      failures.some((f) => f !== null),
      'one candle after the end, some timeframe is past its data',
    );
  });

  test('replay.start sets the start', async () => {
    const schedule = await replaySchedule(replayConfig({ start: '2025-06-10T00:00:00Z' }), 'ETH/USDT:USDT');
    assert.equal(schedule.recordedStart, Date.UTC(2025, 5, 10));
  });

  test('a start outside the data or not a date is refused with the data range', async () => {
    await assert.rejects(
      replaySchedule(replayConfig({ start: '2024-01-01T00:00:00Z' }), 'BTC/USDT:USDT'),
      (err: Error) => err instanceof OperatorError && /outside the recorded data/.test(err.message),
    );
    // not a date: the config schema refuses it before any schedule is built
    assert.throws(() => replayConfig({ start: 'next tuesday' }), /replay\.start must be an existing UTC date/);
  });

  test('a pair without recorded data is refused, naming the pair and the folder', async () => {
    await assert.rejects(
      replaySchedule(replayConfig(), 'PEPE/USDT:USDT'),
      (err: Error) =>
        err instanceof OperatorError && err.message.includes('PEPE/USDT:USDT') && err.message.includes(DATA_DIR),
    );
  });

  test('the replay window is in the memo; the input carries the schedule', async () => {
    const c = replayConfig({ start: '2025-06-10T00:00:00Z' });
    const schedule: ReplaySchedule = await replaySchedule(c, 'BTC/USDT:USDT');
    const input = pairTraderInput(c, 'BTC/USDT:USDT', schedule);
    assert.deepEqual(input.replay, schedule);
    assert.deepEqual(pairMemo(input).replay, {
      from: '2025-06-10T00:00:00.000Z',
      to: new Date(schedule.recordedEnd).toISOString(),
      secondsPerCandle: 2,
    });
  });
});

describe('starting pairs', () => {
  interface StartCall {
    type: string;
    options: {
      workflowId: string;
      taskQueue: string;
      args: unknown[];
      memo: Record<string, unknown>;
      typedSearchAttributes: unknown;
    };
  }

  /** A client whose `workflow.start` records its calls and treats the ids in `running` as already started. */
  function fakeClient(running: Set<string>, failWith?: Error): { client: Client; calls: StartCall[] } {
    const calls: StartCall[] = [];
    const client = {
      workflow: {
        start: (type: string, options: StartCall['options']) => {
          calls.push({ type, options });
          if (failWith) return Promise.reject(failWith);
          if (running.has(options.workflowId)) {
            return Promise.reject(
              new WorkflowExecutionAlreadyStartedError('already started', options.workflowId, type),
            );
          }
          running.add(options.workflowId);
          return Promise.resolve({ firstExecutionRunId: `run-${calls.length}` });
        },
      },
    } as unknown as Client;
    return { client, calls };
  }

  const settings = { taskQueue: 'q-test', namespace: 'ns-test' };

  test('starts each pair once; a second start leaves running pairs alone', async () => {
    const c = configWithSecrets({ pairs: ['BTC/USDT:USDT', 'ETH/USDT:USDT'] });
    const running = new Set<string>();
    const first = fakeClient(running);
    const results = await startPairs(first.client, settings, c, c.pairs, ENV);
    assert.deepEqual(
      results.map((r) => [r.pair, r.outcome, r.workflowId]),
      [
        ['BTC/USDT:USDT', 'started', 'pair:binanceusdm:BTC/USDT:USDT'],
        ['ETH/USDT:USDT', 'started', 'pair:binanceusdm:ETH/USDT:USDT'],
      ],
    );
    for (const call of first.calls) {
      assert.equal(call.type, 'pairTrader');
      assert.equal(call.options.taskQueue, 'q-test');
      assertNoSecret(call.options, 'the start request');
    }
    const second = await startPairs(fakeClient(running).client, settings, c, c.pairs, ENV);
    assert.deepEqual(
      second.map((r) => [r.pair, r.outcome, r.runId]),
      [
        ['BTC/USDT:USDT', 'already-running', null],
        ['ETH/USDT:USDT', 'already-running', null],
      ],
    );
  });

  test('unregistered search attributes: the error says to run llm-trader setup', async () => {
    const refused = new Error('Namespace ns-test has no mapping defined for search attribute TradingPair');
    const { client } = fakeClient(new Set(), refused);
    await assert.rejects(
      startPairs(client, settings, config(), ['BTC/USDT:USDT']),
      (err: Error) =>
        err instanceof OperatorError && /llm-trader setup/.test(err.message) && /ns-test/.test(err.message),
    );
  });
});
