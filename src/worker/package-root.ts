/**
 * The llm-trader package's root folder (where package.json is), found from this module's location: the sources run
 * from src/ (tsx: tests, benches) and the command from the build in dist/cli (bundled chunks at another depth).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'llm-trader'
    ) {
      return dir;
    }
    if (dirname(dir) === dir) throw new Error(`no llm-trader package.json above ${from}`);
  }
}

/** The package root, absolute. */
export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
