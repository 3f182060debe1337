import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redactor, redactCredentials, secretsOf } from '../../src/core/redact';
import { ConfigSchema, redactConfig } from '../../src/core/config';
import { safeUrl } from '../../src/llm/errors';

describe('the redactor', () => {
  test('credentials inside URLs: user info and key-carrying query parameters', () => {
    assert.equal(redactCredentials('https://alice:s3cretpass@llm.example.com/v1'), 'https://***@llm.example.com/v1');
    assert.equal(
      redactCredentials('http://127.0.0.1:9/v1?api-version=2024-06-01&api-key=abcdef123456'),
      'http://127.0.0.1:9/v1?api-version=2024-06-01&api-key=***',
    );
    for (const name of ['key', 'token', 'secret', 'api_key', 'apiKey', 'access_token', 'password']) {
      assert.equal(redactCredentials(`see https://h/x?${name}=VALUE9876&b=1`), `see https://h/x?${name}=***&b=1`);
    }
    // in free text and HTML (an escaped &amp; still separates parameters)
    assert.equal(
      redactCredentials('failed: GET https://h/v1?a=1&amp;token=zzzzzzzz1 (timeout)'),
      'failed: GET https://h/v1?a=1&amp;token=*** (timeout)',
    );
    assert.equal(redactCredentials('a=b and key=value outside a query'), 'a=b and key=value outside a query');
  });

  test('bearer tokens, OpenAI-shaped keys and configured secrets', () => {
    const r = new Redactor(['exchange-secret-123', 'short']);
    assert.equal(r.size, 1);
    assert.equal(
      r.redact('Authorization: Bearer abc.def.ghi key sk-proj-ABCDEFGH12 and exchange-secret-123; short stays'),
      'Authorization: Bearer *** key sk-*** and ***; short stays',
    );
    assert.deepEqual(r.redactDeep({ 'exchange-secret-123': ['x exchange-secret-123', 5, null] }), {
      '***': ['x ***', 5, null],
    });
  });

  test('secretsOf collects the config keys and the secret environment variables', () => {
    const config = ConfigSchema.parse({ llm: { api_key: 'llm-key-123456' } });
    assert.deepEqual(secretsOf(config, { TEMPORAL_API_KEY: 'temporal-key-1', OTHER: 'x' }), [
      'llm-key-123456',
      'temporal-key-1',
    ]);
  });

  test('redactConfig blanks the keys and cleans llm.api_base', () => {
    const config = ConfigSchema.parse({
      llm: { api_key: 'llm-key-123456', api_base: 'https://bob:hunter2hunter2@proxy.example/v1?api-key=QKEY12345678' },
    });
    const safe = redactConfig(config);
    assert.equal(safe.llm.api_key, '***');
    assert.equal(safe.llm.api_base, 'https://***@proxy.example/v1?api-key=***');
    assert.doesNotMatch(JSON.stringify(safe), /hunter2|QKEY|llm-key/);
    assert.equal(safeUrl(config.llm.api_base), 'https://proxy.example/v1');
  });
});
