import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/messages';
import { repoRoot } from '../helpers/cli';

const INSTALL_HINT =
  'docker-compose is not installed: install it to validate docker-compose.yml (Debian/Ubuntu: apt-get install -y docker-compose)';

/** Runs docker-compose in the repository with no secrets in the environment. */
function compose(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync('docker-compose', args, {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, OPENAI_API_KEY: '', EXCHANGE_API_KEY: '', EXCHANGE_API_SECRET: '' },
  });
  if ((res.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') assert.fail(INSTALL_HINT);
  if (res.error) throw res.error;
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  profiles?: string[];
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
}

/**
 * The effective configuration of a profile (`docker-compose config`: anchors merged, variables substituted), as JSON.
 * YAML is read with PyYAML, which the docker-compose package depends on.
 */
function effectiveConfig(profileArgs: string[]): Record<string, Service> {
  const out = compose([...profileArgs, 'config']);
  assert.equal(out.status, 0, out.stderr);
  const json = spawnSync(
    'python3',
    ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'],
    {
      input: out.stdout,
      encoding: 'utf8',
    },
  );
  assert.equal(json.status, 0, `cannot read the compose output as YAML (python3 with PyYAML): ${json.stderr}`);
  return (JSON.parse(json.stdout) as { services: Record<string, Service> }).services;
}

/** `name` and every service it depends on, transitively. */
function closure(services: Record<string, Service>, name: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  for (const dep of Object.keys(services[name]?.depends_on ?? {})) closure(services, dep, seen);
  return seen;
}

/** The value after `flag` in a command line. */
function flagValue(command: readonly string[] | undefined, flag: string): string | undefined {
  const i = (command ?? []).indexOf(flag);
  return i >= 0 ? command![i + 1] : undefined;
}

/** Named volume mounted at `target`, from `name:/target[:mode]` entries. */
function volumeAt(service: Service, target: string): string | undefined {
  return (service.volumes ?? []).map((v) => v.split(':')).find((parts) => parts[1] === target)?.[0];
}

describe('docker-compose.yml', () => {
  test('validates: default stack', () => {
    const r = compose(['config', '-q']);
    assert.equal(r.status, 0, r.stderr);
  });

  test('validates: production profile', () => {
    const r = compose(['--profile', 'production', 'config', '-q']);
    assert.equal(r.status, 0, r.stderr);
  });

  test('plain `up` needs no profile: the default services depend only on default services', () => {
    const services = effectiveConfig([]);
    const defaults = Object.keys(services).filter((name) => !services[name]!.profiles?.length);
    for (const name of ['temporal', 'worker', 'pairs'])
      assert.ok(defaults.includes(name), `${name} is not a default service`);
    for (const name of defaults) {
      for (const dep of closure(services, name))
        assert.ok(defaults.includes(dep), `${name} depends on ${dep}, which needs a profile`);
    }
  });

  test('the dev server persists to a volume, registers the search attributes and publishes the Web UI', () => {
    const temporal = effectiveConfig([]).temporal!;
    const command = temporal.command ?? [];
    assert.deepEqual(command.slice(0, 2), ['server', 'start-dev']);
    const registered = command.flatMap((arg, i) => (command[i - 1] === '--search-attribute' ? [arg] : []));
    assert.deepEqual(
      registered,
      Object.entries(SEARCH_ATTRIBUTES).map(([name, type]) => `${name}=${type}`),
    );
    const db = flagValue(command, '--db-filename');
    assert.ok(db, 'no --db-filename: the dev server would forget everything on restart');
    assert.ok(
      (temporal.volumes ?? []).some((v) => db.startsWith(`${v.split(':')[1]}/`) && !v.startsWith('/')),
      `the database ${db} is not on a named volume`,
    );
    const uiPort = flagValue(command, '--ui-port');
    assert.ok(uiPort);
    assert.ok(
      (temporal.ports ?? []).some((p) => p.replace(/\/tcp$/, '').endsWith(`:${uiPort}`)),
      'the Web UI port is not published',
    );
  });

  test('the worker: built from the Dockerfile, user_data on a volume, the bundle the image builds, the server by name', () => {
    const services = effectiveConfig([]);
    const worker = services.worker!;
    assert.ok(worker.build, 'the worker is built from the Dockerfile');
    assert.ok(volumeAt(worker, '/app/user_data'), 'user_data is not on a volume');
    const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    const built = /--write-bundle\s+(\S+)/.exec(dockerfile)?.[1];
    assert.ok(built, 'the Dockerfile does not build the workflow bundle');
    assert.equal(flagValue(worker.command, '--bundle'), path.posix.join('/app', built));
    // the config the worker reads is the repository's config/, mounted at /app/config
    const configFile = flagValue(worker.command, '--config') ?? '';
    assert.ok(configFile.startsWith('/app/config/'), configFile);
    assert.ok(
      existsSync(path.join(repoRoot, 'config', path.posix.basename(configFile))),
      `${configFile} is not in config/`,
    );
    const address = worker.environment?.TEMPORAL_ADDRESS ?? '';
    assert.ok(address.split(':')[0]! in services, `TEMPORAL_ADDRESS ${address} is not a service`);
    // secrets are passed through from the environment, never written into the file
    assert.equal(worker.environment?.OPENAI_API_KEY, '');
  });

  test('production: the worker and the pair starter run on PostgreSQL-backed Temporal without the dev server', () => {
    const services = effectiveConfig(['--profile', 'production']);
    const needed = new Set([...closure(services, 'prod-worker'), ...closure(services, 'prod-pairs')]);
    for (const name of needed) {
      assert.deepEqual(services[name]!.profiles, ['production'], `${name} is not in the production profile`);
    }
    assert.ok(needed.has('postgresql'));
    assert.ok(needed.has('prod-setup'), 'the search attributes are registered before the workflows start');
    const server = services['prod-temporal']!;
    assert.match(server.environment?.DB ?? '', /^postgres/);
    assert.equal(services['prod-worker']!.environment?.TEMPORAL_ADDRESS, 'prod-temporal:7233');
    assert.ok(volumeAt(services['prod-worker']!, '/app/user_data'), 'user_data is not on a volume');
  });
});
