// Module load tracing for a spawned `llm-trader` process: `node --import <this file> bin/llm-trader.js ...` with
// LLM_TRADER_MODULE_TRACE=<file> appends to <file>, one per line, the URL of every ES module the process resolves
// (a resolve hook on Node's loader thread, module-trace-hooks.mjs) and, when the process exits, the path of every
// CommonJS module it loaded (require.cache, which also holds the CommonJS packages that ES modules import).
// Used by test/cli/lazy-loading.test.ts. Plain JavaScript: it runs in the child, without tsx.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const out = process.env.LLM_TRADER_MODULE_TRACE;
if (!out) throw new Error('module-trace.mjs: set LLM_TRADER_MODULE_TRACE to the file to write');
register('./module-trace-hooks.mjs', import.meta.url, { data: { out } });
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => {
  const files = Object.keys(cache);
  if (files.length > 0) appendFileSync(out, `${files.join('\n')}\n`);
});
