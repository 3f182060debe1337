/**
 * The writer of a backtest's decision log (`<out>/llm_decisions.jsonl`): whole, redacted lines, in order.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Redactor } from '../../core/redact';

/** The block a local policy's run (baseline, replay) gathers its decision log lines in before writing them, bytes. */
export const LOCAL_LOG_BLOCK = 256 * 1024;

/**
 * Writes a decision log line by line, whole lines only. With `blockBytes` 0 (a model's run) each record is one
 * synchronous write of the whole line (no buffer kept in the process), so a killed run loses at most the record being
 * written, and the reader skips that cut-off last line. Otherwise (a local policy, whose run is cheap to repeat) each
 * line is redacted and encoded at once into a block of `blockBytes` that is written when the next line would not fit:
 * one system call per block instead of per record (49,559 records in a 17-pair baseline run), and no line outlives its
 * record as a string (kept as strings until a block was full, some lived through two young-generation collections and
 * were promoted: that run promoted 65.6 MB to the old generation then, 60.4 MB now; `--trace-gc-nvp`). A killed run
 * then loses at most the last block.
 */
export class LineWriter {
  private readonly fd: number;
  private readonly block: Buffer | null;
  private used = 0;

  /**
   * @param file where the lines go (the run's staging folder)
   * @param name the file as errors name it (where it will be once the run has succeeded)
   */
  constructor(
    readonly file: string,
    private readonly name: string,
    private readonly redactor: Redactor,
    blockBytes = 0,
  ) {
    this.block = blockBytes > 0 ? Buffer.allocUnsafe(blockBytes) : null;
    this.fd = openSync(file, 'wx');
  }

  write(line: string): void {
    const text = this.redactor.redact(line);
    const block = this.block;
    // a UTF-16 code unit takes at most 3 bytes in UTF-8; the newline 1
    if (block === null || text.length * 3 + 1 > block.length) {
      this.flush();
      this.writeAll(Buffer.from(`${text}\n`, 'utf8'));
      return;
    }
    if (this.used + text.length * 3 + 1 > block.length) this.flush();
    this.used += block.write(text, this.used);
    block[this.used++] = 0x0a;
  }

  private flush(): void {
    if (this.used === 0) return;
    const data = this.block!.subarray(0, this.used);
    this.used = 0;
    this.writeAll(data);
  }

  private writeAll(data: Buffer): void {
    let offset = 0;
    try {
      while (offset < data.length) offset += writeSync(this.fd, data, offset, data.length - offset);
    } catch (err) {
      throw new Error(`cannot write ${this.name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** Writes the lines kept, then closes the file. */
  close(): void {
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
    }
  }
}
