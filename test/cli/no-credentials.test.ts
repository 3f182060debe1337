/**
 * Credentials inside URLs (`llm.api_base` with `user:password@` and `?api-key=`), API keys and the exchange secret
 * reach no file the project writes: a data folder filled by import-data, a backtest (result.json, report, decision
 * log) and a journal are scanned byte by byte, and so are the config printout, the logs and the workflow memo.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load';
import { openaiPolicy } from '../../src/backtest/policy';
import { Journal } from '../../src/store/journal';
import { createLogger } from '../../src/worker/logger';
import { configSummary } from '../../src/worker/starter';
import { repoRoot, runCli } from '../helpers/cli';

const USER = 'alice-proxy-user';
const PASSWORD = 'PASSWORD-in-url-123';
const QUERY_KEY = 'QUERYKEY-in-url-4242';
const LLM_KEY = 'sk-llm-key-abcdefgh123456';
const EXCHANGE_SECRET = 'exchange-secret-zyxw98765';
const SECRETS = [USER, PASSWORD, QUERY_KEY, LLM_KEY, EXCHANGE_SECRET];
const API_BASE = `https://${USER}:${PASSWORD}@llm-proxy.example/v1?api-version=2024-06-01&api-key=${QUERY_KEY}`;

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

function assertClean(where: string, text: string): void {
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${where} contains ${secret}`);
}

describe('credentials reach no file the project writes', () => {
  let dir: string;
  let dataDir: string;
  let configFile: string;
  const env = { OPENAI_API_KEY: LLM_KEY, EXCHANGE_API_SECRET: EXCHANGE_SECRET };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'no-credentials-'));
    dataDir = join(dir, 'user_data');
    configFile = join(dir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({ data_dir: dataDir, pairs: ['BTC/USDT:USDT'], llm: { api_base: API_BASE } }),
    );
    const csv = join(dir, 'csv');
    mkdirSync(csv);
    for (const f of ['30m', '1h', '1d', 'funding-8h']) {
      const name = `BTC_USDT_USDT-${f}.csv.gz`;
      copyFileSync(join(repoRoot, '../shared/data/binanceusdm', name), join(csv, name));
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('import-data, backtest, journal: every file under the data folder is clean', () => {
    const imported = runCli(['import-data', join(dir, 'csv'), '-c', configFile], env);
    assert.equal(imported.status, 0, imported.stderr);
    const out = join(dataDir, 'backtests', 'run');
    const bt = runCli(['backtest', '-c', configFile, '--from', '2025-05-25', '--to', '2025-05-27', '--out', out], env);
    assert.equal(bt.status, 0, bt.stderr);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as {
      config: { llm: { api_base: string } };
    };
    assert.equal(result.config.llm.api_base, 'https://***@llm-proxy.example/v1?api-version=2024-06-01&api-key=***');

    // a journal entry whose free text quotes the endpoint and the key (a provider error, say)
    const config = loadConfig(configFile, env);
    const journal = Journal.fromConfig(config, env);
    try {
      journal.recordDecision({
        owner: 'pair:binanceusdm:BTC/USDT:USDT',
        pair: 'BTC/USDT:USDT',
        run: 'paper',
        record: {
          time: Date.UTC(2025, 5, 1),
          tool: 'signal_wait',
          reason: `model unavailable: POST ${API_BASE}/chat/completions with Bearer ${LLM_KEY} failed`,
          confidence: 0,
          pnlPct: null,
          source: 'fallback',
          outcome: 'none',
          detail: `exchange said: invalid signature for secret ${EXCHANGE_SECRET}`,
        },
        result: null,
        verdict: null,
        context: null,
        clientOrderId: null,
      });
    } finally {
      journal.close();
    }

    const written = files(dataDir);
    assert.ok(written.some((f) => f.endsWith('result.json')) && written.some((f) => f.endsWith('.jsonl')));
    assert.ok(written.some((f) => f.endsWith('candles.sqlite')) && written.some((f) => f.endsWith('journal.sqlite')));
    for (const f of written) assertClean(f, readFileSync(f, 'latin1'));
    assertClean('backtest stdout', bt.stdout + bt.stderr);
  });

  test('config printing, logs, the workflow memo and the openai policy id are clean', async () => {
    const printed = runCli(['config', '-c', configFile], env);
    assert.equal(printed.status, 0, printed.stderr);
    assertClean('llm-trader config', printed.stdout);
    assert.match(
      printed.stdout,
      /"api_base": "https:\/\/\*\*\*@llm-proxy\.example\/v1\?api-version=2024-06-01&api-key=\*\*\*"/,
    );

    const config = loadConfig(configFile, env);
    let logged = '';
    const logger = createLogger({
      format: 'json',
      secrets: [LLM_KEY, EXCHANGE_SECRET],
      stream: { write: (t: string) => (logged += t) },
    });
    logger.error(`request to ${API_BASE} failed`, { url: API_BASE, headers: { authorization: `Bearer ${LLM_KEY}` } });
    assertClean('log', logged);
    assert.match(logged, /api-key=\*\*\*/);

    const memo = configSummary({ ...config, llm: { ...config.llm, provider: 'openai' } }, env);
    assertClean('memo', JSON.stringify(memo));

    const policy = await openaiPolicy(config.llm, { cache: null });
    assertClean('policy id', policy.id);
    assert.match(policy.id, /@https:\/\/\*\*\*@llm-proxy\.example\/v1\?api-version=2024-06-01&api-key=\*\*\*/);
  });
});
