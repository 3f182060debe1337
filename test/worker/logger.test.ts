import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Logger as TemporalLogger } from '@temporalio/common';
import { createLogger, parseLogLevel, type LoggerOptions } from '../../src/worker/logger';

const SECRET = 'sk-FAKE-secret-key-0123456789';
const T0 = Date.UTC(2025, 5, 10, 12, 30, 15, 250);

function capture(options: Omit<LoggerOptions, 'stream' | 'now'> = {}, isTTY = false) {
  const lines: string[] = [];
  const logger = createLogger({
    ...options,
    now: () => T0,
    stream: { write: (text: string) => lines.push(text), isTTY },
  });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('structured logger', () => {
  test('writes one JSON object per line with time, level, message and the metadata', () => {
    const { logger, lines, records } = capture({ format: 'json' });
    logger.info('worker started', { taskQueue: 'llm-trader', pairs: 2 });
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.endsWith('\n'));
    assert.deepEqual(records()[0], {
      time: '2025-06-10T12:30:15.250Z',
      level: 'info',
      message: 'worker started',
      taskQueue: 'llm-trader',
      pairs: 2,
    });
  });

  test('drops records below the level', () => {
    const { logger, records } = capture({ format: 'json', level: 'WARN' });
    logger.trace('t');
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    assert.deepEqual(
      records().map((r) => r.level),
      ['warn', 'error'],
    );
  });

  test('hides secrets in the message, metadata values, nested values, keys and errors', () => {
    const { logger, lines } = capture({ format: 'json', secrets: [SECRET, 'short'] });
    const err = new Error(`request failed with key ${SECRET}`);
    logger.error(`auth with ${SECRET} failed`, {
      header: `Bearer ${SECRET}`,
      nested: { list: [SECRET, 'ok'] },
      [SECRET]: 'as a key',
      error: err,
    });
    const line = lines[0]!;
    assert.ok(!line.includes(SECRET), line);
    assert.ok(line.includes('***'));
    // values shorter than 8 characters are not treated as secrets (they would mangle ordinary text)
    logger.info('a short word');
    assert.ok(lines[1]!.includes('a short word'));
  });

  test('errors are written with name, message and stack; cycles and bigints do not break the line', () => {
    const { logger, records } = capture({ format: 'json' });
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    logger.warn('odd metadata', { error: new RangeError('bad range'), cyclic, big: 12n, missing: undefined });
    const r = records()[0]!;
    const error = r.error as Record<string, unknown>;
    assert.equal(error.name, 'RangeError');
    assert.equal(error.message, 'bad range');
    assert.match(String(error.stack), /RangeError: bad range/);
    assert.deepEqual(r.cyclic, { name: 'loop', self: '[circular]' });
    assert.equal(r.big, '12');
    assert.ok(!('missing' in r));
  });

  test('uses the timestamp Temporal attaches to forwarded Core records', () => {
    const { logger, records } = capture({ format: 'json' });
    const when = Date.UTC(2025, 0, 2, 3, 4, 5, 6);
    logger.log('WARN', 'from core', { [Symbol.for('log_timestamp')]: BigInt(when) * 1_000_000n, sdkComponent: 'core' });
    assert.equal(records()[0]!.time, '2025-01-02T03:04:05.006Z');
    assert.equal(records()[0]!.sdkComponent, 'core');
  });

  test('pretty format: clock, level, message, key=value pairs; auto picks it on a terminal', () => {
    const tty = capture({ format: 'auto' }, true);
    tty.logger.info('cycle done', { pair: 'BTC/USDT:USDT', reason: 'two words' });
    assert.equal(tty.lines[0], '12:30:15.250 INFO  cycle done pair=BTC/USDT:USDT reason="two words"\n');
    const pipe = capture({ format: 'auto' }, false);
    pipe.logger.info('cycle done');
    assert.equal((JSON.parse(pipe.lines[0]!) as { message: string }).message, 'cycle done');
  });

  test("serves as Temporal's logger (log(level, ...) and the level methods)", () => {
    const { logger, records } = capture({ format: 'json', level: 'DEBUG' });
    const temporal: TemporalLogger = logger;
    temporal.log('DEBUG', 'activity started', { activityType: 'decide' });
    temporal.trace('hidden');
    assert.deepEqual(
      records().map((r) => [r.level, r.message, r.activityType]),
      [['debug', 'activity started', 'decide']],
    );
  });

  test('parses level names in any case', () => {
    assert.equal(parseLogLevel('warn'), 'WARN');
    assert.equal(parseLogLevel(' Info '), 'INFO');
    assert.equal(parseLogLevel('verbose'), null);
  });
});
