/**
 * Builds the workflow bundle of the current sources into the worker's cache (see cachedWorkflowBundle), so that the
 * first worker start after an install polls at once instead of bundling. Run by scripts/build.mjs (`npm run build`,
 * `prepare`) from the build in dist/app; does nothing when the cache already holds this version's bundle.
 */
import { createLogger } from './logger';
import { cachedWorkflowBundle } from './worker';

const started = Date.now();
const file = await cachedWorkflowBundle(createLogger({ level: 'WARN', format: 'pretty' }));
if (file === null) {
  console.error('workflow bundle: the cache cannot be written; workers will bundle the workflow code at start');
} else {
  console.log(`workflow bundle: ${file} (${Date.now() - started} ms)`);
}
