/**
 * docs/errors.md is generated from the catalogue in src/lib/errors.ts, so the list a script
 * author reads cannot drift from the codes edgectl throws. test/errors/errors-doc.test.ts fails
 * when the committed file is out of date; `npm run docs:errors` (scripts/write-errors-doc.ts) rewrites it.
 */
import { fileURLToPath } from 'node:url';
import { ERROR_HINTS } from '../src/lib/errors.js';

export const ERRORS_DOC = fileURLToPath(new URL('../docs/errors.md', import.meta.url));

const cell = (s: string) => s.replaceAll('|', '\\|');

export function errorsDoc(): string {
  const rows = Object.entries(ERROR_HINTS).map(([code, hint]) => `| \`${code}\` | ${cell(hint)} |`);
  return [
    '# Error codes',
    '',
    '<!-- Generated from src/lib/errors.ts by scripts/gen-errors-doc.ts (npm run docs:errors): do not edit. -->',
    '',
    'Every error edgectl reports carries one of these codes, printed as `error MESSAGE [CODE]` followed',
    'by a hint. The code is stable API: scripts may match on it. The message and the hint may change.',
    'An error shown as `EDGECTL_INTERNAL` is a bug (set `EDGECTL_DEBUG=1` for its stack trace).',
    '',
    'A command that fails with a code exits 1. Per-node results of `apply`, `rollback` and',
    '`drift --fix` carry the code of their cause in `code` (for example `EDGECTL_PLAN_STALE` for a node',
    'whose current release changed since the plan, `EDGECTL_LOCKED` for one another apply holds); a',
    'node succeeded only when its outcome is `applied` or `unchanged`.',
    '',
    '| code | hint |',
    '| --- | --- |',
    ...rows,
    '',
  ].join('\n');
}
