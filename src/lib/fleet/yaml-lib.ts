import { createRequire } from 'node:module';

/**
 * The `yaml` package (syntax trees with positions) is loaded only when a file needs it: a fleet
 * whose files all take the fast path never pays for loading it.
 */
let yamlLib: typeof import('yaml') | undefined;
export const Y = (): typeof import('yaml') => (yamlLib ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));

/**
 * Options of every `yaml` parse. The schema is forced to the 1.2 core schema: a `%YAML 1.1`
 * directive would otherwise switch the document to YAML 1.1 (merge keys, `yes` as true, octal
 * and base-60 numbers). Such directives are refused anyway (parse.ts); this keeps them inert.
 * uniqueKeys is off because the package checks it in quadratic time (50,000 keys took 19 s):
 * duplicate keys are found by parse.ts in one pass instead. prettyErrors is off: positions are
 * computed from error offsets (yaml-scan.ts), and the package's code frames cost a line index
 * per parse.
 */
export const YAML_OPTIONS = { uniqueKeys: false, prettyErrors: false, strict: true, version: '1.2', schema: 'core', merge: false, resolveKnownTags: true } as const;
