import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  dataFile,
  fundingFile,
  readCandleCsv,
  readCandleCsvLenient,
  readFundingCsv,
} from '../../src/store/csv-candles';

const DATA_DIR = path.resolve(process.cwd(), '../shared/data/binanceusdm');

describe('dataFile', () => {
  test('maps a ccxt symbol and timeframe to the recorded file name', () => {
    assert.equal(dataFile('/d', 'BTC/USDT:USDT', '30m'), '/d/BTC_USDT_USDT-30m.csv.gz');
    assert.equal(dataFile('data', '1000PEPE/USDT:USDT', '1d'), path.join('data', '1000PEPE_USDT_USDT-1d.csv.gz'));
    assert.equal(fundingFile('/d', 'ETH/USDT:USDT'), '/d/ETH_USDT_USDT-funding-8h.csv.gz');
    assert.equal(dataFile('/d', 'ETH/USDT', 'mark-8h'), '/d/ETH_USDT-mark-8h.csv.gz');
  });

  test('rejects a malformed pair or kind instead of building a wrong path', () => {
    assert.throws(() => dataFile('/d', 'BTCUSDT', '30m'), /invalid pair "BTCUSDT": expected BASE\/QUOTE:SETTLE/);
    assert.throws(() => dataFile('/d', '../BTC/USDT', '30m'), /invalid pair/);
    assert.throws(() => dataFile('/d', 'BTC/USDT:USDT', '../30m'), /invalid data file kind/);
  });
});

describe('reading the recorded data', () => {
  test('BTC 30m .csv.gz: every row, first and last as in the file', async () => {
    const candles = await readCandleCsv(dataFile(DATA_DIR, 'BTC/USDT:USDT', '30m'));
    // `zcat BTC_USDT_USDT-30m.csv.gz | wc -l` = 2917 lines including the header; first and last rows copied from it.
    assert.equal(candles.length, 2916);
    assert.deepStrictEqual(candles[0], {
      time: 1747872000000,
      open: 109609.6,
      high: 110146.4,
      low: 109456.1,
      close: 109657.8,
      volume: 9251.867,
    });
    assert.deepStrictEqual(candles.at(-1), {
      time: 1753119000000,
      open: 117527.2,
      high: 117870.2,
      low: 117283,
      close: 117815.3,
      volume: 3623.641,
    });
  });

  test('funding: timestamps rounded down to the minute', async () => {
    const events = await readFundingCsv(fundingFile(DATA_DIR, 'BTC/USDT:USDT'));
    assert.equal(events.length, 182);
    // raw rows: 1747872000001,0.0001 / 1747900800000,0.0001 / 1747929600002,0.0001
    assert.deepStrictEqual(events.slice(0, 3), [
      { time: 1747872000000, rate: 0.0001 },
      { time: 1747900800000, rate: 0.0001 },
      { time: 1747929600000, rate: 0.0001 },
    ]);
    for (const e of events) assert.equal(e.time % (8 * 3600_000), 0, `funding at ${e.time} is on the 8h grid`);
  });
});

describe('plain and gzipped files, malformed rows', () => {
  let dir = '';
  const header = 'timestamp,open,high,low,close,volume';
  const rows = [
    '1747872000000,100,110,90,105,12.5',
    '1747873800000,105,108,101,102,3',
    '1747875600000,102,104,100,103,0',
  ];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'csv-candles-test-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const expected = [
    { time: 1747872000000, open: 100, high: 110, low: 90, close: 105, volume: 12.5 },
    { time: 1747873800000, open: 105, high: 108, low: 101, close: 102, volume: 3 },
    { time: 1747875600000, open: 102, high: 104, low: 100, close: 103, volume: 0 },
  ];

  test('.csv and .csv.gz with the same content read the same; CRLF and a trailing newline are fine', async () => {
    const text = [header, ...rows].join('\r\n') + '\r\n';
    const plain = path.join(dir, 'X_USDT_USDT-30m.csv');
    const gz = path.join(dir, 'X_USDT_USDT-30m.csv.gz');
    await writeFile(plain, text);
    await writeFile(gz, gzipSync(text));
    assert.deepStrictEqual(await readCandleCsv(plain), expected);
    assert.deepStrictEqual(await readCandleCsv(gz), expected);
  });

  test('a malformed row: strict read names file and line; lenient read reports it and keeps the rest', async () => {
    const file = path.join(dir, 'bad.csv.gz');
    const lines = [
      header, // line 1
      rows[0], // line 2
      '1747873800000,105,abc,101,102,3', // line 3: non-numeric high
      rows[1], // line 4
      '1747875600000,102,99,100,103,1', // line 5: high below low
      '1747875600000,102,104,100', // line 6: 4 fields
      '1747873800000,105,108,101,102,3', // line 7: same time as line 4 (duplicate / out of order)
      rows[2], // line 8
    ];
    await writeFile(file, gzipSync(lines.join('\n')));
    await assert.rejects(readCandleCsv(file), { message: `${file}:3: high "abc" is not a positive number` });
    const { candles, problems } = await readCandleCsvLenient(file);
    assert.deepStrictEqual(candles, expected);
    assert.deepStrictEqual(
      problems.map((p) => [p.file, p.line]),
      [
        [file, 3],
        [file, 5],
        [file, 6],
        [file, 7],
      ],
    );
    assert.match(problems[1]!.message, /high 99 is below open, close or low/);
    assert.match(problems[2]!.message, /expected 6 fields/);
    assert.match(problems[3]!.message, /not after the previous row's 1747873800000/);
  });

  test('rejects empty fields, non-positive prices and negative volume', async () => {
    const cases: [string, RegExp][] = [
      ['1747872000000,,110,90,105,1', /open "" is not a positive number/],
      ['1747872000000,100,110,0,105,1', /low "0" is not a positive number/],
      ['1747872000000,100,110,90,105,-1', /volume "-1" is not a number >= 0/],
      ['1747872000000.5,100,110,90,105,1', /timestamp "1747872000000.5" is not a non-negative integer/],
      ['1747872000000,100,104,90,105,1', /high 104 is below open, close or low/],
      ['1747872000000,100,110,101,105,1', /low 101 is above open or close/],
    ];
    for (const [row, message] of cases) {
      const file = path.join(dir, 'case.csv');
      await writeFile(file, `${header}\n${row}\n`);
      await assert.rejects(readCandleCsv(file), (err: Error) => {
        assert.ok(err.message.startsWith(`${file}:2: `), err.message);
        assert.match(err.message, message);
        return true;
      });
    }
  });

  test('a wrong header, a missing file or a corrupt gzip fail with the file name', async () => {
    const file = path.join(dir, 'header.csv');
    await writeFile(file, `time,o,h,l,c,v\n${rows[0]}\n`);
    await assert.rejects(readCandleCsvLenient(file), {
      message: `${file}:1: expected the header "${header}", got "time,o,h,l,c,v"`,
    });
    const missing = path.join(dir, 'nope.csv.gz');
    await assert.rejects(readCandleCsv(missing), {
      message: `${missing}: cannot read: no such file; check the data directory and the pair/timeframe`,
    });
    const corrupt = path.join(dir, 'corrupt.csv.gz');
    await writeFile(corrupt, `${header}\n${rows[0]}\n`);
    await assert.rejects(
      readCandleCsv(corrupt),
      new RegExp(`^Error: ${corrupt.replace(/[.]/g, '\\.')}: not a valid gzip file`),
    );
  });

  test('funding rows: rounded to the minute, negative rates kept, bad rate reported with line', async () => {
    const file = path.join(dir, 'funding.csv');
    await writeFile(file, 'timestamp,funding_rate\n1747872000001,0.0001\n1747900800003,-0.00025\n');
    assert.deepStrictEqual(await readFundingCsv(file), [
      { time: 1747872000000, rate: 0.0001 },
      { time: 1747900800000, rate: -0.00025 },
    ]);
    await writeFile(file, 'timestamp,funding_rate\n1747872000001,0.0001\n1747900800003,x\n');
    await assert.rejects(readFundingCsv(file), { message: `${file}:3: funding_rate "x" is not a number` });
  });
});
