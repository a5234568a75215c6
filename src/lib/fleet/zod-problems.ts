import { z } from 'zod';
import { locate, type ParsedDoc } from './parse.js';
import { didYouMean, formatPath, unknownFieldHint, type PathSeg, type Problem } from './problems.js';

/** The object keys a schema accepts at a path, for "did you mean" hints on unknown fields. */
export function keysAt(schema: z.ZodTypeAny, path: readonly PathSeg[]): string[] {
  let s: z.ZodTypeAny | undefined = schema;
  const unwrap = (t: z.ZodTypeAny): z.ZodTypeAny => {
    for (;;) {
      if (t instanceof z.ZodOptional || t instanceof z.ZodNullable) t = t._def.innerType;
      else if (t instanceof z.ZodDefault) t = t._def.innerType;
      else if (t instanceof z.ZodEffects) t = t._def.schema;
      else return t;
    }
  };
  const objectOf = (t: z.ZodTypeAny): z.ZodObject<any> | undefined => {
    t = unwrap(t);
    if (t instanceof z.ZodObject) return t;
    if (t instanceof z.ZodUnion) for (const o of t._def.options as z.ZodTypeAny[]) { const r = objectOf(o); if (r) return r; }
    return undefined;
  };
  for (const seg of path) {
    if (!s) return [];
    s = unwrap(s);
    if (s instanceof z.ZodUnion) s = objectOf(s);
    if (s instanceof z.ZodObject) s = s.shape[seg as string];
    else if (s instanceof z.ZodArray) s = s.element;
    else if (s instanceof z.ZodRecord) s = s._def.valueType;
    else return [];
  }
  const o = s ? objectOf(s) : undefined;
  return o ? Object.keys(o.shape) : [];
}

/** Turns zod issues for one part of a document (`base` is e.g. ["spec"]) into located problems. */
export function zodProblems(d: ParsedDoc, base: PathSeg[], schema: z.ZodTypeAny, error: z.ZodError, out: Problem[], max = Infinity): void {
  for (const issue of flatten(error.issues)) {
    if (out.length >= max) return;
    const rel = issue.path as PathSeg[];
    if (issue.code === z.ZodIssueCode.unrecognized_keys) {
      const known = keysAt(schema, rel);
      for (const key of issue.keys) {
        if (out.length >= max) return;
        const path = [...base, ...rel, key];
        const pos = locate(d, path, true);
        out.push({ severity: 'error', rule: 'unknown-field', file: d.file, ...pos, path: formatPath(path), message: `unknown field "${key}"`, hint: unknownFieldHint(key, known) });
      }
      continue;
    }
    const path = [...base, ...rel];
    const pos = locate(d, path);
    out.push({ severity: 'error', rule: ruleOf(issue), file: d.file, ...pos, path: formatPath(path), message: messageOf(issue), hint: hintOf(issue) });
  }
}

function flatten(issues: z.ZodIssue[]): z.ZodIssue[] {
  const out: z.ZodIssue[] = [];
  for (const i of issues) {
    if (i.code === z.ZodIssueCode.invalid_union) {
      // Report the branch that got furthest (the object form when the value is an object).
      const best = i.unionErrors.map((e) => e.issues).sort((a, b) => depth(b) - depth(a) || a.length - b.length)[0];
      if (best && !best.every((x) => x.code === z.ZodIssueCode.invalid_type)) {
        out.push(...flatten(best));
        continue;
      }
      out.push({ ...i, message: 'has the wrong type or value' });
      continue;
    }
    out.push(i);
  }
  return out;
}

function depth(issues: z.ZodIssue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length));
}

function ruleOf(i: z.ZodIssue): string {
  switch (i.code) {
    case z.ZodIssueCode.invalid_type: return i.received === 'undefined' ? 'missing-field' : 'wrong-type';
    case z.ZodIssueCode.invalid_enum_value: return 'invalid-value';
    case z.ZodIssueCode.too_small:
    case z.ZodIssueCode.too_big: return 'out-of-range';
    default: return 'invalid-value';
  }
}

function messageOf(i: z.ZodIssue): string {
  if (i.code === z.ZodIssueCode.invalid_type) {
    if (i.received === 'undefined') return 'required field is missing';
    return `must be ${article(i.expected)}, not ${i.received}`;
  }
  if (i.code === z.ZodIssueCode.invalid_enum_value) return `must be one of ${i.options.map((o) => JSON.stringify(o)).join(', ')}, not ${JSON.stringify(i.received)}`;
  return i.message;
}

function hintOf(i: z.ZodIssue): string | undefined {
  if (i.code === z.ZodIssueCode.invalid_enum_value && typeof i.received === 'string') return didYouMean(i.received, i.options.map(String));
  return undefined;
}

function article(t: string): string {
  if (t === 'object') return 'a mapping';
  if (t === 'array') return 'a list';
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}
