import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { devServerExecutable, parseAddress, startDevServer } from '../../src/worker/dev-server';
import { OperatorError } from '../../src/worker/errors';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/messages';

describe('dev server', () => {
  test('addresses: host and port, 7233 by default; garbage is refused', () => {
    assert.deepEqual(parseAddress('localhost:7233'), { host: 'localhost', port: 7233 });
    assert.deepEqual(parseAddress('127.0.0.1:17233'), { host: '127.0.0.1', port: 17233 });
    assert.deepEqual(parseAddress('localhost'), { host: 'localhost', port: 7233 });
    assert.throws(() => parseAddress('localhost:99999'), OperatorError);
    assert.throws(() => parseAddress('http://localhost:7233'), /host:port/);
  });

  test('the Temporal CLI: TEMPORAL_CLI_PATH, else `temporal` on the PATH, else a download', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'llm-trader-cli-'));
    const bin = path.join(dir, 'temporal');
    writeFileSync(bin, '#!/bin/sh\n');
    chmodSync(bin, 0o755);
    const empty = mkdtempSync(path.join(tmpdir(), 'llm-trader-empty-'));
    assert.deepEqual(devServerExecutable({ TEMPORAL_CLI_PATH: bin, PATH: '' }), { type: 'existing-path', path: bin });
    assert.deepEqual(devServerExecutable({ PATH: [empty, dir].join(path.delimiter) }), {
      type: 'existing-path',
      path: bin,
    });
    assert.deepEqual(devServerExecutable({ PATH: empty }), { type: 'cached-download' });
    assert.throws(
      () => devServerExecutable({ TEMPORAL_CLI_PATH: path.join(empty, 'nope') }),
      /TEMPORAL_CLI_PATH=.*nope does not exist/,
    );
  });

  test('refuses to stand in for a remote or TLS server, before starting anything', async () => {
    const base = { namespace: 'default', taskQueue: 'q', apiKey: undefined };
    await assert.rejects(
      startDevServer({ data_dir: tmpdir() }, { ...base, address: 'temporal.example.com:7233', tls: false }),
      /only starts a server on this machine/,
    );
    await assert.rejects(
      startDevServer({ data_dir: tmpdir() }, { ...base, address: 'localhost:7233', tls: {} }),
      /neither TLS nor API keys/,
    );
  });

  test('runs the Temporal CLI with the address, Web UI, persistence under data_dir and the search attributes', async () => {
    // a stand-in for the Temporal CLI that records its arguments and exits: the start fails, after the call is seen
    const dir = mkdtempSync(path.join(tmpdir(), 'llm-trader-fake-cli-'));
    const argsFile = path.join(dir, 'args.txt');
    const cli = path.join(dir, 'temporal');
    writeFileSync(cli, `#!/bin/sh\nprintf '%s\\n' "$@" > '${argsFile}'\nexit 3\n`);
    chmodSync(cli, 0o755);
    const dataDir = path.join(dir, 'user_data');
    const settings = {
      address: 'localhost:17299',
      namespace: 'trading',
      taskQueue: 'q',
      tls: false as const,
      apiKey: undefined,
    };
    await assert.rejects(
      startDevServer({ data_dir: dataDir }, settings, { env: { TEMPORAL_CLI_PATH: cli } }),
      (err: Error) =>
        err instanceof OperatorError && /could not start a Temporal dev server at localhost:17299/.test(err.message),
    );
    const args = readFileSync(argsFile, 'utf8').trim().split('\n');
    const value = (flag: string): string | undefined => args[args.indexOf(flag) + 1];
    assert.deepEqual(args.slice(0, 2), ['server', 'start-dev']);
    assert.equal(value('--port'), '17299');
    assert.equal(value('--ip'), '127.0.0.1');
    assert.equal(value('--namespace'), 'trading');
    assert.equal(value('--ui-port'), '18299', 'the Web UI on the server port + 1000');
    assert.equal(value('--db-filename'), path.join(dataDir, 'temporal.sqlite'));
    assert.ok(existsSync(dataDir), 'data_dir is created for the database');
    const attributes = args.flatMap((a, i) => (args[i - 1] === '--search-attribute' ? [a] : []));
    assert.deepEqual(
      attributes,
      Object.entries(SEARCH_ATTRIBUTES).map(([name, type]) => `${name}=${type}`),
    );
  });
});
