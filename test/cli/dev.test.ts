import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type Config } from '../../src/core/config';
import { devProvider } from '../../src/cli/commands/dev';
import { runCli } from '../helpers/cli';

function config(raw: Record<string, unknown> = {}): Config {
  const parsed = parseConfig(raw);
  if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('; '));
  return parsed.config;
}

describe('dev', () => {
  test('without a config file, OPENAI_API_KEY switches the decisions to the model; otherwise the config decides', () => {
    const withKey = { OPENAI_API_KEY: 'sk-test-0123456789' };
    assert.equal(devProvider({}, config(), withKey), 'openai');
    assert.equal(devProvider({}, config(), {}), 'baseline');
    assert.equal(devProvider({}, config(), { OPENAI_API_KEY: '' }), 'baseline');
    // a config file is followed as written
    assert.equal(devProvider({ config: 'config/paper.json' }, config(), withKey), 'baseline');
    assert.equal(devProvider({ config: 'x.json' }, config({ llm: { provider: 'openai' } }), {}), 'openai');
    // --provider wins
    assert.equal(devProvider({ provider: 'baseline' }, config(), withKey), 'baseline');
  });

  test('a --data folder that does not exist: exit 2 before anything starts', () => {
    const r = runCli(['dev', '--mode', 'replay', '--data', 'no/such/folder'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--data .*no\/such\/folder is not a directory/);
  });
});
