/**
 * The store-first flow as a user runs it, offline: `llm-trader download-data` (the real ccxt binanceusdm class) against
 * a local server that serves the RECORDED candles and funding of ../shared/data (shifted to end an hour ago), then
 * `llm-trader backtest` with no --data, reading the candle database the download filled.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BacktestResultFile } from '../../src/backtest/result';
import { readBacktestLog } from '../helpers/backtest';
import { repoRoot, runCliAsync } from '../helpers/cli';
import { RecordedBinanceServer } from '../helpers/recorded-binance-server';

const DATA = join(repoRoot, '../shared/data/binanceusdm');
const DAY = 86_400_000;
const HALF_HOUR = 1_800_000;
const BTC = 'BTC/USDT:USDT';

/** The real command, without blocking this process (the recorded exchange serves from it), and with no API key. */
const cli = (args: string[]) => runCliAsync(args, { OPENAI_API_KEY: '' });

describe('download-data, then backtest from the candle database (recorded data, no network)', () => {
  let dir: string;
  let server: RecordedBinanceServer;
  const now = Date.now();
  // a gap in the exchange's 30m history, ten days before the end: 2 candles
  let gapStart = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'download-backtest-'));
    const probe = new RecordedBinanceServer(DATA, now, 3_600_000, ['BTCUSDT']);
    const end = Date.UTC(2025, 6, 21, 18) + probe.shiftMs; // the shifted close of the last recorded 30m candle
    gapStart = end - 10 * DAY;
    server = new RecordedBinanceServer(DATA, now, 3_600_000, ['BTCUSDT'], new Set([gapStart, gapStart + HALF_HOUR]));
    await server.start();
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function config(name: string): string {
    const file = join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        data_dir: join(dir, name),
        pairs: [BTC],
        exchange: { ccxt_options: server.ccxtOptions() },
      }),
    );
    return file;
  }

  test('download-data --days 20 fills the database and lists the gap; backtest reads it, skips the gap and says so', async () => {
    const c = config('flow');
    const down = await cli(['download-data', '-c', c, '--timeframes', '30m', '1h', '1d', '--days', '20']);
    assert.equal(down.status, 0, down.stderr);
    assert.match(down.stdout, /downloaded 4 series from binanceusdm/);
    const iso = (t: number) => new Date(t).toISOString().slice(0, 16).replace('T', ' ');
    assert.match(
      down.stdout,
      new RegExp(
        `BTC/USDT:USDT 30m +\\d+ candles .*1 gap, 2 candles missing\\n +gap ${iso(gapStart)}Z\\.\\.${iso(gapStart + HALF_HOUR).slice(11)}Z \\(2 candles\\)`,
      ),
    );
    assert.match(down.stdout, /BTC\/USDT:USDT 1h +\d+ candles .* no gaps/);

    const out = join(dir, 'flow-out');
    const bt = await cli([
      'backtest',
      '-c',
      c,
      '--policy',
      'baseline',
      '--out',
      out,
      '--check-lookahead',
      '--lookahead-samples',
      '5',
    ]);
    assert.equal(bt.status, 0, bt.stderr);
    assert.match(bt.stdout, /data quality \(candle database .*candles\.sqlite \(exchange binanceusdm\)\)/);
    assert.match(bt.stdout, /BTC\/USDT:USDT 4h .* \(aggregated\)/);
    // the look-ahead check runs on the same store
    assert.match(bt.stdout, /look-ahead check: passed \(5 pair-cycles rerun/);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as BacktestResultFile;
    assert.deepEqual(result.range.informative_timeframes, ['1h', '4h', '1d']);
    // the run covers the downloaded window: it starts after the first 1d candle closed and ends at the data's end
    assert.ok(result.range.to > now - 2 * DAY && result.range.from >= now - 21 * DAY, JSON.stringify(result.range));
    const main = result.dataQuality.series.find((s) => s.timeframe === '30m')!;
    assert.deepEqual(main.gaps, [{ from: gapStart, to: gapStart + HALF_HOUR, missing: 2 }]);
    assert.equal(main.skipped_rows, 0);
    // 4h is aggregated from the 1h candles, which have no gap
    const h4 = result.dataQuality.series.find((s) => s.timeframe === '4h')!;
    assert.deepEqual([h4.origin, h4.missing], ['aggregated', 0]);
    // no decision at a time whose latest candle is missing: the two 30m closes of the gap
    const skipped = result.dataQuality.skipped_cycles;
    assert.deepEqual(
      skipped.map((s) => [s.pair, s.timeframe, s.from, s.to, s.cycles]),
      [[BTC, '30m', gapStart + HALF_HOUR, gapStart + 2 * HALF_HOUR, 2]],
    );
    assert.equal(result.range.skipped_steps, 2);
    const decidedAt = new Set(readBacktestLog(join(out, 'llm_decisions.jsonl')).map((d) => Date.parse(d.timestamp)));
    for (const s of skipped) {
      for (let t = s.from; t <= s.to; t += HALF_HOUR) assert.ok(!decidedAt.has(t), `a decision at ${iso(t)}`);
    }
    assert.match(bt.stdout, /skipped BTC\/USDT:USDT at .* \(2 decision times\): its latest 30m candle is missing/);
  });

  test('--days N downloads the last N days, even when much older data is stored', async () => {
    const c = config('days');
    // the recorded files as they are (2025): far older than the server's shifted data
    const imported = await cli(['import-data', DATA, '-c', c]);
    assert.equal(imported.status, 0, imported.stderr);
    server.requests.length = 0;
    const down = await cli(['download-data', '-c', c, '--timeframes', '30m', '--days', '3', '--no-funding']);
    assert.equal(down.status, 0, down.stderr);
    const starts = server.requestsTo('/fapi/v1/klines').map((u) => Number(u.searchParams.get('startTime')));
    assert.ok(starts.length > 0);
    assert.ok(
      Math.min(...starts) >= now - 3 * DAY - HALF_HOUR,
      `first request from ${new Date(Math.min(...starts)).toISOString()}, more than 3 days back`,
    );
    // ~3 days of 30m candles (the data ends an hour ago): a page or two, not the ~500 days since the stored data
    assert.ok(starts.length <= 2, `${starts.length} requests`);
  });
});
