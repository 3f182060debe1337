import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  problemKind,
  validateToolCall,
  validateToolCalls,
  type ProblemKind,
  type ValidationResult,
} from '../../src/core/validate';
import type { ToolName } from '../../src/core/types';

const PAIR = 'BTC/USDT:USDT';
const FLAT = { pair: PAIR, hasPosition: false };
const IN_POSITION = { pair: PAIR, hasPosition: true };

const entryArgs = {
  pair: PAIR,
  leverage: 10,
  stake_amount: 250,
  confidence_score: 72,
  key_support: 61500,
  key_resistance: 64800.5,
  rsi_value: 55.3,
  trend_strength: 'medium',
  reason: 'EMA20 above EMA50 on 1h and 4h; RSI rising from 45; invalid below 61500.',
};
const exitArgs = { pair: PAIR, confidence_score: 80, rsi_value: 71, trade_score: 65, reason: 'Target reached.' };
const adjustArgs = {
  pair: PAIR,
  adjustment_pct: -50,
  confidence_score: 60,
  key_support: 61000,
  key_resistance: 65000,
  reason: 'Take half off into resistance.',
};
const holdArgs = { pair: PAIR, confidence_score: 55, rsi_value: 48, reason: 'Trend intact.' };

function problemsOf(result: ValidationResult): string[] {
  assert.equal(result.ok, false, `expected a rejection, got ${JSON.stringify(result)}`);
  return result.ok ? [] : result.problems;
}

function accepted(result: ValidationResult) {
  assert.ok(result.ok, `expected acceptance, got ${JSON.stringify(result)}`);
  return result;
}

describe('validateToolCall: arguments encoding (acceptance)', () => {
  test('accepts arguments as an object, a JSON string and a double-encoded JSON string, with the same decision', () => {
    const asObject = accepted(validateToolCall({ name: 'signal_entry_long', arguments: entryArgs }, FLAT));
    const asString = accepted(
      validateToolCall({ name: 'signal_entry_long', arguments: JSON.stringify(entryArgs) }, FLAT),
    );
    const doubled = accepted(
      validateToolCall({ name: 'signal_entry_long', arguments: JSON.stringify(JSON.stringify(entryArgs)) }, FLAT),
    );
    const expected = { tool: 'signal_entry_long', args: entryArgs };
    assert.deepEqual(asObject.decision, expected);
    assert.deepEqual(asString.decision, expected);
    assert.deepEqual(doubled.decision, expected);
    assert.deepEqual(asObject.notes, []);
    assert.deepEqual(asString.notes, []);
    assert.ok(doubled.notes.some((n) => n.includes('double-encoded')));
  });

  test('accepts JSON inside a Markdown code fence, and notes it', () => {
    const fenced = '```json\n' + JSON.stringify(holdArgs, null, 2) + '\n```';
    const r = accepted(validateToolCall({ name: 'signal_hold', arguments: fenced }, IN_POSITION));
    assert.deepEqual(r.decision, { tool: 'signal_hold', args: holdArgs });
    assert.ok(r.notes.some((n) => n.includes('code fence')));
  });

  test('rejects arguments that are not a JSON object, saying what was received', () => {
    const cases: [unknown, RegExp][] = [
      ['{"pair": "BTC/USDT:USDT", ', /not valid JSON/],
      ['', /empty/],
      ['[1, 2]', /must be a JSON object of fields, got an array/],
      [null, /must be a JSON object of fields, got null/],
      [42, /got a number/],
      [JSON.stringify(JSON.stringify(JSON.stringify(holdArgs))), /more than twice/],
    ];
    for (const [args, pattern] of cases) {
      const problems = problemsOf(validateToolCall({ name: 'signal_wait', arguments: args }, FLAT));
      assert.equal(problems.length, 1, String(args));
      assert.match(problems[0]!, pattern);
      assert.match(problems[0]!, /signal_wait/);
    }
  });
});

describe('validateToolCall: tool and state (acceptance)', () => {
  test('rejects an unknown tool, listing the tools allowed in the state', () => {
    const problems = problemsOf(validateToolCall({ name: 'signal_buy', arguments: entryArgs }, FLAT));
    assert.deepEqual(problems, [
      'unknown tool "signal_buy": call one of signal_entry_long, signal_entry_short, signal_wait',
    ]);
  });

  test('rejects a tool not allowed in the state, saying why and what to use', () => {
    assert.deepEqual(problemsOf(validateToolCall({ name: 'signal_exit', arguments: exitArgs }, FLAT)), [
      'signal_exit is not allowed: there is no open position on BTC/USDT:USDT; ' +
        'use one of signal_entry_long, signal_entry_short, signal_wait',
    ]);
    assert.deepEqual(problemsOf(validateToolCall({ name: 'signal_entry_short', arguments: entryArgs }, IN_POSITION)), [
      'signal_entry_short is not allowed: there is an open position on BTC/USDT:USDT; ' +
        'use one of signal_exit, adjust_position, signal_hold',
    ]);
    assert.ok(
      problemsOf(validateToolCall({ name: 'signal_wait', arguments: holdArgs }, IN_POSITION))[0]!.startsWith(
        'signal_wait is not allowed',
      ),
    );
  });

  test('each tool is accepted in its own state', () => {
    const cases: [ToolName, object, boolean][] = [
      ['signal_entry_long', entryArgs, false],
      ['signal_entry_short', entryArgs, false],
      ['signal_wait', holdArgs, false],
      ['signal_exit', exitArgs, true],
      ['adjust_position', adjustArgs, true],
      ['signal_hold', holdArgs, true],
    ];
    for (const [name, args, hasPosition] of cases) {
      const r = accepted(validateToolCall({ name, arguments: args }, { pair: PAIR, hasPosition }));
      assert.deepEqual(r.decision, { tool: name, args });
    }
  });
});

describe('validateToolCall: fields (acceptance)', () => {
  const entry = (patch: Record<string, unknown>) =>
    validateToolCall({ name: 'signal_entry_long', arguments: { ...entryArgs, ...patch } }, FLAT);

  test('out-of-range values are rejected with the field, the rule and the value', () => {
    assert.deepEqual(problemsOf(entry({ leverage: 500 })), ['leverage must be an integer in 1..125, got 500']);
    assert.deepEqual(problemsOf(entry({ confidence_score: 101 })), [
      'confidence_score must be a number in 0..100, got 101',
    ]);
    assert.deepEqual(problemsOf(entry({ leverage: 2.5 })), ['leverage must be an integer in 1..125, got 2.5']);
    assert.deepEqual(problemsOf(entry({ trend_strength: 'very strong' })), [
      'trend_strength must be one of strong, medium, weak, got "very strong"',
    ]);
    assert.deepEqual(problemsOf(entry({ rsi_value: -1 })), ['rsi_value must be a number in 0..100, got -1']);
  });

  test('several bad fields give one problem each, in field order', () => {
    const problems = problemsOf(entry({ leverage: 0, key_support: -5, reason: '   ' }));
    assert.equal(problems.length, 3);
    assert.match(problems[0]!, /^leverage .* got 0$/);
    assert.match(problems[1]!, /^key_support must be a positive price .* got -5$/);
    assert.match(problems[2]!, /^reason must be a non-empty string of at most 2000 characters, got " {3}"$/);
  });

  test('adjustment_pct 0 is rejected; -100 and 100 are accepted', () => {
    const adjust = (pct: number) =>
      validateToolCall({ name: 'adjust_position', arguments: { ...adjustArgs, adjustment_pct: pct } }, IN_POSITION);
    const problems = problemsOf(adjust(0));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^adjustment_pct must be a non-zero number in -100\.\.100 .*, got 0$/);
    accepted(adjust(-100));
    accepted(adjust(100));
    assert.match(problemsOf(adjust(100.5))[0]!, /^adjustment_pct .* got 100\.5$/);
  });

  test('stake_amount null is accepted; absent is accepted as null; zero or negative is rejected', () => {
    const withNull = accepted(entry({ stake_amount: null }));
    assert.equal(withNull.decision.tool === 'signal_entry_long' && withNull.decision.args.stake_amount, null);
    const { stake_amount: _omitted, ...withoutStake } = entryArgs;
    const absent = accepted(validateToolCall({ name: 'signal_entry_long', arguments: withoutStake }, FLAT));
    assert.deepEqual(absent.decision, { tool: 'signal_entry_long', args: { ...entryArgs, stake_amount: null } });
    assert.match(problemsOf(entry({ stake_amount: 0 }))[0]!, /^stake_amount must be a positive number of USDT/);
    assert.match(problemsOf(entry({ stake_amount: -20 }))[0]!, /got -20$/);
  });

  test('a missing required field is named', () => {
    const { confidence_score: _c, ...noConfidence } = exitArgs;
    assert.deepEqual(problemsOf(validateToolCall({ name: 'signal_exit', arguments: noConfidence }, IN_POSITION)), [
      'confidence_score is missing: it must be a number in 0..100',
    ]);
  });

  test('an unknown extra field is dropped and named, not a reason to reject the call', () => {
    const r = accepted(
      validateToolCall(
        { name: 'signal_exit', arguments: { note: 'harmless', ...exitArgs, stop_loss: 60000 } },
        IN_POSITION,
      ),
    );
    assert.deepEqual(r.decision, { tool: 'signal_exit', args: exitArgs });
    assert.deepEqual(r.dropped, ['note', 'stop_loss']);
    assert.ok(r.notes.some((n) => n.includes('unknown field(s) note, stop_loss of signal_exit dropped')));
    // strict where it matters: a wrong type beside an extra field is still rejected, for the wrong type only
    const bad = problemsOf(
      validateToolCall({ name: 'signal_exit', arguments: { ...exitArgs, trade_score: 'great', note: 1 } }, IN_POSITION),
    );
    assert.deepEqual(bad, ['trade_score must be a number in 0..100, got "great"']);
  });

  test('reason: 2000 characters accepted, 2001 rejected with its length rather than its text', () => {
    accepted(entry({ reason: 'x'.repeat(2000) }));
    const problems = problemsOf(entry({ reason: 'y'.repeat(2001) }));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^reason must be .* got a string of 2001 characters/);
    assert.ok(problems[0]!.length < 250, 'the message does not echo the whole text');
  });

  test('non-finite numbers are rejected', () => {
    assert.match(problemsOf(entry({ key_resistance: Infinity }))[0]!, /^key_resistance .* got Infinity$/);
    assert.match(problemsOf(entry({ rsi_value: NaN }))[0]!, /^rsi_value .* got NaN$/);
  });
});

describe('validateToolCall: pair', () => {
  test('a missing pair is filled from the context, with a note', () => {
    const { pair: _p, ...noPair } = holdArgs;
    const r = accepted(validateToolCall({ name: 'signal_wait', arguments: noPair }, FLAT));
    assert.deepEqual(r.decision, { tool: 'signal_wait', args: holdArgs });
    assert.deepEqual(r.notes, ['pair was missing; filled with "BTC/USDT:USDT"']);
  });

  test('another pair is rejected, naming both', () => {
    const problems = problemsOf(
      validateToolCall({ name: 'signal_wait', arguments: { ...holdArgs, pair: 'ETH/USDT:USDT' } }, FLAT),
    );
    assert.deepEqual(problems, ['pair must be "BTC/USDT:USDT" (the pair being decided), got "ETH/USDT:USDT"']);
  });

  test('a wrong pair and a bad field are both reported in one round', () => {
    const problems = problemsOf(
      validateToolCall({ name: 'signal_wait', arguments: { ...holdArgs, pair: 'BTCUSDT', rsi_value: 140 } }, FLAT),
    );
    assert.deepEqual(problems, [
      'pair must be "BTC/USDT:USDT" (the pair being decided), got "BTCUSDT"',
      'rsi_value must be a number in 0..100, got 140',
    ]);
  });
});

describe('validateToolCall: numeric strings', () => {
  const entry = (patch: Record<string, unknown>) =>
    validateToolCall({ name: 'signal_entry_long', arguments: { ...entryArgs, ...patch } }, FLAT);

  test('an exact number string is read as the number, with a note', () => {
    const r = accepted(entry({ leverage: '10', key_support: '61500.25', stake_amount: '1e2' }));
    assert.ok(r.decision.tool === 'signal_entry_long');
    assert.equal(r.decision.args.leverage, 10);
    assert.equal(r.decision.args.key_support, 61500.25);
    assert.equal(r.decision.args.stake_amount, 100);
    assert.equal(r.notes.length, 3);
    assert.ok(r.notes.some((n) => n === 'leverage was the string "10"; read as the number 10'));
  });

  test('anything but an exact number string is rejected, naming the field', () => {
    for (const bad of ['10x', ' 10', '10 ', '0x10', '1,5', 'Infinity', '1e999', '', '+5', '.5']) {
      const problems = problemsOf(entry({ leverage: bad }));
      assert.equal(problems.length, 1, JSON.stringify(bad));
      assert.ok(problems[0]!.startsWith('leverage must be an integer in 1..125, got '), problems[0]);
    }
  });

  test('a numeric string is not coerced in a text field', () => {
    const r = accepted(entry({ reason: '42' }));
    assert.ok(r.decision.tool === 'signal_entry_long');
    assert.equal(r.decision.args.reason, '42');
    assert.deepEqual(r.notes, []);
  });
});

describe('validateToolCalls', () => {
  test('no call is a problem listing the allowed tools', () => {
    assert.deepEqual(problemsOf(validateToolCalls([], IN_POSITION)), [
      'no tool call: call exactly one of signal_exit, adjust_position, signal_hold',
    ]);
  });

  test('the first call is the decision; extra calls are ignored with a note', () => {
    const r = accepted(
      validateToolCalls(
        [
          { name: 'signal_hold', arguments: holdArgs },
          { name: 'signal_exit', arguments: exitArgs },
        ],
        IN_POSITION,
      ),
    );
    assert.equal(r.decision.tool, 'signal_hold');
    assert.ok(r.notes.some((n) => n.includes('1 extra tool call(s) ignored (signal_exit)')));
  });

  test('an invalid first call is not rescued by a later valid one', () => {
    const problems = problemsOf(
      validateToolCalls(
        [
          { name: 'signal_hold', arguments: { ...holdArgs, confidence_score: 150 } },
          { name: 'signal_hold', arguments: holdArgs },
        ],
        IN_POSITION,
      ),
    );
    assert.equal(problems[0], 'confidence_score must be a number in 0..100, got 150');
    assert.match(problems[1]!, /only the first .* counts: call exactly one tool/);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties. The bounds below are the specification, written out independently of src/core/tools.ts.
// ---------------------------------------------------------------------------------------------

const NO_SPECIAL = { noNaN: true, noDefaultInfinity: true } as const;
const inScore = fc.double({ min: 0, max: 100, ...NO_SPECIAL });
const inPrice = fc.double({ min: 0, minExcluded: true, max: 1e9, ...NO_SPECIAL });
const inLeverage = fc.integer({ min: 1, max: 125 });
const inAdjust = fc.double({ min: -100, max: 100, ...NO_SPECIAL }).filter((v) => v !== 0);
const inTrend = fc.constantFrom('strong', 'medium', 'weak');
const inReason = fc.string({ minLength: 1, maxLength: 2000 }).filter((s) => s.trim().length > 0);
/** stake_amount: a positive number, null, or absent (represented by `undefined`, removed before the call) */
const inStake = fc.oneof(inPrice, fc.constant(null), fc.constant(undefined));

// -Number.MIN_VALUE, not `max: 0, maxExcluded`: fast-check orders -0 below 0, and -0 is a valid score of 0.
const belowZero = fc.double({ max: -Number.MIN_VALUE, ...NO_SPECIAL });
const outScore = fc.oneof(belowZero, fc.double({ min: 100, minExcluded: true, ...NO_SPECIAL }), fc.constant('high'));
const outPrice = fc.oneof(fc.double({ max: 0, ...NO_SPECIAL }), fc.constant('61k'));
const outLeverage = fc.oneof(
  fc.integer({ max: 0 }),
  fc.integer({ min: 126 }),
  fc.double({ min: 1, max: 125, ...NO_SPECIAL }).filter((v) => !Number.isInteger(v)),
  fc.constant('10x'),
);
const outAdjust = fc.oneof(
  fc.constant(0),
  fc.double({ min: 100, minExcluded: true, ...NO_SPECIAL }),
  fc.double({ max: -100, maxExcluded: true, ...NO_SPECIAL }),
);
const outTrend = fc.string().filter((s) => !['strong', 'medium', 'weak'].includes(s));
const outReason = fc.oneof(
  fc.constant(''),
  fc.constantFrom(' ', '\n\t '),
  fc.string({ minLength: 2001, maxLength: 2100 }),
  fc.integer(),
);
const outStake = fc.oneof(fc.double({ max: 0, ...NO_SPECIAL }), fc.constant('all'));
const outPair = fc.constantFrom('ETH/USDT:USDT', 'BTC/USDT', 'btc/usdt:usdt', 42);
/** A required field left out entirely. */
const MISSING = fc.constant(undefined);

type FieldSpec = { valid: fc.Arbitrary<unknown>; invalid: fc.Arbitrary<unknown>; required: boolean };
const score: FieldSpec = { valid: inScore, invalid: fc.oneof(outScore, MISSING), required: true };
const price: FieldSpec = { valid: inPrice, invalid: fc.oneof(outPrice, MISSING), required: true };
const pairSpec: FieldSpec = { valid: fc.constant(PAIR), invalid: outPair, required: false };
const reasonSpec: FieldSpec = { valid: inReason, invalid: fc.oneof(outReason, MISSING), required: true };

const entrySpec: Record<string, FieldSpec> = {
  pair: pairSpec,
  leverage: { valid: inLeverage, invalid: fc.oneof(outLeverage, MISSING), required: true },
  stake_amount: { valid: inStake, invalid: outStake, required: false },
  confidence_score: score,
  key_support: price,
  key_resistance: price,
  rsi_value: score,
  trend_strength: { valid: inTrend, invalid: fc.oneof(outTrend, MISSING), required: true },
  reason: reasonSpec,
};
const holdSpec: Record<string, FieldSpec> = {
  pair: pairSpec,
  confidence_score: score,
  rsi_value: score,
  reason: reasonSpec,
};
const SPECS: Record<ToolName, { spec: Record<string, FieldSpec>; hasPosition: boolean }> = {
  signal_entry_long: { spec: entrySpec, hasPosition: false },
  signal_entry_short: { spec: entrySpec, hasPosition: false },
  signal_wait: { spec: holdSpec, hasPosition: false },
  signal_hold: { spec: holdSpec, hasPosition: true },
  signal_exit: {
    spec: { pair: pairSpec, confidence_score: score, rsi_value: score, trade_score: score, reason: reasonSpec },
    hasPosition: true,
  },
  adjust_position: {
    spec: {
      pair: pairSpec,
      adjustment_pct: { valid: inAdjust, invalid: fc.oneof(outAdjust, MISSING), required: true },
      confidence_score: score,
      key_support: price,
      key_resistance: price,
      reason: reasonSpec,
    },
    hasPosition: true,
  },
};

function withoutUndefined(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

/** An argument object with every field in bounds. */
const validCall = fc.constantFrom(...(Object.keys(SPECS) as ToolName[])).chain((name) => {
  const { spec, hasPosition } = SPECS[name];
  const fields = Object.fromEntries(Object.entries(spec).map(([k, s]) => [k, s.valid]));
  return fc.record({
    name: fc.constant(name),
    hasPosition: fc.constant(hasPosition),
    args: fc.record(fields).map(withoutUndefined),
    encoding: fc.constantFrom('object', 'json', 'double-json'),
  });
});

function encode(args: Record<string, unknown>, encoding: string): unknown {
  if (encoding === 'object') return args;
  if (encoding === 'json') return JSON.stringify(args);
  return JSON.stringify(JSON.stringify(args));
}

describe('validateToolCall: properties', () => {
  test('any call with every field in bounds validates and round-trips', () => {
    fc.assert(
      fc.property(validCall, ({ name, hasPosition, args, encoding }) => {
        const r = validateToolCall({ name, arguments: encode(args, encoding) }, { pair: PAIR, hasPosition });
        assert.ok(r.ok, JSON.stringify(r));
        // What arrived is what JSON carries (e.g. -0 becomes 0 in text); stake_amount left out becomes null.
        const sent = encoding === 'object' ? args : (JSON.parse(JSON.stringify(args)) as Record<string, unknown>);
        const expected: Record<string, unknown> = { ...sent };
        if (name === 'signal_entry_long' || name === 'signal_entry_short') expected.stake_amount ??= null;
        assert.deepEqual(r.decision, { tool: name, args: expected });
      }),
      { numRuns: 300 },
    );
  });

  test('any single field pushed out of bounds gives exactly one problem, naming that field', () => {
    const oneBadField = validCall.chain(({ name, hasPosition, args }) => {
      const spec = SPECS[name].spec;
      return fc.constantFrom(...Object.keys(spec)).chain((field) =>
        spec[field]!.invalid.map((bad) => ({
          name,
          hasPosition,
          args: withoutUndefined({ ...args, [field]: bad }),
          field,
        })),
      );
    });
    fc.assert(
      fc.property(oneBadField, ({ name, hasPosition, args, field }) => {
        const r = validateToolCall({ name, arguments: args }, { pair: PAIR, hasPosition });
        assert.equal(r.ok, false, `${field}=${JSON.stringify(args[field])} should be rejected`);
        if (r.ok) return;
        assert.equal(r.problems.length, 1, r.problems.join(' | '));
        assert.ok(r.problems[0]!.startsWith(`${field} `), r.problems[0]);
      }),
      { numRuns: 500 },
    );
  });
});

describe('problemKind', () => {
  test('tells every kind of problem the validator writes apart, with or without the answer prefix', () => {
    const { confidence_score: _c, ...noConfidence } = holdArgs;
    const cases: [ValidationResult, ProblemKind][] = [
      [validateToolCalls([], FLAT), 'no_tool_call'],
      [validateToolCall({ name: 'signal_buy', arguments: holdArgs }, FLAT), 'unknown_tool'],
      [validateToolCall({ name: 'signal_exit', arguments: exitArgs }, FLAT), 'tool_not_allowed'],
      [validateToolCall({ name: 'signal_wait', arguments: '{not json' }, FLAT), 'invalid_arguments'],
      [validateToolCall({ name: 'signal_wait', arguments: [holdArgs] }, FLAT), 'invalid_arguments'],
      [validateToolCall({ name: 'signal_wait', arguments: '' }, FLAT), 'invalid_arguments'],
      [
        validateToolCall({ name: 'signal_wait', arguments: { ...holdArgs, pair: 'ETH/USDT:USDT' } }, FLAT),
        'wrong_pair',
      ],
      [validateToolCall({ name: 'signal_wait', arguments: noConfidence }, FLAT), 'missing_field'],
      [validateToolCall({ name: 'signal_wait', arguments: { ...holdArgs, rsi_value: 'high' } }, FLAT), 'invalid_value'],
      [
        validateToolCall({ name: 'signal_entry_long', arguments: { ...entryArgs, leverage: 500 } }, FLAT),
        'invalid_value',
      ],
      [
        validateToolCall({ name: 'signal_entry_long', arguments: { ...entryArgs, trend_strength: 'huge' } }, FLAT),
        'invalid_value',
      ],
      [validateToolCall({ name: 'signal_wait', arguments: { ...holdArgs, reason: '' } }, FLAT), 'invalid_value'],
    ];
    for (const [result, kind] of cases) {
      const problem = problemsOf(result)[0]!;
      assert.equal(problemKind(problem), kind, problem);
      assert.equal(problemKind(`answer 2: ${problem}`), kind, problem);
    }
    const twoCalls = problemsOf(
      validateToolCalls(
        [
          { name: 'signal_buy', arguments: holdArgs },
          { name: 'signal_wait', arguments: holdArgs },
        ],
        FLAT,
      ),
    );
    assert.equal(problemKind(twoCalls[1]!), 'several_calls');
    assert.equal(
      problemKind('answer 1: the answer was cut off at the output limit of 1000 tokens: call the tool directly'),
      'cut_off',
    );
    assert.equal(problemKind('something nobody wrote'), 'other');
  });
});
