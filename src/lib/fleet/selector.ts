/** Equality selector on labels: every key must be present with the same value. */
export function matchesSelector(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/** Parses `k=v` flags (repeatable) into a selector; returns an error message for a bad one. */
export function parseSelectorFlags(flags: readonly string[] | undefined): Record<string, string> | string | undefined {
  if (!flags || flags.length === 0) return undefined;
  const sel: Record<string, string> = {};
  for (const f of flags) {
    for (const part of f.split(',')) {
      const m = /^([a-z0-9][a-z0-9._/-]*)=([A-Za-z0-9._-]+)$/.exec(part.trim());
      if (!m) return `--selector "${part}" is not key=value`;
      sel[m[1]] = m[2];
    }
  }
  return sel;
}
