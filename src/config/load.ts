/**
 * Reads the configuration file and the environment. The schema itself is pure and lives in src/core/config.ts.
 *
 * Precedence: schema defaults < the JSON file < environment variables (secrets only):
 *   OPENAI_API_KEY -> llm.api_key, EXCHANGE_API_KEY -> exchange.api_key, EXCHANGE_API_SECRET -> exchange.api_secret.
 */
import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseJsonc, printParseErrorCode, visit, type JSONPath, type ParseError } from 'jsonc-parser';
import { formatPath } from '../core/config';
import { parseConfig, type Config } from '../core/config';
import { ConfigError } from './errors';

// in its own module so that the command's error handler can recognise it without loading the schema
export { ConfigError };

export const SECRET_ENV = {
  OPENAI_API_KEY: ['llm', 'api_key'],
  EXCHANGE_API_KEY: ['exchange', 'api_key'],
  EXCHANGE_API_SECRET: ['exchange', 'api_secret'],
} as const;

/** Line and column of a character offset, for JSON syntax errors. */
function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const col = offset - before.lastIndexOf('\n');
  return `line ${line}, column ${col}`;
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    // Node 20's JSON.parse does not say where the error is: locate it with a strict JSON scanner.
    const errors: ParseError[] = [];
    parseJsonc(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
    const first = errors[0];
    const where = first ? ` at ${lineCol(text, first.offset)} (${printParseErrorCode(first.error)})` : '';
    const message = err instanceof Error ? err.message : String(err);
    throw new ConfigError(file, [
      `is not valid JSON${where}: ${message}. Fix the syntax (JSON allows no comments or trailing commas).`,
    ]);
  }
}

/**
 * Keys that appear more than once in one object of the JSON text (JSON.parse keeps the last one silently), each as
 * `<path> appears twice (lines 3 and 9)`.
 */
export function duplicateKeys(text: string): string[] {
  const problems: string[] = [];
  // one map per open object: key -> line of its first occurrence
  const stack: Map<string, number>[] = [];
  visit(
    text,
    {
      onObjectBegin: () => {
        stack.push(new Map());
      },
      onObjectEnd: () => {
        stack.pop();
      },
      onObjectProperty: (
        property: string,
        _offset,
        _length,
        startLine,
        _startCharacter,
        pathSupplier: () => JSONPath,
      ) => {
        const keys = stack.at(-1);
        if (!keys) return;
        const line = startLine + 1;
        const first = keys.get(property);
        if (first === undefined) {
          keys.set(property, line);
          return;
        }
        const path = formatPath([...pathSupplier(), property]);
        problems.push(
          `${path} appears more than once (${first === line ? `twice on line ${line}` : `lines ${first} and ${line}`}); JSON keeps only the last one: remove the other`,
        );
      },
    },
    { disallowComments: true, allowTrailingComma: false },
  );
  return problems;
}

/**
 * Load and validate a config. With no file, the documented defaults apply (those of config/paper.json).
 * Throws ConfigError listing every problem (key path, rule, value).
 */
export function loadConfig(file: string | null, env: NodeJS.ProcessEnv = process.env): Config {
  let raw: Record<string, unknown> = {};
  if (file !== null) {
    const path = resolve(file);
    if (!existsSync(path)) {
      throw new ConfigError(file, [
        `file not found (${path}). Pass --config with an existing file, e.g. config/paper.json.`,
      ]);
    }
    const text = readFileSync(path, 'utf8');
    const parsed = parseJson(file, text);
    const duplicates = duplicateKeys(text);
    if (duplicates.length > 0) throw new ConfigError(file, duplicates);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConfigError(file, ['must contain a JSON object at the top level']);
    }
    raw = parsed as Record<string, unknown>;
  }
  for (const [name, [section, key]] of Object.entries(SECRET_ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      const current = raw[section];
      const sectionObj = current !== null && typeof current === 'object' && !Array.isArray(current) ? current : {};
      raw = { ...raw, [section]: { ...sectionObj, [key]: value } };
    }
  }
  const result = parseConfig(raw);
  if (!result.ok)
    throw new ConfigError(
      file,
      result.problems.map((p) => p.message),
    );
  return result.config;
}
