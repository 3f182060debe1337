import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decisionId } from '../../src/core/ids';
import { evaluateTrade, reflectOnTrade, rewardForTrade, reviewTrade } from '../../src/core/learning';
import type { ToolName } from '../../src/core/types';
import { wrapText } from '../../src/cli/commands/decisions';
import { Journal, journalContext, journalPaths } from '../../src/store/journal';
import { Redactor } from '../../src/core/redact';
import { repoRoot } from '../helpers/cli';
import { decisionContext } from '../helpers/llm-fixtures';
import { makeTrade } from '../core/learning/make-trade';

const bin = fileURLToPath(new URL('../../bin/llm-trader.js', import.meta.url));

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: repoRoot, env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const BTC = 'BTC/USDT:USDT';
const PAPER_OWNER = `pair:binanceusdm:${BTC}`;
const REPLAY_OWNER = `replay-9:${BTC}`;
const T0 = Date.UTC(2025, 5, 1, 10, 0);
const CANDLE = 30 * 60_000;
/** A long user message: the prompt must come out whole, wrapped, not cut. */
const LONG_USER = `MARKET ${'ema20 above ema50, rsi 47.5, adx rising; '.repeat(12)}END-OF-PROMPT`;

describe('decisions and trades by run; one decision in full', () => {
  let dir: string;
  let configFile: string;
  let database: string;
  const shownId = decisionId(PAPER_OWNER, BTC, T0 + 31 * CANDLE);

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'llm-trader-journal-verbs-'));
    configFile = path.join(dir, 'config.json');
    const dataDir = path.join(dir, 'data');
    writeFileSync(configFile, JSON.stringify({ data_dir: dataDir }));
    database = journalPaths(dataDir).database;
    const journal = Journal.open({ dataDir, redactor: new Redactor([]) });
    const decide = (owner: string, runId: string, time: number, tool: ToolName, reason: string) =>
      journal.recordDecision({
        owner,
        pair: BTC,
        run: runId,
        record: { time, tool, reason, pnlPct: null, confidence: 70, source: 'openai', outcome: 'none', detail: null },
        result: null,
        verdict: null,
        context: null,
        clientOrderId: null,
      });
    const trade = (tradeId: string, runId: string, pnlPct: number) => {
      const t = makeTrade({ tradeId, pnlPct });
      journal.recordTrade(t, reviewTrade(t), reflectOnTrade(t), evaluateTrade(t), rewardForTrade(t), { run: runId });
    };
    try {
      decide(REPLAY_OWNER, 'replay-9', T0, 'signal_wait', 'replay: waiting');
      trade('replay-trade', 'replay-9', -2);
      decide(PAPER_OWNER, 'paper', T0, 'signal_wait', 'paper: no trend before the outage');
      journal.recordMissedCandles({
        owner: PAPER_OWNER,
        run: 'paper',
        pair: BTC,
        firstClose: T0 + CANDLE,
        lastClose: T0 + 30 * CANDLE,
        count: 30,
        reason: 'outage',
      });
      const base = journalContext(decisionContext());
      journal.recordPrompt({
        decisionId: shownId,
        owner: PAPER_OWNER,
        run: 'paper',
        pair: BTC,
        time: T0 + 31 * CANDLE,
        context: {
          ...base,
          messages: [
            { role: 'system', content: 'You are a futures trader.' },
            { role: 'user', content: LONG_USER },
          ],
        },
      });
      decide(PAPER_OWNER, 'paper', T0 + 31 * CANDLE, 'signal_entry_long', 'paper: breakout after the outage');
      trade('paper-trade', 'paper', 4);
    } finally {
      journal.close();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('decisions: the current run by default, its gaps as lines, a header naming the other runs', async () => {
    const r = await run(['decisions', '-c', configFile]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^run paper \(the current run; also in the journal: replay-9 \(1 decisions, 1 trades\)/);
    assert.match(lines[0]!, /--run all every run/);
    assert.match(lines[1]!, /^time\s+pair\s+tool/);
    assert.equal(lines.length, 5, r.stdout);
    assert.match(lines[2]!, /paper: no trend before the outage$/);
    assert.match(
      lines[3]!,
      /^2025-06-01 10:30Z\s+BTC\/USDT:USDT\s+missed 30 candles 2025-06-01 10:30Z → 2025-06-02 01:00Z \(outage\)$/,
    );
    assert.match(lines[4]!, /paper: breakout after the outage$/);
    assert.ok(!r.stdout.includes('replay: waiting'), 'another run is not shown');
  });

  test('decisions --run picks a run, --run all shows every run', async () => {
    const [replay, all] = await Promise.all([
      run(['decisions', '--run', 'replay-9', '-c', configFile]),
      run(['decisions', '--run', 'all', '-c', configFile]),
    ]);
    assert.equal(replay.status, 0, replay.stderr);
    assert.match(replay.stdout, /^run replay-9 \(the current run is paper; also in the journal: paper/);
    assert.match(replay.stdout, /replay: waiting/);
    assert.ok(!replay.stdout.includes('paper: '), replay.stdout);
    assert.ok(!replay.stdout.includes('missed'), 'the gap is of the paper run');
    assert.equal(all.status, 0, all.stderr);
    assert.match(all.stdout, /^all runs: paper \(2 decisions, 1 trades\), replay-9 \(1 decisions, 1 trades\)/);
    assert.equal((all.stdout.match(/^2025-06-0[12] /gm) ?? []).length, 4, 'three decisions and a gap');
  });

  test('trades: the current run by default with its summary; --run all shows both', async () => {
    const [current, all, json] = await Promise.all([
      run(['trades', '-c', configFile]),
      run(['trades', '--run', 'all', '-c', configFile]),
      run(['trades', '--run', 'replay-9', '--json', '-c', configFile]),
    ]);
    assert.equal(current.status, 0, current.stderr);
    assert.match(current.stdout, /^run paper \(the current run; also in the journal: replay-9/);
    assert.match(current.stdout, /all pairs: 1 trades, 1 wins, 0 losses/);
    assert.equal(all.status, 0, all.stderr);
    assert.match(all.stdout, /all pairs: 2 trades, 1 wins, 1 losses/);
    const trades = JSON.parse(json.stdout) as { run: string; trade: { tradeId: string } }[];
    assert.deepEqual(
      trades.map((t) => [t.run, t.trade.tradeId]),
      [['replay-9', 'replay-trade']],
    );
  });

  test('decisions --show prints the decision and the whole prompt, wrapped; --json gives one object', async () => {
    const [text, json] = await Promise.all([
      run(['decisions', '--show', shownId, '-c', configFile]),
      run(['decisions', '--show', shownId, '--json', '-c', configFile]),
    ]);
    assert.equal(text.status, 0, text.stderr);
    const out = text.stdout;
    assert.match(out, new RegExp(`^decision\\s+${shownId}\\s+run paper, owner ${PAPER_OWNER.replace(/\//g, '\\/')}`));
    assert.match(out, /^time\s+2025-06-02 01:30Z$/m);
    assert.match(out, /^tool\s+signal_entry_long$/m);
    assert.match(out, /^reason\s+paper: breakout after the outage$/m);
    assert.match(out, /^outcome\s+none$/m);
    assert.match(out, /^tokens\s+0 in, 0 out, 0 ms$/m);
    assert.match(out, /^--- system ---\nYou are a futures trader\.$/m);
    assert.ok(
      out.split('\n').every((l) => l.length <= 100),
      'every line is wrapped to 100 columns when not a terminal',
    );
    const user = out.slice(out.indexOf('--- user ---') + '--- user ---'.length);
    assert.equal(
      user.replace(/\s+/g, ' ').trim(),
      LONG_USER.replace(/\s+/g, ' ').trim(),
      'nothing of the prompt is lost',
    );

    assert.equal(json.status, 0, json.stderr);
    const d = JSON.parse(json.stdout) as { decisionId: string; context: { messages: { content: string }[] } };
    assert.equal(d.decisionId, shownId);
    assert.equal(d.context.messages[1]?.content, LONG_USER);
  });

  test('decisions --show of an unknown id: exit 2 naming the id and the journal file', async () => {
    const r = await run(['decisions', '--show', 'dnope', '-c', configFile]);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(r.stderr.includes(`no decision dnope in ${database}`), r.stderr);
  });
});

describe('wrapText', () => {
  test('breaks long lines at spaces, keeps indentation and line breaks, and loses no word', () => {
    const text = `short\n  ${'word '.repeat(30).trim()}\n${'x'.repeat(25)}`;
    const wrapped = wrapText(text, 20);
    const lines = wrapped.split('\n');
    assert.ok(
      lines.every((l) => l.length <= 20),
      wrapped,
    );
    assert.equal(lines[0], 'short');
    assert.ok(
      lines.slice(1, -2).every((l) => l.startsWith('  word')),
      wrapped,
    );
    assert.equal(wrapped.replace(/\s+/g, ''), text.replace(/\s+/g, ''));
  });
});
