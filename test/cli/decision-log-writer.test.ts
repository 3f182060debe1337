/**
 * The backtest's decision log writer: every line arrives whole, in order, valid UTF-8 and redacted, whichever block
 * size it is written with; a model's run (no block) has each line on disk as soon as it is written.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineWriter } from '../../src/cli/commands/decision-log-writer';
import { Redactor } from '../../src/core/redact';

const SECRET = 'sk-live-0123456789abcdef';

function lines(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    // multi-byte text (2, 3 and 4 bytes per character in UTF-8) of varying length, so lines end anywhere in a block
    const reasoning = `趋势 ${'é'.repeat(i % 7)} ${'📈'.repeat(i % 3)} ${'x'.repeat((i * 37) % 101)}`;
    out.push(JSON.stringify({ i, reasoning, key: i % 10 === 0 ? `token ${SECRET}` : null }));
  }
  return out;
}

function writeAll(blockBytes: number, input: readonly string[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'decision-log-')), 'llm_decisions.jsonl');
  const writer = new LineWriter(file, 'out/llm_decisions.jsonl', new Redactor([SECRET]), blockBytes);
  for (const line of input) writer.write(line);
  writer.close();
  return readFileSync(file, 'utf8');
}

describe('LineWriter', () => {
  test('lines arrive whole, in order and redacted, for any block size (also smaller than a line)', () => {
    const input = lines(400);
    const expected = input.map((l) => `${l.split(SECRET).join('***')}\n`).join('');
    assert.ok(expected.includes('***') && !expected.includes(SECRET));
    for (const blockBytes of [0, 64, 97, 1000, 4096, 256 * 1024]) {
      const text = writeAll(blockBytes, input);
      assert.equal(text, expected, `block of ${blockBytes} bytes`);
      assert.ok(!text.includes('\uFFFD'), `no broken character with a block of ${blockBytes} bytes`);
    }
  });

  test('without a block each line is on disk once written; with one, the lines kept are written on close', () => {
    const dir = mkdtempSync(join(tmpdir(), 'decision-log-'));
    const direct = new LineWriter(join(dir, 'a.jsonl'), 'a.jsonl', new Redactor(), 0);
    direct.write('{"n":1}');
    assert.equal(readFileSync(join(dir, 'a.jsonl'), 'utf8'), '{"n":1}\n');
    direct.close();

    const blocked = new LineWriter(join(dir, 'b.jsonl'), 'b.jsonl', new Redactor(), 4096);
    blocked.write('{"n":1}');
    blocked.write('{"n":2}');
    assert.equal(readFileSync(join(dir, 'b.jsonl'), 'utf8'), '');
    blocked.close();
    assert.equal(readFileSync(join(dir, 'b.jsonl'), 'utf8'), '{"n":1}\n{"n":2}\n');
  });

  test('an existing file is never replaced', () => {
    const dir = mkdtempSync(join(tmpdir(), 'decision-log-'));
    new LineWriter(join(dir, 'a.jsonl'), 'a.jsonl', new Redactor()).close();
    assert.throws(() => new LineWriter(join(dir, 'a.jsonl'), 'a.jsonl', new Redactor()), /EEXIST/);
  });
});
