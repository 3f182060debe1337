import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Connection } from '@temporalio/client';
import { OperatorError } from '../../src/worker/errors';
import {
  NamespaceNotFoundError,
  PAIR_SEARCH_ATTRIBUTE_KEYS,
  devServerSearchAttributeArgs,
  ensureSearchAttributes,
  indexedValueType,
} from '../../src/worker/search-attributes';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/messages';

// Temporal API enum temporal.api.enums.v1.IndexedValueType: TEXT 1, KEYWORD 2, INT 3, DOUBLE 4, BOOL 5, DATETIME 6
const KEYWORD = 2;
const BOOL = 5;
const WANTED: Record<string, number> = {
  TradingPair: KEYWORD,
  TradingMode: KEYWORD,
  Paused: BOOL,
  PositionSide: KEYWORD,
  LastAction: KEYWORD,
};

/** An operator service holding `registered` custom attributes, recording what is added. */
function fakeConnection(
  registered: Record<string, number>,
  opts: { listError?: { code: number; message: string }; addErrorOnce?: { code: number; message: string } } = {},
) {
  const added: Record<string, number>[] = [];
  let addError = opts.addErrorOnce;
  const connection = {
    operatorService: {
      listSearchAttributes: ({ namespace }: { namespace: string }) => {
        assert.equal(namespace, 'ns1');
        if (opts.listError)
          return Promise.reject(Object.assign(new Error(opts.listError.message), { code: opts.listError.code }));
        return Promise.resolve({ customAttributes: { ...registered }, systemAttributes: { WorkflowType: KEYWORD } });
      },
      addSearchAttributes: ({
        namespace,
        searchAttributes,
      }: {
        namespace: string;
        searchAttributes: Record<string, number>;
      }) => {
        assert.equal(namespace, 'ns1');
        if (addError) {
          const e = addError;
          addError = undefined;
          Object.assign(registered, searchAttributes); // someone else registered them meanwhile
          return Promise.reject(Object.assign(new Error(e.message), { code: e.code }));
        }
        added.push(searchAttributes);
        Object.assign(registered, searchAttributes);
        return Promise.resolve({});
      },
    },
  } as unknown as Connection;
  return { connection, added };
}

describe('search attributes', () => {
  test("the keys are the workflows' attributes, and the dev server flags spell them as the Temporal CLI does", () => {
    assert.deepEqual(
      PAIR_SEARCH_ATTRIBUTE_KEYS.map((k) => k.name),
      Object.keys(SEARCH_ATTRIBUTES),
    );
    assert.deepEqual(
      devServerSearchAttributeArgs(),
      Object.entries(SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
    );
    assert.equal(indexedValueType('KEYWORD'), KEYWORD);
    assert.equal(indexedValueType('BOOL'), BOOL);
  });

  test('registers all five on an empty namespace, with the right types', async () => {
    const { connection, added } = fakeConnection({});
    const result = await ensureSearchAttributes(connection, 'ns1');
    assert.deepEqual(added, [WANTED]);
    assert.deepEqual(result.added.sort(), Object.keys(WANTED).sort());
    assert.deepEqual(result.existing, []);
  });

  test('idempotent: a second run adds nothing; a partial registration is completed', async () => {
    const full = fakeConnection({ ...WANTED });
    assert.deepEqual(await ensureSearchAttributes(full.connection, 'ns1'), {
      added: [],
      existing: Object.keys(WANTED),
    });
    assert.deepEqual(full.added, []);
    const partial = fakeConnection({ TradingPair: KEYWORD, Paused: BOOL });
    const result = await ensureSearchAttributes(partial.connection, 'ns1');
    assert.deepEqual(partial.added, [{ TradingMode: KEYWORD, PositionSide: KEYWORD, LastAction: KEYWORD }]);
    assert.deepEqual(result.existing, ['TradingPair', 'Paused']);
  });

  test('an attribute registered with another type is reported with the way out', async () => {
    const { connection, added } = fakeConnection({ Paused: KEYWORD });
    await assert.rejects(ensureSearchAttributes(connection, 'ns1'), (err: Error) => {
      assert.ok(err instanceof OperatorError);
      assert.match(err.message, /Paused is registered on namespace ns1 as Keyword, but llm-trader needs Bool/);
      assert.match(err.message, /temporal operator search-attribute remove --name Paused/);
      return true;
    });
    assert.deepEqual(added, []);
  });

  test('a missing namespace is its own error (setup --wait retries it while a server starts)', async () => {
    const { connection } = fakeConnection(
      {},
      { listError: { code: 5, message: '5 NOT_FOUND: Namespace ns1 is not found.' } },
    );
    await assert.rejects(ensureSearchAttributes(connection, 'ns1'), NamespaceNotFoundError);
  });

  test('registered by someone else at the same time: lists again and accepts them', async () => {
    const { connection } = fakeConnection({}, { addErrorOnce: { code: 6, message: '6 ALREADY_EXISTS' } });
    const result = await ensureSearchAttributes(connection, 'ns1');
    assert.deepEqual(result.added, []);
    assert.deepEqual(result.existing.sort(), Object.keys(WANTED).sort());
  });
});
