import { Y } from './yaml-lib.js';

/**
 * Cheap linear checks on a file's text, run before anything that could be slow on hostile input.
 */

/**
 * Characters a fleet file may not contain anywhere, comments included: what YAML 1.2 does not
 * allow in a stream (C0 controls but tab, LF and CR; DEL; C1 controls but NEL; U+FFFE, U+FFFF),
 * and the bidirectional overrides and isolates that make a pull request's diff show other text
 * than the file holds ("Trojan Source").
 */
const NOT_ALLOWED = /[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]|[\u202a-\u202e\u2066-\u2069]/gu;
/** Printable ASCII: most files are nothing else, and this test is ten times faster than the one above. */
const NOT_ASCII = /[^\t\n\r\x20-\x7e]/;

export function badCharacter(text: string): { index: number; code: number } | undefined {
  const first = text.search(NOT_ASCII);
  if (first < 0) return undefined;
  NOT_ALLOWED.lastIndex = first;
  const m = NOT_ALLOWED.exec(text);
  return m ? { index: m.index, code: m[0].codePointAt(0)! } : undefined;
}

/** "U+0000 (NUL)": how a refused character is named in messages. */
export function characterName(code: number): string {
  const names: Record<number, string> = { 0: 'NUL', 0x1b: 'ESC', 0x7f: 'DEL', 0x202e: 'RIGHT-TO-LEFT OVERRIDE' };
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return names[code] ? `${hex} (${names[code]})` : hex;
}

/** 1-based line and column (in UTF-16 units, as the yaml package counts) of offsets into one text. */
export class LineIndex {
  private readonly starts: number[] = [0];

  constructor(text: string) {
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.starts.push(i + 1);
  }

  pos(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.starts[lo] + 1 };
  }
}

export interface Slice {
  start: number;
  end: number;
}

const MARKER = /^(?:---|\.\.\.)(?=[ \t\r\n]|$)/gm;
/** A line with content: not blank, not a comment, not a `...` document end. */
const CONTENT = /^(?!\.\.\.(?:[ \t\r\n]|$))[ \t]*[^\s#]/m;

/** How many `---` and `...` markers a text has, counting at most `max + 1`. */
export function countMarkers(text: string, max: number): number {
  let n = 0;
  MARKER.lastIndex = 0;
  while (n <= max && MARKER.exec(text)) n++;
  return n;
}

/**
 * The documents of a YAML stream with content, as ranges of its text. `---` and `...` at the
 * start of a line always end the document before them (YAML's c-forbidden: no scalar may
 * contain them), so the split is exact for any stream the parser accepts.
 */
export function documentSlices(text: string): Slice[] {
  const out: Slice[] = [];
  const push = (start: number, end: number) => {
    const body = text.slice(start, end).replace(/^---/, '');
    if (CONTENT.test(body)) out.push({ start, end });
  };
  let start = 0;
  MARKER.lastIndex = 0;
  for (let m = MARKER.exec(text); m; m = MARKER.exec(text)) {
    if (m[0] === '---') {
      push(start, m.index);
      start = m.index;
    } else {
      const nl = text.indexOf('\n', m.index);
      const end = nl < 0 ? text.length : nl + 1;
      push(start, end);
      start = end;
    }
  }
  push(start, text.length);
  return out;
}

/** The lexer's own markers, which stand for no text of the source. */
const LEXER_MARKERS = new Set(['\x02', '\x18', '\x1f']);

export interface LexScan {
  tokens: number;
  /** Offset of the first flow collection nested deeper than allowed. */
  tooDeepAt?: number;
  /** More tokens than allowed: the scan stopped there. */
  tooMany: boolean;
}

/**
 * Flow depth and token count, as the yaml package's own lexer sees the text: quotes, escapes,
 * comments and block scalars are read exactly as the parser reads them, so nothing can hide
 * brackets from this scan (a hand-written one was blinded by `"\\"`). Stops at the first limit
 * passed, so it costs at most `maxTokens` tokens.
 */
export function lexScan(text: string, maxTokens: number, maxDepth: number): LexScan {
  let depth = 0;
  let offset = 0;
  let tokens = 0;
  for (const tok of new (Y().Lexer)().lex(text)) {
    if (++tokens > maxTokens) return { tokens, tooMany: true };
    if (tok === '[' || tok === '{') {
      if (++depth > maxDepth) return { tokens, tooDeepAt: offset, tooMany: false };
    } else if ((tok === ']' || tok === '}') && depth > 0) {
      depth--;
    }
    if (!LEXER_MARKERS.has(tok)) offset += tok.length;
  }
  return { tokens, tooMany: false };
}
