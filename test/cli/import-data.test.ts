import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { runCli } from '../helpers/cli';

const DATA_DIR = path.resolve(process.cwd(), '../shared/data/binanceusdm');

/** Data rows of a recorded file: its non-empty lines minus the header (like `zcat f | wc -l` minus 1). */
async function dataRows(file: string): Promise<number> {
  const bytes = await readFile(file);
  const text = (file.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8');
  return text.split('\n').filter((line) => line.trim() !== '').length - 1;
}

/** The series a file name stands for, parsed here independently of the code under test. */
function seriesKey(name: string): string {
  const m = /^([A-Z0-9]+)_([A-Z0-9]+)_([A-Z0-9]+)-(.+)\.csv(\.gz)?$/.exec(name);
  assert.ok(m, `unexpected file name ${name}`);
  const symbol = `${m[1]}/${m[2]}:${m[3]}`;
  const kind = m[4]!;
  if (kind.startsWith('funding-')) return `funding ${symbol}`;
  if (kind.startsWith('mark-')) return `candles ${symbol} ${kind.slice('mark-'.length)} mark`;
  return `candles ${symbol} ${kind} trade`;
}

/** Row counts per series, read straight from the SQLite file. */
function storedCounts(dbFile: string): Map<string, number> {
  const db = new Database(dbFile, { readonly: true });
  try {
    const counts = new Map<string, number>();
    const candles = db
      .prepare(
        `SELECT exchange, symbol, timeframe, price_type, count(*) AS n FROM candles
         GROUP BY exchange, symbol, timeframe, price_type`,
      )
      .all() as { exchange: string; symbol: string; timeframe: string; price_type: string; n: number }[];
    for (const r of candles) {
      assert.equal(r.exchange, 'binanceusdm');
      counts.set(`candles ${r.symbol} ${r.timeframe} ${r.price_type}`, r.n);
    }
    const funding = db
      .prepare('SELECT exchange, symbol, count(*) AS n FROM funding GROUP BY exchange, symbol')
      .all() as {
      exchange: string;
      symbol: string;
      n: number;
    }[];
    for (const r of funding) counts.set(`funding ${r.symbol}`, r.n);
    return counts;
  } finally {
    db.close();
  }
}

/** The summary table's row for `name`: [rows read, rows added, problems]. */
function tableRow(stdout: string, name: string): number[] {
  const line = stdout.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `no summary row for ${name} in:\n${stdout}`);
  return line.trim().split(/\s+/).slice(-3).map(Number);
}

describe('llm-trader import-data', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'import-data-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  test('ACCEPTANCE: imports every candle, mark and funding file of ../shared/data; a second run adds nothing', async () => {
    const names = (await readdir(DATA_DIR)).filter((n) => /\.csv(\.gz)?$/.test(n)).sort();
    assert.equal(names.length, 85, '17 pairs x (30m, 1h, 1d, funding-8h, mark-8h)');
    const expected = new Map<string, number>();
    for (const name of names) expected.set(seriesKey(name), await dataRows(path.join(DATA_DIR, name)));
    const db = path.join(tmp, 'all', 'candles.sqlite');

    const first = runCli(['import-data', '../shared/data/binanceusdm', '--db', db]);
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(storedCounts(db), expected);
    for (const name of names) {
      const n = expected.get(seriesKey(name))!;
      assert.deepEqual(tableRow(first.stdout, name), [n, n, 0], name);
    }
    const total = [...expected.values()].reduce((a, b) => a + b, 0);
    assert.match(first.stdout, new RegExp(`imported 85 of 85 files into .* ${total} rows read, ${total} added`));
    const seconds = Number(/ in ([\d.]+) s:/.exec(first.stdout)?.[1]);
    console.log(`# import of 85 files (${total} rows) took ${seconds} s`);

    const second = runCli(['import-data', '../shared/data/binanceusdm', '--db', db]);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, new RegExp(`${total} rows read, 0 added, ${total} already stored`));
    for (const name of names) assert.equal(tableRow(second.stdout, name)[1], 0, `${name} added rows on the second run`);
    assert.deepEqual(storedCounts(db), expected);
  });

  test('ACCEPTANCE: a malformed row is reported with file and line, the rest is imported, and the exit is 2 unless --skip-bad-rows', async () => {
    const dir = path.join(tmp, 'broken');
    await mkdir(dir);
    // ETH 1h: line 10 gets a non-numeric open; BTC 1d copied as plain .csv; BTC funding untouched
    const eth = gunzipSync(await readFile(path.join(DATA_DIR, 'ETH_USDT_USDT-1h.csv.gz')))
      .toString('utf8')
      .split('\n');
    const ethRows = eth.filter((l) => l.trim() !== '').length - 1;
    eth[9] = `${eth[9]!.split(',')[0]},not-a-price,1,1,1,1`;
    await writeFile(path.join(dir, 'ETH_USDT_USDT-1h.csv.gz'), gzipSync(eth.join('\n')));
    const btcDaily = gunzipSync(await readFile(path.join(DATA_DIR, 'BTC_USDT_USDT-1d.csv.gz')));
    await writeFile(path.join(dir, 'BTC_USDT_USDT-1d.csv'), btcDaily);
    await writeFile(
      path.join(dir, 'BTC_USDT_USDT-funding-8h.csv.gz'),
      await readFile(path.join(DATA_DIR, 'BTC_USDT_USDT-funding-8h.csv.gz')),
    );
    await writeFile(path.join(dir, 'notes.txt'), 'not a data file');
    const db = path.join(tmp, 'broken.sqlite');

    const res = runCli(['import-data', dir, '--db', db]);
    assert.equal(res.status, 2, 'a skipped row is not success');
    assert.match(res.stderr, new RegExp(`ETH_USDT_USDT-1h\\.csv\\.gz:10: open "not-a-price" is not a positive number`));
    assert.match(
      res.stderr,
      /llm-trader: import-data: 1 malformed rows skipped, 0 files not imported .*pass --skip-bad-rows to accept/,
    );
    // the skipped row is in the data quality summary too: a gap at its time, and the row counted
    assert.match(
      res.stdout,
      /ETH\/USDT:USDT 1h +\d+ candles .* 1 gap, 1 candle missing, 1 row skipped\n +gap 2025-05-22 08:00Z \(1 candle\)/,
    );
    const accepted = runCli(['import-data', dir, '--db', db, '--skip-bad-rows']);
    assert.equal(accepted.status, 0, accepted.stderr);
    assert.match(
      accepted.stderr,
      /warning: 1 malformed rows skipped, 0 files not imported .*accepted with --skip-bad-rows/,
    );
    assert.deepEqual(tableRow(res.stdout, 'ETH_USDT_USDT-1h.csv.gz'), [ethRows, ethRows - 1, 1]);
    assert.match(res.stdout, /ignored 1 entries whose names are not data files: notes\.txt/);
    const counts = storedCounts(db);
    assert.equal(counts.get('candles ETH/USDT:USDT 1h trade'), ethRows - 1);
    assert.equal(
      counts.get('candles BTC/USDT:USDT 1d trade'),
      await dataRows(path.join(DATA_DIR, 'BTC_USDT_USDT-1d.csv.gz')),
    );
    assert.equal(
      counts.get('funding BTC/USDT:USDT'),
      await dataRows(path.join(DATA_DIR, 'BTC_USDT_USDT-funding-8h.csv.gz')),
    );
  });

  test('a malformed funding row is skipped and reported with file and line; the rest of the file is imported', async () => {
    const dir = path.join(tmp, 'bad-funding');
    await mkdir(dir);
    const funding = gunzipSync(await readFile(path.join(DATA_DIR, 'SOL_USDT_USDT-funding-8h.csv.gz')))
      .toString('utf8')
      .split('\n');
    funding[4] = `${funding[4]!.split(',')[0]},abc`;
    await writeFile(path.join(dir, 'SOL_USDT_USDT-funding-8h.csv.gz'), gzipSync(funding.join('\n')));
    await writeFile(
      path.join(dir, 'SOL_USDT_USDT-1d.csv.gz'),
      await readFile(path.join(DATA_DIR, 'SOL_USDT_USDT-1d.csv.gz')),
    );
    const db = path.join(tmp, 'bad-funding.sqlite');
    const res = runCli(['import-data', dir, '--db', db]);
    assert.equal(res.status, 2, res.stderr);
    assert.match(res.stderr, /SOL_USDT_USDT-funding-8h\.csv\.gz:5: funding_rate "abc" is not a number/);
    assert.match(res.stderr, /1 malformed rows skipped/);
    const counts = storedCounts(db);
    // every funding row but the corrupted one
    assert.equal(
      counts.get('funding SOL/USDT:USDT'),
      (await dataRows(path.join(DATA_DIR, 'SOL_USDT_USDT-funding-8h.csv.gz'))) - 1,
    );
    assert.equal(
      counts.get('candles SOL/USDT:USDT 1d trade'),
      await dataRows(path.join(DATA_DIR, 'SOL_USDT_USDT-1d.csv.gz')),
    );
  });

  test('exit 2 when the folder does not exist or holds no data file, saying which names are expected', async () => {
    const missing = path.join(tmp, 'nope');
    const res = runCli(['import-data', missing, '--db', path.join(tmp, 'x.sqlite')]);
    assert.equal(res.status, 2);
    assert.match(res.stderr, new RegExp(`${missing} does not exist`));

    const empty = path.join(tmp, 'empty');
    await mkdir(empty);
    await writeFile(path.join(empty, 'BTCUSDT-30m.csv'), 'timestamp,open,high,low,close,volume\n');
    const none = runCli(['import-data', empty, '--db', path.join(tmp, 'x.sqlite')]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no data files in .*found 1 other entries, e\.g\. BTCUSDT-30m\.csv/);
    assert.match(none.stderr, /<BASE>_<QUOTE>_<SETTLE>-<tf>\.csv\[\.gz\] +e\.g\. BTC_USDT_USDT-30m\.csv\.gz/);
    assert.match(none.stderr, /BTC_USDT_USDT-funding-8h\.csv\.gz/);
  });
});
