/**
 * The CLI's top-level error handler: turns any failure into one line a person can act on, and an exit code.
 *
 * Exit codes: 2 = bad input or configuration (usage, config file, data folder, decision log, output folder in use,
 * a missing file); 1 = a runtime failure (disk full, permission denied, read-only file system, network, SQLite,
 * Temporal connection, a failed run). With `--verbose` or `DEBUG=1` the stack trace (and its causes) follows.
 *
 * File-system, network and SQLite errors are recognised by their `code` anywhere in the `cause` chain (wrappers such
 * as "cannot write <file>" keep the original as `cause`), and the line says which file or host and what to do.
 */
import { ConfigError } from '../config/errors';
import { InputError, OperatorError } from '../worker/errors';

export interface DescribedError {
  /** one line (a config error lists its problems on the following lines) */
  message: string;
  exitCode: 1 | 2;
}

interface SystemErrorLike extends Error {
  code?: string;
  path?: string;
  dest?: string;
  syscall?: string;
  address?: string;
  port?: number;
  hostname?: string;
}

/** The error and its causes, outermost first (at most 10, cycles cut). */
function chain(err: unknown): unknown[] {
  const out: unknown[] = [];
  let cur: unknown = err;
  while (cur !== undefined && cur !== null && out.length < 10 && !out.includes(cur)) {
    out.push(cur);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return out;
}

function codeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

/** `message`, plus `(path)` when the message does not name it already. */
function withPath(message: string, path: string | undefined): string {
  return path && !message.includes(path) ? `${message} (${path})` : message;
}

const FS_HINTS: Record<string, { hint: string; exitCode: 1 | 2 }> = {
  ENOENT: { hint: 'no such file or folder: check the path', exitCode: 2 },
  ENOTDIR: { hint: 'a part of the path is a file, not a folder: check the path', exitCode: 2 },
  EISDIR: { hint: 'a folder is where a file was expected: check the path', exitCode: 2 },
  EACCES: {
    hint: 'permission denied: give this user access to it (chmod/chown), or use another folder (--out, data_dir)',
    exitCode: 1,
  },
  EPERM: {
    hint: 'operation not permitted: give this user access to it, or use another folder (--out, data_dir)',
    exitCode: 1,
  },
  ENOSPC: {
    hint: 'the disk is full: free some space or write elsewhere (--out, data_dir); nothing was left half-written',
    exitCode: 1,
  },
  EDQUOT: { hint: 'the disk quota is used up: free some space or write elsewhere (--out, data_dir)', exitCode: 1 },
  EROFS: {
    hint: 'the file system is read-only: write elsewhere (--out, data_dir) or mount it writable',
    exitCode: 1,
  },
  EMFILE: { hint: 'too many open files: raise the limit (ulimit -n) or run fewer pairs at once', exitCode: 1 },
};

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

const SQLITE_HINTS: [RegExp, string][] = [
  [/^SQLITE_READONLY/, 'the database is read-only: make the file and its folder writable, or use another data_dir'],
  [/^SQLITE_FULL/, 'the disk is full: free some space; the database keeps what was committed'],
  [/^SQLITE_CANTOPEN/, 'the database cannot be opened: check that its folder exists and is writable'],
  [/^SQLITE_(CORRUPT|NOTADB)/, 'the file is not a SQLite database or is damaged: move it away (it is recreated)'],
  [/^SQLITE_(BUSY|LOCKED)/, 'the database is locked by another process: wait for it, or stop it'],
  [/^SQLITE_IOERR/, 'the disk failed to read or write the database: check the disk and free space'],
];

/** A Temporal client failure to reach or keep its server (gRPC UNAVAILABLE, transport and connection errors). */
function isTemporalConnection(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (['TransportError', 'ConnectionError'].includes(e.name)) return true;
  const grpcCode = (e as { code?: unknown }).code;
  return (
    (e.name === 'ServiceError' || /^\d+ UNAVAILABLE/.test(e.message) || grpcCode === 14) &&
    /UNAVAILABLE|connect|transport/i.test(e.message)
  );
}

/** The line and exit code for `err` (see the module comment). */
export function describeError(err: unknown): DescribedError {
  const errors = chain(err);
  const top = errors[0];
  const topMessage = top instanceof Error ? top.message : String(top);
  if (top instanceof ConfigError) return { message: `invalid ${top.message}`, exitCode: 2 };

  for (const e of errors) {
    const code = codeOf(e);
    if (code === undefined) continue;
    const sys = e as SystemErrorLike;
    const fs = FS_HINTS[code];
    if (fs) {
      return { message: `${withPath(firstLine(topMessage), sys.path)}: ${fs.hint}`, exitCode: fs.exitCode };
    }
    if (NETWORK_CODES.has(code)) {
      const host = sys.hostname ?? (sys.address ? `${sys.address}${sys.port ? `:${sys.port}` : ''}` : undefined);
      return {
        message:
          `${withPath(firstLine(topMessage), host)}: the network connection failed (${code}): check the address ` +
          '(llm.api_base, temporal.address, exchange) and that the machine can reach it',
        exitCode: 1,
      };
    }
    const sqlite = SQLITE_HINTS.find(([re]) => re.test(code));
    if (sqlite) return { message: `${firstLine(topMessage)}: ${sqlite[1]}`, exitCode: 1 };
  }
  if (errors.some(isTemporalConnection)) {
    return {
      message:
        `${firstLine(topMessage)}: the Temporal server does not answer: check temporal.address (TEMPORAL_ADDRESS) ` +
        'and that a server runs there (`llm-trader dev` starts one)',
      exitCode: 1,
    };
  }
  if (top instanceof InputError) return { message: topMessage, exitCode: 2 };
  if (top instanceof OperatorError) return { message: topMessage, exitCode: 1 };
  return {
    message: `${firstLine(topMessage)} (an unexpected error: run with --verbose or DEBUG=1 for the stack trace)`,
    exitCode: 1,
  };
}

/** True when the stack traces are wanted: `--verbose` on the command line or `DEBUG` set (not 0/false). */
export function wantsStack(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  const debug = env.DEBUG;
  return argv.includes('--verbose') || (debug !== undefined && debug !== '' && debug !== '0' && debug !== 'false');
}

/** The stack of `err` and of each of its causes. */
export function stackText(err: unknown): string {
  return chain(err)
    .map(
      (e, i) =>
        `${i === 0 ? '' : 'caused by: '}${e instanceof OperatorError ? (e.trace ?? e.message) : e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    )
    .join('\n');
}
