import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { appendJsonLine, iterateJsonLines, jsonLineInTail, readJsonLines } from '../../src/store/jsonl';

describe('JSON Lines', () => {
  let dir: string;
  let n = 0;
  /** a fresh file path in the test folder */
  const fresh = (name = 'log.jsonl') => path.join(dir, `case-${++n}`, name);

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'jsonl-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('appends whole lines (creating the folders) and reads them back in order', () => {
    const file = fresh();
    const records = [
      { a: 1, text: 'plain' },
      // a newline, a quote and non-ASCII text inside a value must not split the line
      { a: 2, text: 'line one\nline two "quoted" — 价格 €' },
      [1, 2, 3],
      'a bare string',
    ];
    for (const r of records) appendJsonLine(file, r);
    const raw = readFileSync(file, 'utf8');
    assert.ok(raw.endsWith('\n'));
    assert.equal(raw.split('\n').length, records.length + 1, 'one line per record plus the final newline');
    assert.deepEqual(readJsonLines(file), { records, corrupt: [] });
  });

  test('a value without a JSON form throws before anything is written', () => {
    const file = fresh();
    appendJsonLine(file, { kept: true });
    const before = readFileSync(file, 'utf8');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => appendJsonLine(file, undefined), TypeError);
    assert.throws(() => appendJsonLine(file, { big: 1n }), /cannot be serialised/);
    assert.throws(() => appendJsonLine(file, cyclic), /cannot be serialised/);
    assert.equal(readFileSync(file, 'utf8'), before);
  });

  test('an unwritable path fails with an error naming the file', () => {
    const file = fresh();
    mkdirSync(file, { recursive: true }); // a folder where the file should be
    assert.throws(
      () => appendJsonLine(file, { a: 1 }),
      (err: Error) => err.message.includes(file),
    );
  });

  test('after a crash mid-line the next record still starts on its own line', () => {
    const file = fresh();
    appendJsonLine(file, { n: 1 });
    appendFileSync(file, '{"n": 2, "trunc'); // a writer died here: no newline
    appendJsonLine(file, { n: 3 });
    const { records, corrupt } = readJsonLines(file);
    assert.deepEqual(records, [{ n: 1 }, { n: 3 }]);
    assert.equal(corrupt.length, 1);
    assert.equal(corrupt[0]?.line, 2);
    assert.match(corrupt[0]?.error ?? '', /not valid JSON/);
  });

  test('corrupt lines are skipped and counted with their line numbers; blank lines and CRLF are fine', () => {
    const file = fresh();
    mkdirSync(path.dirname(file), { recursive: true });
    const lines = [
      '{"n":1}', // 1
      '{"n":2, "reason": "trunc', // 2: truncated JSON
      '', // 3: blank
      'garbage here', // 4
      '{"n":3}\r', // 5: CRLF
      '\u0000\u0000\u0000', // 6: NUL bytes left by a crash
      '   ', // 7: whitespace only
      '{"n":4}', // 8: last line without newline
    ];
    writeFileSync(file, lines.join('\n'));
    const { records, corrupt } = readJsonLines(file);
    assert.deepEqual(records, [{ n: 1 }, { n: 3 }, { n: 4 }]);
    assert.deepEqual(
      corrupt.map((c) => c.line),
      [2, 4, 6],
    );
  });

  test('a validator rejection counts the line as corrupt with the validator message', () => {
    const file = fresh();
    for (const r of [{ n: 1 }, { m: 2 }, { n: 3 }]) appendJsonLine(file, r);
    const seen: number[] = [];
    const { records, corrupt } = readJsonLines(file, (value, line) => {
      seen.push(line);
      const v = value as { n?: unknown };
      if (typeof v.n !== 'number') throw new Error('n is missing');
      return v.n;
    });
    assert.deepEqual(records, [1, 3]);
    assert.deepEqual(corrupt, [{ line: 2, error: 'n is missing' }]);
    assert.deepEqual(seen, [1, 2, 3]);
  });

  test('a missing file reads as empty', () => {
    assert.deepEqual(readJsonLines(fresh('absent.jsonl')), { records: [], corrupt: [] });
    assert.deepEqual([...iterateJsonLines(fresh('absent.jsonl'))], []);
  });

  test('reads a file of several chunks with multi-byte characters across chunk boundaries', () => {
    const file = fresh();
    // 3-byte characters and an odd record length make chunk boundaries (1 MiB) fall inside characters and lines.
    const records = Array.from({ length: 2500 }, (_, i) => ({ i, text: '€'.repeat(300 + (i % 7)) + '价' }));
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    assert.ok(readFileSync(file).length > 2 * (1 << 20), 'the file spans at least three chunks');
    const read = readJsonLines(file);
    assert.equal(read.corrupt.length, 0);
    assert.deepEqual(read.records, records);
  });

  test('jsonLineInTail finds a whole matching line in the last bytes only, and never a cut or damaged one', () => {
    const file = fresh();
    const isId = (id: string) => (v: unknown) => (v as { id?: unknown }).id === id;
    assert.equal(jsonLineInTail(file, '"id":"a"', isId('a')), false, 'a missing file has no lines');
    appendJsonLine(file, { id: 'a', pad: 'x'.repeat(100) });
    appendJsonLine(file, { id: 'b', note: 'mentions "id":"c" in its text' });
    appendJsonLine(file, { id: 'd' });
    assert.equal(jsonLineInTail(file, '"id":"a"', isId('a')), true);
    assert.equal(jsonLineInTail(file, '"id":"c"', isId('c')), false, 'the needle alone is not a match');
    // a window that cuts the first line: that line is not trusted, the later ones are
    const size = readFileSync(file).length;
    assert.equal(jsonLineInTail(file, '"id":"a"', isId('a'), size - 5), false);
    assert.equal(jsonLineInTail(file, '"id":"b"', isId('b'), size - 5), true);
    appendFileSync(file, '{"id":"e","cut'); // a crash mid-line
    assert.equal(jsonLineInTail(file, '"id":"e"', isId('e')), false);
  });
});
