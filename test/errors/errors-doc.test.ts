import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS_DOC, errorsDoc } from '../../scripts/gen-errors-doc.js';
import { ERROR_HINTS } from '../../src/lib/errors.js';

describe('docs/errors.md', () => {
  it('is the catalogue of src/lib/errors.ts as generated (run `npm run docs:errors` after changing a code)', () => {
    expect(readFileSync(ERRORS_DOC, 'utf8')).toBe(errorsDoc());
  });

  it('lists every code once', () => {
    const doc = readFileSync(ERRORS_DOC, 'utf8');
    for (const code of Object.keys(ERROR_HINTS)) expect(doc.split(`| \`${code}\` |`).length - 1).toBe(1);
  });
});
