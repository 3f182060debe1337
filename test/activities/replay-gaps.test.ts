/**
 * Replay mode (the activities over recorded data): no decision on a snapshot whose latest candle is missing. A gap in
 * the data fails the cycle's market step with a non-retryable MarketDataGap naming the pair, the time and the
 * timeframe (the workflow skips that candle and goes on at the next close); past the end of the data the failure is
 * MarketDataUnavailable, which ends the replay. By default the activities read the candle database.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ApplicationFailure } from '@temporalio/common';
import { createActivityRuntime, type ActivityRuntime } from '../../src/activities';
import { ConfigSchema } from '../../src/core/config';
import { MARKET_DATA_GAP, MARKET_DATA_UNAVAILABLE } from '../../src/core/error-types';
import { runCli } from '../helpers/cli';

const DATA = join(process.cwd(), '../shared/data/binanceusdm');
const PAIR = 'BTC/USDT:USDT';
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const GAP_30M = Date.UTC(2025, 5, 10, 6); // the 30m candle 06:00-06:30 is left out
const GAP_1H = Date.UTC(2025, 5, 12, 9); // the 1h candle 09:00-10:00 is left out

describe('replay activities over recorded data with gaps (read from the candle database)', () => {
  let dir: string;
  let runtime: ActivityRuntime;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'replay-gaps-'));
    const csv = join(dir, 'csv');
    mkdirSync(csv);
    for (const [tf, drop] of [
      ['30m', GAP_30M],
      ['1h', GAP_1H],
      ['1d', -1],
    ] as const) {
      const rows = gunzipSync(readFileSync(join(DATA, `BTC_USDT_USDT-${tf}.csv.gz`)))
        .toString('utf8')
        .split('\n')
        .filter((line) => !line.startsWith(`${drop},`));
      writeFileSync(join(csv, `BTC_USDT_USDT-${tf}.csv`), rows.join('\n'));
    }
    const dataDir = join(dir, 'user_data');
    const imported = runCli(['import-data', csv, '--db', join(dataDir, 'candles.sqlite')]);
    assert.equal(imported.status, 0, imported.stderr);
    const config = ConfigSchema.parse({
      mode: 'replay',
      pairs: [PAIR],
      data_dir: dataDir,
      llm: { provider: 'baseline' },
    });
    assert.equal(config.replay.data, null, 'the default is the candle database');
    runtime = await createActivityRuntime(config, { logger: silent });
  });
  after(async () => {
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const fetchAt = (iso: string) => runtime.activities.fetchMarket({ pair: PAIR, asOf: Date.parse(iso), since: null });

  test('complete candles: the snapshot is at the decision time', async () => {
    const view = await fetchAt('2025-06-10T05:30:00Z');
    assert.equal(view.snapshot.asOf, Date.parse('2025-06-10T05:30:00Z'));
  });

  test('a missing main candle: MarketDataGap, non-retryable, naming the timeframe; the next close works again', async () => {
    await assert.rejects(fetchAt('2025-06-10T06:30:00Z'), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, MARKET_DATA_GAP);
      assert.equal(err.nonRetryable, true);
      assert.match(
        err.message,
        /no decision for BTC\/USDT:USDT at 2025-06-10T06:30:00.000Z: its latest 30m candle is missing/,
      );
      return true;
    });
    assert.equal((await fetchAt('2025-06-10T07:00:00Z')).snapshot.asOf, Date.parse('2025-06-10T07:00:00Z'));
  });

  test('a missing informative candle (1h) also stops the decision, at both closes it is the latest 1h candle', async () => {
    for (const iso of ['2025-06-12T10:00:00Z', '2025-06-12T10:30:00Z']) {
      await assert.rejects(
        fetchAt(iso),
        (err: unknown) =>
          err instanceof ApplicationFailure &&
          err.type === MARKET_DATA_GAP &&
          /its latest 1h candle is missing/.test(err.message),
      );
    }
    assert.ok(await fetchAt('2025-06-12T11:00:00Z'));
  });

  test('past the end of the data: MarketDataUnavailable (the replay ends)', async () => {
    await assert.rejects(
      fetchAt('2025-09-01T00:00:00Z'),
      (err: unknown) => err instanceof ApplicationFailure && err.type === MARKET_DATA_UNAVAILABLE,
    );
  });
});
