import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  TOOL_NAMES,
  allowedTools,
  toolDefinitions,
  toStrictJsonSchema,
  type JsonSchema,
  type OpenAIToolDefinition,
} from '../../src/core/tools';
import type { ToolName } from '../../src/core/types';

/**
 * Keywords OpenAI strict mode accepts that this project uses. Written out here, independently of tools.ts, so a
 * change there that emits anything else fails this test.
 */
const STRICT_SUBSET = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'enum',
  'description',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'anyOf',
]);

function isObject(v: unknown): v is JsonSchema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every violation of OpenAI strict mode rules in a schema tree, as "<path>: <what>". */
function strictViolations(node: JsonSchema, at: string): string[] {
  const out: string[] = [];
  for (const key of Object.keys(node)) {
    if (!STRICT_SUBSET.has(key)) out.push(`${at}: keyword ${key}`);
  }
  const types = Array.isArray(node.type) ? node.type : [node.type];
  if (types.includes('object') || 'properties' in node) {
    if (node.additionalProperties !== false) out.push(`${at}: additionalProperties is not false`);
    const props = isObject(node.properties) ? Object.keys(node.properties) : [];
    const required = Array.isArray(node.required) ? [...(node.required as string[])].sort() : [];
    if (JSON.stringify(required) !== JSON.stringify([...props].sort())) {
      out.push(`${at}: required ${JSON.stringify(required)} does not list every property ${JSON.stringify(props)}`);
    }
    for (const p of props) {
      const child = (node.properties as JsonSchema)[p];
      if (isObject(child)) out.push(...strictViolations(child, `${at}.${p}`));
      else out.push(`${at}.${p}: not a schema`);
    }
  }
  if (Array.isArray(node.anyOf)) {
    node.anyOf.forEach((v, i) => {
      if (isObject(v)) out.push(...strictViolations(v, `${at}.anyOf[${i}]`));
    });
  }
  return out;
}

function byName(defs: OpenAIToolDefinition[], name: ToolName): OpenAIToolDefinition {
  const def = defs.find((d) => d.function.name === name);
  assert.ok(def, `definition of ${name}`);
  return def;
}

function prop(def: OpenAIToolDefinition, field: string): JsonSchema {
  const props = def.function.parameters.properties;
  assert.ok(isObject(props));
  const p = props[field];
  assert.ok(isObject(p), `${def.function.name}.${field} exists`);
  return p;
}

describe('tool definitions', () => {
  const all = toolDefinitions([...TOOL_NAMES]);

  test('every definition is a strict OpenAI function tool within the strict-mode subset', () => {
    assert.equal(all.length, 6);
    for (const def of all) {
      assert.equal(def.type, 'function');
      assert.equal(def.function.strict, true);
      assert.ok(def.function.description.length > 0);
      const params = def.function.parameters;
      assert.equal(params.type, 'object', `${def.function.name} parameters are an object`);
      assert.deepEqual(strictViolations(params, def.function.name), []);
      const text = JSON.stringify(params);
      assert.ok(!text.includes('"not"') && !text.includes('$schema'), `${def.function.name} has no not/$schema`);
    }
  });

  test('every field has a description the model can read', () => {
    for (const def of all) {
      const props = def.function.parameters.properties;
      assert.ok(isObject(props));
      for (const [field, schema] of Object.entries(props)) {
        assert.ok(isObject(schema) && typeof schema.description === 'string' && schema.description.length > 10, field);
      }
    }
  });

  test('the fields of each tool are the ones of the domain types', () => {
    const fields = (name: ToolName) => Object.keys(byName(all, name).function.parameters.properties as JsonSchema);
    const entry = [
      'pair',
      'leverage',
      'stake_amount',
      'confidence_score',
      'key_support',
      'key_resistance',
      'rsi_value',
      'trend_strength',
      'reason',
    ];
    assert.deepEqual(fields('signal_entry_long'), entry);
    assert.deepEqual(fields('signal_entry_short'), entry);
    assert.deepEqual(fields('signal_exit'), ['pair', 'confidence_score', 'rsi_value', 'trade_score', 'reason']);
    assert.deepEqual(fields('adjust_position'), [
      'pair',
      'adjustment_pct',
      'confidence_score',
      'key_support',
      'key_resistance',
      'reason',
    ]);
    assert.deepEqual(fields('signal_hold'), ['pair', 'confidence_score', 'rsi_value', 'reason']);
    assert.deepEqual(fields('signal_wait'), ['pair', 'confidence_score', 'rsi_value', 'reason']);
  });

  test('the JSON Schema carries the real bounds', () => {
    const entry = byName(all, 'signal_entry_long');
    const lev = prop(entry, 'leverage');
    assert.equal(lev.type, 'integer');
    assert.equal(lev.minimum, 1);
    assert.equal(lev.maximum, 125);
    for (const f of ['confidence_score', 'rsi_value']) {
      assert.equal(prop(entry, f).minimum, 0, f);
      assert.equal(prop(entry, f).maximum, 100, f);
    }
    assert.equal(prop(byName(all, 'signal_exit'), 'trade_score').maximum, 100);
    assert.equal(prop(entry, 'key_support').exclusiveMinimum, 0);
    assert.equal(prop(entry, 'key_resistance').exclusiveMinimum, 0);
    assert.deepEqual(prop(entry, 'trend_strength').enum, ['strong', 'medium', 'weak']);
    assert.equal(prop(entry, 'reason').maxLength, 2000);
    assert.equal(prop(entry, 'reason').minLength, 1);
    const adj = prop(byName(all, 'adjust_position'), 'adjustment_pct');
    assert.equal(adj.minimum, -100);
    assert.equal(adj.maximum, 100);
  });

  test('the optional stake_amount is required but nullable, as strict mode wants', () => {
    const stake = prop(byName(all, 'signal_entry_short'), 'stake_amount');
    assert.deepEqual(stake.type, ['number', 'null']);
    assert.equal(stake.exclusiveMinimum, 0);
    assert.ok((byName(all, 'signal_entry_short').function.parameters.required as string[]).includes('stake_amount'));
  });

  test('descriptions say when to use each tool, that it is final, and that entries pass the risk gate', () => {
    for (const def of all) assert.match(def.function.description, /final/i, def.function.name);
    for (const name of ['signal_entry_long', 'signal_entry_short', 'signal_wait'] as const) {
      assert.match(byName(all, name).function.description, /only when flat/i, name);
    }
    for (const name of ['signal_exit', 'adjust_position', 'signal_hold'] as const) {
      assert.match(byName(all, name).function.description, /only when in a position/i, name);
    }
    for (const name of ['signal_entry_long', 'signal_entry_short'] as const) {
      assert.match(byName(all, name).function.description, /risk gate.*(clamp|reduce).*reject/i, name);
    }
  });

  test('definitions keep the requested order and are frozen, so a shared copy cannot be corrupted', () => {
    const defs = toolDefinitions(['signal_wait', 'signal_entry_long']);
    assert.deepEqual(
      defs.map((d) => d.function.name),
      ['signal_wait', 'signal_entry_long'],
    );
    assert.throws(() => {
      (defs[0]!.function.parameters as { type: string }).type = 'string';
    }, TypeError);
    assert.deepEqual(toolDefinitions([]), []);
  });
});

describe('allowedTools', () => {
  test('flat: the two entries and wait; in a position: exit, adjust and hold', () => {
    assert.deepEqual(allowedTools(false), ['signal_entry_long', 'signal_entry_short', 'signal_wait']);
    assert.deepEqual(allowedTools(true), ['signal_exit', 'adjust_position', 'signal_hold']);
    assert.deepEqual(
      toolDefinitions(allowedTools(true)).map((d) => d.function.name),
      ['signal_exit', 'adjust_position', 'signal_hold'],
    );
  });
});

describe('toStrictJsonSchema', () => {
  test('an optional property becomes required and nullable; objects get additionalProperties: false', () => {
    const out = toStrictJsonSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: {
        a: { type: 'string' },
        b: { type: 'number', minimum: 0 },
        c: { type: 'string', enum: ['x', 'y'] },
        d: { anyOf: [{ type: 'integer', maximum: 3 }, { type: 'null' }], description: 'd' },
      },
      required: ['a'],
    });
    assert.deepEqual(out, {
      type: 'object',
      properties: {
        a: { type: 'string' },
        b: { type: ['number', 'null'], minimum: 0 },
        c: { type: ['string', 'null'], enum: ['x', 'y', null] },
        d: { type: ['integer', 'null'], maximum: 3, description: 'd' },
      },
      required: ['a', 'b', 'c', 'd'],
      additionalProperties: false,
    });
  });

  test('a keyword strict mode does not support is refused with its location', () => {
    assert.throws(
      () => toStrictJsonSchema({ type: 'object', properties: { a: { type: 'number', not: { const: 0 } } } }),
      /"not" at \(root\)\.properties\.a/,
    );
  });
});
