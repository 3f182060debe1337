// Lint rules. The block for src/workflows enforces Temporal's determinism rules: workflow code runs in a
// deterministic sandbox and is replayed, so it may not touch Node built-ins, I/O libraries or ambient
// non-determinism. (Temporal's own samples restrict Node built-ins the same way.)
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

/** Modules that do I/O or hold native code: never in a workflow bundle. */
const ioLibraries = [
  'ccxt',
  'openai',
  'better-sqlite3',
  'technicalindicators',
  'gpt-tokenizer',
  'cli-progress',
  'commander',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/activity',
  '@temporalio/testing',
];

export const workflowRules = {
  '@typescript-eslint/no-restricted-imports': [
    'error',
    {
      paths: [
        ...nodeBuiltins.map((name) => ({
          name,
          message:
            'Workflow code is deterministic and bundled for a sandbox: no Node built-ins. Do I/O in an activity.',
        })),
        ...ioLibraries.map((name) => ({
          name,
          message: `Workflow code may not import ${name}: it does I/O or is not deterministic. Use an activity.`,
        })),
      ],
      patterns: [
        {
          group: [
            '../activities',
            '../activities/*',
            '../exchange/*',
            '../store/*',
            '../llm/*',
            '../worker/*',
            '../cli/*',
            '../backtest/*',
          ],
          allowTypeImports: true,
          message: 'Workflows import only types from activities and I/O layers; pure helpers come from src/core.',
        },
      ],
    },
  ],
  'no-restricted-properties': [
    'error',
    {
      object: 'Math',
      property: 'random',
      message: "Use the workflow's deterministic helpers (uuid4) or pass randomness in.",
    },
  ],
  'no-restricted-globals': [
    'error',
    ...[
      'process',
      'Buffer',
      'require',
      'setInterval',
      'setImmediate',
      'fetch',
      'performance',
      'crypto',
      'WeakRef',
      'FinalizationRegistry',
    ].map((name) => ({ name, message: `${name} is not available or not deterministic in workflow code.` })),
  ],
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'user_data/**', 'dist/**', 'coverage/**', 'test/fixtures/lint/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: {
        console: 'readonly',
        process: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // node:test's describe()/test() return promises the runner itself awaits
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'describe', 'it', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
    },
  },
  { files: ['src/workflows/**/*.ts'], rules: workflowRules },
  prettier,
);
