import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/lib, lowest first: a folder imports only from its own layer and the ones
 * below it, never back up (a cycle inside one layer, fleet <-> safe-fs, is the one allowed).
 * The core never imports the CLI (src/cli, src/commands) nor oclif. docs: STYLE.md, issue 11.
 */
const LAYERS = [
  ['nginx'],
  ['fleet', 'safe-fs'],
  ['bundle', 'placement'],
  ['transport'],
  ['nodes', 'agent'],
  ['release', 'render'],
  ['plan'],
  ['reset', 'trust', 'spool', 'apply', 'bootstrap'],
  ['drift'],
  ['output'],
];
const CLI_IMPORTS = { regex: '(^|/)(cli|commands)/|^@oclif/', message: 'src/lib is the core: it never imports the CLI or oclif (STYLE.md 2).' };
const above = (i) => LAYERS.slice(i + 1).flat();
const layering = [
  // errors.ts, limits.ts, logger.ts: leaves that every layer may use.
  { files: ['src/lib/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [CLI_IMPORTS, { regex: '^\\./[a-z-]+/', message: 'a leaf of src/lib imports no folder of it' }] }] } },
  ...LAYERS.flatMap((layer, i) => layer.map((dir) => ({
    files: [`src/lib/${dir}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [CLI_IMPORTS, ...(above(i).length ? [{ regex: `(^|/)(${above(i).join('|')})/`, message: `src/lib/${dir} is below ${above(i).join(', ')} in the layering (eslint.config.js LAYERS): no import back up` }] : [])],
      }],
    },
  }))),
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '**/.edgectl/', 'test/golden/', 'test/tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly',
        clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly',
        setImmediate: 'readonly', AbortController: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly',
        performance: 'readonly', fetch: 'readonly', queueMicrotask: 'readonly', AbortSignal: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      'no-control-regex': 'off',
    },
  },
  ...layering,
);
