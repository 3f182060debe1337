/** A config file (or the defaults with the environment) that is not valid: every problem, with its key path. */
export class ConfigError extends Error {
  constructor(
    readonly file: string | null,
    readonly problems: string[],
  ) {
    super(`${file ? `config ${file}` : 'config'}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}
