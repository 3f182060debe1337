#!/usr/bin/env node
// `npm run build` (and `prepare`, which `npm ci` and `npm install` run): compiles the command to JavaScript in
// dist/app, so that `llm-trader` starts without a TypeScript compiler, then builds the workflow bundle into its cache.
//
// - esbuild bundles src/cli/main.ts with code splitting: every `await import(...)` of the sources becomes its own
//   chunk, so a command loads only the code it uses; packages (node_modules) stay external and are loaded by Node.
// - dist/app/build-info.json lists every source file that went into the build with its size, modification time and
//   SHA-256: bin/llm-trader.js refuses to run a build older than the sources (it says to run `npm run build`).
// - The build is written into a staging folder and renamed over dist/app whole, so a command started meanwhile runs
//   either the old build or the new one.
// - Then the workflow bundle of these sources (webpack, a few seconds) is built into the worker's cache
//   (node_modules/.cache/llm-trader, keyed by the sources' hash), unless it is there already: the first worker start
//   polls at once. `--no-workflow-bundle` skips that step.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../', import.meta.url));
const outDir = join(root, 'dist/app');
const staging = `${outDir}.${process.pid}.tmp`;
const started = Date.now();

rmSync(staging, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts', 'src/worker/prebuild-bundle.ts'],
  outbase: 'src',
  outdir: staging,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
});

const sources = {};
for (const input of Object.keys(result.metafile.inputs).sort()) {
  if (!input.startsWith('src/')) continue;
  const file = join(root, input);
  const st = statSync(file);
  sources[input] = [st.size, st.mtimeMs, createHash('sha256').update(readFileSync(file)).digest('hex')];
}
writeFileSync(join(staging, 'build-info.json'), `${JSON.stringify({ sources }, null, 1)}\n`);

mkdirSync(dirname(outDir), { recursive: true });
const old = `${outDir}.${process.pid}.old`;
if (existsSync(outDir)) renameSync(outDir, old);
renameSync(staging, outDir);
rmSync(old, { recursive: true, force: true });
console.log(
  `built ${relative(root, outDir)} from ${Object.keys(sources).length} source files in ${Date.now() - started} ms`,
);

if (!process.argv.includes('--no-workflow-bundle')) {
  const res = spawnSync(process.execPath, [join(outDir, 'worker/prebuild-bundle.js')], { stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
}
