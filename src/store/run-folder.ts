/**
 * The output folder of one run (a backtest's `--out`), written so that nothing is half-written and nothing earlier is
 * lost: the run writes into a hidden staging folder beside the target (`.<name>.partial-XXXXXX`, same file system),
 * and only a run that succeeded puts it in place of the target, whole (rename). A failed or killed run leaves the
 * target as it was (a killed one also leaves its staging folder, with the decision log up to the last record).
 *
 * A target that already holds files is refused unless `force`, and even then it is replaced only after success.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError } from '../worker/errors';

export class RunFolder {
  private done = false;

  private constructor(
    /** where the outputs end up */
    readonly target: string,
    /** where the run writes them meanwhile */
    readonly staging: string,
  ) {}

  /**
   * Checks the target and creates the staging folder.
   * @param force replace a target that already holds files (after success)
   * @throws InputError when the target is a file, or holds files and `force` is not set
   */
  static prepare(target: string, force: boolean, what = 'backtest'): RunFolder {
    const abs = resolve(target);
    if (existsSync(abs)) {
      if (!statSync(abs).isDirectory()) {
        throw new InputError(`${what}: --out ${abs} is a file, not a folder; choose another --out`);
      }
      const entries = readdirSync(abs);
      if (entries.length > 0 && !force) {
        const shown = entries.slice(0, 4).join(', ') + (entries.length > 4 ? ', ...' : '');
        throw new InputError(
          `${what}: the output folder ${abs} already holds the results of a run (${shown}); choose another --out, ` +
            'or pass --force to replace them once this run has succeeded',
        );
      }
    }
    mkdirSync(dirname(abs), { recursive: true });
    const staging = mkdtempSync(join(dirname(abs), `.${basename(abs)}.partial-`));
    // mkdtemp makes it private (0700); the outputs get the permissions an ordinary folder would
    chmodSync(staging, 0o777 & ~process.umask());
    return new RunFolder(abs, staging);
  }

  /** A file of the run, in the staging folder until {@link commit}. */
  file(name: string): string {
    return join(this.staging, name);
  }

  /** Puts the staging folder in place of the target, replacing an earlier one whole. */
  commit(): void {
    if (this.done) throw new Error(`run folder ${this.target}: already committed or abandoned`);
    if (existsSync(this.target)) {
      const replaced = join(
        dirname(this.target),
        `.${basename(this.target)}.replaced-${randomBytes(4).toString('hex')}`,
      );
      renameSync(this.target, replaced);
      try {
        renameSync(this.staging, this.target);
      } catch (err) {
        renameSync(replaced, this.target);
        throw err;
      }
      rmSync(replaced, { recursive: true, force: true });
    } else {
      renameSync(this.staging, this.target);
    }
    this.done = true;
  }

  /** Removes the staging folder (the run failed); the target is untouched. */
  abandon(): void {
    if (this.done) return;
    rmSync(this.staging, { recursive: true, force: true });
    this.done = true;
  }
}
