/**
 * Files written whole: the content goes to a temporary file in the same folder, is flushed to disk, and the temporary
 * file is renamed over the target (an atomic replace on one file system). A reader sees the old file or the new one,
 * never a half-written one; a failure part-way (disk full, read-only folder, a kill) leaves the target as it was.
 */
import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The file-system calls {@link writeFileAtomic} makes (tests pass one that fails like a full disk). */
export type AtomicWriteFs = Pick<
  typeof nodeFs,
  'openSync' | 'writeSync' | 'fsyncSync' | 'closeSync' | 'renameSync' | 'unlinkSync'
>;

/** The temporary name a write of `file` uses: hidden, in the same folder, unique per process and call. */
export function temporaryName(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Writes `data` to `file` whole (see the module comment). The folder must exist.
 * @param options `fs`: the calls to make (default node:fs); `temp`: the temporary file (default {@link temporaryName})
 * @throws Error `cannot write <file>: <reason>` with the file-system error as `cause` (its `code`, e.g. ENOSPC, tells
 *   what happened); the temporary file is removed and `file` is untouched
 */
export function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: { fs?: AtomicWriteFs; temp?: string } = {},
): void {
  const fs = options.fs ?? nodeFs;
  const temp = options.temp ?? temporaryName(file);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fd: number | null = null;
  try {
    fd = fs.openSync(temp, 'w', 0o644);
    let offset = 0;
    while (offset < bytes.length) offset += fs.writeSync(fd, bytes, offset, bytes.length - offset);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(temp, file);
  } catch (err) {
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    try {
      fs.unlinkSync(temp);
    } catch {
      // never created, or already gone
    }
    throw new Error(`cannot write ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
