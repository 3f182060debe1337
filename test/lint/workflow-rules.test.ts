import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { repoRoot } from '../helpers/cli';

// Lint a probe file placed in src/workflows with the project's real ESLint config.
const probes: string[] = [];
after(() => probes.forEach((p) => rmSync(p, { force: true })));

async function lintWorkflowSource(name: string, source: string): Promise<string[]> {
  const file = join(repoRoot, 'src/workflows', `__lint_probe_${process.pid}_${name}.ts`);
  probes.push(file);
  writeFileSync(file, source);
  const eslint = new ESLint({ cwd: repoRoot });
  const [result] = await eslint.lintFiles([file]);
  return (result?.messages ?? []).filter((m) => m.severity === 2).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('lint keeps workflow code deterministic', () => {
  test('a Node built-in import in src/workflows fails lint', async () => {
    const errors = await lintWorkflowSource(
      'fs',
      "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n",
    );
    assert.ok(
      errors.some((e) => e.includes('no-restricted-imports') && e.includes('no Node built-ins')),
      errors.join('\n'),
    );
  });

  test('bare built-in names (fs, crypto) are caught too', async () => {
    const errors = await lintWorkflowSource(
      'crypto',
      "import { randomUUID } from 'crypto';\nexport const x = randomUUID;\n",
    );
    assert.ok(
      errors.some((e) => e.includes('no-restricted-imports')),
      errors.join('\n'),
    );
  });

  test('I/O libraries (ccxt, openai, better-sqlite3) fail lint', async () => {
    const errors = await lintWorkflowSource(
      'io',
      "import OpenAI from 'openai';\nimport Database from 'better-sqlite3';\nexport const x = [OpenAI, Database];\n",
    );
    assert.equal(errors.filter((e) => e.includes('no-restricted-imports')).length, 2, errors.join('\n'));
  });

  test('Math.random fails lint', async () => {
    const errors = await lintWorkflowSource('random', 'export const x = Math.random();\n');
    assert.ok(
      errors.some((e) => e.includes('no-restricted-properties')),
      errors.join('\n'),
    );
  });

  test('a value import of activities fails, a type-only import passes', async () => {
    const valueErrors = await lintWorkflowSource(
      'act',
      "import { createActivities } from '../activities';\nexport const x = createActivities;\n",
    );
    assert.ok(
      valueErrors.some((e) => e.includes('no-restricted-imports')),
      valueErrors.join('\n'),
    );
    const typeErrors = await lintWorkflowSource(
      'acttype',
      "import type { Candle } from '../exchange/port';\nexport type X = Candle;\n",
    );
    assert.deepEqual(
      typeErrors.filter((e) => e.includes('no-restricted-imports')),
      [],
    );
  });

  test('pure core imports are allowed', async () => {
    const errors = await lintWorkflowSource(
      'ok',
      "import { parseConfig } from '../core/config';\nexport const x = parseConfig;\n",
    );
    assert.deepEqual(errors, []);
  });
});
