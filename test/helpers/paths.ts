import path from 'node:path';

/** The repository's root, whichever test file asks: test/helpers/ is two levels below it. */
export const REPO = path.resolve(import.meta.dirname, '..', '..');
/** The built CLI (`npm run build` first), as an operator runs it. */
export const BIN = path.join(REPO, 'bin', 'run.js');
export const EXAMPLE = path.join(REPO, 'fleet.example');
