import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const workflowsPath = fileURLToPath(new URL('../../src/workflows/index.ts', import.meta.url));

describe('workflow bundle', () => {
  test('builds, and contains none of ccxt, openai, better-sqlite3, technicalindicators, zod or a Node built-in', async () => {
    const ignored: string[] = [];
    const { code } = await bundleWorkflowCode({
      workflowsPath,
      logger: {
        log: () => undefined,
        trace: () => undefined,
        debug: () => undefined,
        info: () => undefined,
        warn: (message: string) => ignored.push(message),
        error: (message: string) => ignored.push(message),
      },
    });
    assert.ok(code.length > 10_000, 'the bundle has code');
    assert.match(code, /pairTrader/);
    assert.match(code, /tradeReview/);
    // webpack keys every bundled module by its path ("./node_modules/<package>/...", "./src/..."): list them
    // (a worktree whose node_modules is a symlink to another checkout's gets "../<checkout>/node_modules/...")
    const packages = new Set(
      [...code.matchAll(/"(?:\.\.?\/)+(?:[^"]*\/)?node_modules\/((?:@[^/"]+\/)?[^/"]+)\//g)].map((m) => m[1]!),
    );
    const sources = new Set([...code.matchAll(/"\.\/(src\/[^"]+)"/g)].map((m) => m[1]!));
    assert.ok(packages.has('@temporalio/workflow'), 'module ids are recognised');
    for (const lib of [
      'ccxt',
      'openai',
      'better-sqlite3',
      'technicalindicators',
      'gpt-tokenizer',
      'commander',
      'zod',
    ]) {
      assert.ok(!packages.has(lib), `${lib} was bundled into the workflow code`);
    }
    // only the workflows and the pure core: nothing that does I/O
    const outside = [...sources].filter((s) => !s.startsWith('src/workflows/') && !s.startsWith('src/core/'));
    assert.deepEqual(outside, [], 'modules outside src/workflows and src/core were bundled');
    for (const io of ['src/core/indicators.ts', 'src/core/snapshot.ts']) {
      assert.ok(!sources.has(io), `${io} (technicalindicators) was bundled`);
    }
    // Node built-ins would be required at run time; Temporal's sandbox has none
    const required = [...code.matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]!);
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    assert.deepEqual(
      required.filter((r) => builtins.has(r)),
      [],
    );
    assert.deepEqual(ignored, [], 'the bundler warned');
  });
});
