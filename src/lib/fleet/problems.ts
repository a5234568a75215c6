/** A problem found in a fleet repo: where it is, which field, what is wrong, how to fix it. */
export interface Problem {
  severity: 'error' | 'warning';
  /** Stable rule id, e.g. "unknown-field", "via-cycle". */
  rule: string;
  file: string;
  line: number;
  column: number;
  /** Field path inside the document, like spec.via[1]; empty for file-level problems. */
  path: string;
  message: string;
  hint?: string;
}

export type PathSeg = string | number;

export function formatPath(segs: readonly PathSeg[]): string {
  let out = '';
  for (const s of segs) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** The closest candidate within a small edit distance (or a case-insensitive match), for "did you mean". */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const lw = word.toLowerCase();
  for (const c of candidates) {
    if (c.toLowerCase() === lw) return c;
    const d = levenshtein(lw, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/** "did you mean `x`?" when a candidate is close enough to `word` (see closest). */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const near = closest(word, candidates);
  return near ? `did you mean \`${near}\`?` : undefined;
}

/** The hint for an unknown field: merge keys are named, else the closest allowed key, else all of them. */
export function unknownFieldHint(key: string, known: readonly string[]): string | undefined {
  if (key === '<<') return 'YAML merge keys (<<) are not supported: write the fields out.';
  return didYouMean(key, known) ?? (known.length ? `allowed here: ${known.join(', ')}` : undefined);
}

export function sortProblems(ps: Problem[]): Problem[] {
  return ps.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)));
}
