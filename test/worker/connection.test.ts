import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig, type Config } from '../../src/core/config';
import {
  TemporalUnreachableError,
  connectClient,
  connectionOptions,
  isReachable,
  temporalSettings,
} from '../../src/worker/connection';

function config(temporal: Record<string, unknown> = {}): Config {
  const parsed = parseConfig({ temporal });
  if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('; '));
  return parsed.config;
}

describe('connection settings', () => {
  test('come from config.temporal when the environment says nothing', () => {
    const s = temporalSettings(
      config({ address: 'temporal.internal:7233', namespace: 'trading', task_queue: 'q1' }),
      {},
    );
    assert.deepEqual(s, {
      address: 'temporal.internal:7233',
      namespace: 'trading',
      taskQueue: 'q1',
      tls: false,
      apiKey: undefined,
    });
    assert.deepEqual(connectionOptions(s), { address: 'temporal.internal:7233', tls: false });
  });

  test('TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE override the config (docker-compose); blank values do not', () => {
    const env = { TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'prod' };
    const s = temporalSettings(config(), env);
    assert.equal(s.address, 'temporal:7233');
    assert.equal(s.namespace, 'prod');
    assert.equal(temporalSettings(config(), { TEMPORAL_ADDRESS: '  ' }).address, 'localhost:7233');
  });

  test('an API key turns TLS on and is sent, and only through the connection options', () => {
    const s = temporalSettings(config(), { TEMPORAL_API_KEY: 'key-abc-123456' });
    assert.deepEqual(s.tls, {});
    assert.equal(s.apiKey, 'key-abc-123456');
    assert.deepEqual(connectionOptions(s), { address: 'localhost:7233', tls: {}, apiKey: 'key-abc-123456' });
  });

  test('temporal.tls turns TLS on without a key', () => {
    assert.deepEqual(temporalSettings(config({ tls: true }), {}).tls, {});
  });

  test('mTLS: the certificate, key and CA files are read; a certificate without its key is refused', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'llm-trader-tls-'));
    for (const [name, body] of [
      ['c.pem', 'CERT'],
      ['k.pem', 'KEY'],
      ['ca.pem', 'CA'],
    ])
      writeFileSync(path.join(dir, name!), body!);
    const s = temporalSettings(config(), {
      TEMPORAL_TLS_CERT: path.join(dir, 'c.pem'),
      TEMPORAL_TLS_KEY: path.join(dir, 'k.pem'),
      TEMPORAL_TLS_CA: path.join(dir, 'ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.example.com',
    });
    assert.ok(s.tls);
    assert.equal(Buffer.from(s.tls.clientCertPair!.crt).toString(), 'CERT');
    assert.equal(Buffer.from(s.tls.clientCertPair!.key).toString(), 'KEY');
    assert.equal(Buffer.from(s.tls.serverRootCACertificate!).toString(), 'CA');
    assert.equal(s.tls.serverNameOverride, 'temporal.example.com');
    assert.throws(() => temporalSettings(config(), { TEMPORAL_TLS_CERT: path.join(dir, 'c.pem') }), /TEMPORAL_TLS_KEY/);
    assert.throws(
      () => temporalSettings(config(), { TEMPORAL_TLS_CA: path.join(dir, 'missing.pem') }),
      /TEMPORAL_TLS_CA=.*missing\.pem: cannot read/,
    );
  });
});

describe('unreachable server', () => {
  // port 1 on the loopback: nothing listens there, the connection is refused at once
  const closed = {
    address: '127.0.0.1:1',
    namespace: 'default',
    taskQueue: 'q',
    tls: false as const,
    apiKey: undefined,
  };

  test('connectClient fails with one line naming the address and how to start a server', async () => {
    await assert.rejects(connectClient(closed, { timeoutMs: 1000 }), (err: Error) => {
      assert.ok(err instanceof TemporalUnreachableError);
      assert.match(err.message, /^cannot reach the Temporal server at 127\.0\.0\.1:1 \(/);
      assert.match(err.message, /llm-trader dev/);
      assert.match(err.message, /temporal server start-dev/);
      assert.equal(err.stack, err.message, 'shown without a stack trace');
      assert.ok(!err.message.includes('\n'));
      return true;
    });
  });

  test('isReachable says false instead of throwing', async () => {
    assert.equal(await isReachable(closed, 500), false);
  });
});
