#!/usr/bin/env node
// Runs the built JavaScript in dist/app (scripts/build.mjs: `npm run build`, which `npm ci` runs as `prepare`): no
// TypeScript compiler at run time. A build older than the sources it was made from is refused, with what to run.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

/** Why dist/app cannot be run as the current sources, or null when it can. */
function staleBuild() {
  let info;
  try {
    info = JSON.parse(readFileSync(`${root}dist/app/build-info.json`, 'utf8'));
  } catch {
    return 'the command is not built (no dist/app)';
  }
  try {
    statSync(`${root}src`);
  } catch {
    return null; // an install without the sources: the build is all there is
  }
  // size and modification time first (a stat per file); the content only when the time differs (a checkout or a
  // copy that kept the file as it was)
  for (const [file, [size, mtimeMs, sha256]] of Object.entries(info.sources)) {
    let st;
    try {
      st = statSync(root + file);
    } catch {
      return `${file} was deleted since the last build`;
    }
    if (st.size !== size) return `${file} changed since the last build`;
    if (
      st.mtimeMs !== mtimeMs &&
      createHash('sha256')
        .update(readFileSync(root + file))
        .digest('hex') !== sha256
    ) {
      return `${file} changed since the last build`;
    }
  }
  return null;
}

const stale = staleBuild();
if (stale !== null) {
  process.stderr.write(`llm-trader: ${stale}: run \`npm run build\` (npm ci and npm install run it too)\n`);
  process.exit(1);
}
// stack traces (--verbose, DEBUG=1) name the TypeScript sources
const debug = process.env.DEBUG ?? '';
if (process.argv.includes('--verbose') || !['', '0', 'false'].includes(debug)) process.setSourceMapsEnabled(true);
await import('../dist/app/cli/main.js');
