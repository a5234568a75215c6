/**
 * nginx's configuration syntax, read the way nginx reads it: a port of ngx_conf_read_token and
 * the block structure of ngx_conf_parse (src/core/ngx_conf_file.c, nginx 1.22). A guard that
 * matches lines with regular expressions disagrees with nginx on quotes, escapes and comments
 * (a `#` inside an earlier quoted string, a quoted directive name); this parser sees the same
 * words and blocks as nginx, so checks made on its tree hold for what nginx loads.
 *
 * Input is treated as bytes (latin1: one char per byte), as nginx does: the special characters
 * are all ASCII and no UTF-8 sequence contains an ASCII byte, so columns count bytes.
 */
export interface NginxWord {
  /** The value as nginx passes it to the directive: quotes removed, escapes applied. */
  value: string;
  line: number;
  column: number;
}

export interface NginxDirective {
  /** The first word (after unquoting: `"load_module"` is load_module). */
  name: string;
  args: string[];
  words: NginxWord[];
  line: number;
  column: number;
  /** The line of its `;` or `{`: where nginx reports an error in it. */
  endLine: number;
  /** The directives of its `{ … }`, when it has one. */
  block?: NginxDirective[];
}

export class NginxSyntaxError extends Error {
  constructor(message: string, readonly line: number, readonly column: number) {
    super(message);
    this.name = 'NginxSyntaxError';
  }
}

/** nginx reads a file through a 4096-byte buffer: a longer word (or comment) is an error. */
const NGX_CONF_BUFFER = 4096;
/** Far deeper than any real config; stops a hostile file from exhausting the stack. */
const MAX_DEPTH = 64;

const LF = 10, CR = 13, TAB = 9, SP = 32;
const isSpace = (c: number) => c === SP || c === TAB || c === CR || c === LF;

type Stop = 'end' | 'block' | 'close' | 'eof';

class Scanner {
  pos = 0;
  line = 1;
  lineStart = 0;
  words: NginxWord[] = [];
  constructor(readonly text: string) {}

  fail(message: string, line = this.line, column = this.pos - this.lineStart): never {
    throw new NginxSyntaxError(message, line, Math.max(1, column));
  }

  /** One directive's words up to `;`, `{` or `}`: ngx_conf_read_token, state for state. */
  read(): Stop {
    const t = this.text;
    let needSpace = false, lastSpace = true, sharp = false, variable = false;
    let quoted = false, sQuoted = false, dQuoted = false;
    let start = this.pos, startLine = this.line, startCol = 1;
    this.words = [];
    for (;;) {
      if (this.pos >= t.length) {
        if (this.words.length > 0 || !lastSpace) this.fail('unexpected end of file, expecting ";" or "}"');
        return 'eof';
      }
      if (this.pos - start >= NGX_CONF_BUFFER) {
        if (dQuoted || sQuoted) this.fail(`too long parameter, probably missing terminating "${dQuoted ? '"' : "'"}" character`, startLine, startCol);
        this.fail(`too long parameter "${t.slice(start, start + 10)}..." started`, startLine, startCol);
      }
      const ch = t.charCodeAt(this.pos++);
      if (ch === LF) {
        this.line++;
        this.lineStart = this.pos;
        sharp = false;
      }
      if (sharp) continue;
      if (quoted) {
        quoted = false;
        continue;
      }
      if (needSpace) {
        if (isSpace(ch)) {
          lastSpace = true;
          needSpace = false;
          continue;
        }
        if (ch === 0x3b) return 'end';
        if (ch === 0x7b) return 'block';
        if (ch !== 0x29) this.fail(`unexpected "${t[this.pos - 1]}"`);
        lastSpace = true; // `)` right after a quote, as in if ($a = "b")
        needSpace = false;
      }
      if (lastSpace) {
        start = this.pos - 1;
        startLine = this.line;
        startCol = this.pos - this.lineStart;
        if (isSpace(ch)) continue;
        switch (ch) {
          case 0x3b: // ;
          case 0x7b: // {
            if (this.words.length === 0) this.fail(`unexpected "${t[this.pos - 1]}"`);
            return ch === 0x7b ? 'block' : 'end';
          case 0x7d: // }
            if (this.words.length !== 0) this.fail('unexpected "}"');
            return 'close';
          case 0x23: // #
            sharp = true;
            continue;
          case 0x5c: // backslash: the next character is taken as it is
            quoted = true;
            lastSpace = false;
            continue;
          case 0x22: // "
            start++;
            dQuoted = true;
            lastSpace = false;
            continue;
          case 0x27: // '
            start++;
            sQuoted = true;
            lastSpace = false;
            continue;
          case 0x24: // $
            variable = true;
            lastSpace = false;
            continue;
          default:
            lastSpace = false;
        }
      } else {
        if (ch === 0x7b && variable) continue; // ${name}
        variable = false;
        if (ch === 0x5c) {
          quoted = true;
          continue;
        }
        if (ch === 0x24) {
          variable = true;
          continue;
        }
        let found = false;
        if (dQuoted) {
          if (ch === 0x22) {
            dQuoted = false;
            needSpace = true;
            found = true;
          }
        } else if (sQuoted) {
          if (ch === 0x27) {
            sQuoted = false;
            needSpace = true;
            found = true;
          }
        } else if (isSpace(ch) || ch === 0x3b || ch === 0x7b) {
          lastSpace = true;
          found = true;
        }
        if (found) {
          this.words.push({ value: unescape(t.slice(start, this.pos - 1)), line: startLine, column: startCol });
          if (ch === 0x3b) return 'end';
          if (ch === 0x7b) return 'block';
        }
      }
    }
  }
}

/** nginx's copy loop: \" \' \\ lose the backslash, \t \r \n become the control character, others stay. */
function unescape(raw: string): string {
  if (!raw.includes('\\')) return raw;
  let out = '';
  for (let i = 0; i < raw.length; ) {
    if (raw[i] === '\\') {
      const n = raw[i + 1];
      if (n === '"' || n === "'" || n === '\\') i++;
      else if (n === 't' || n === 'r' || n === 'n') {
        out += n === 't' ? '\t' : n === 'r' ? '\r' : '\n';
        i += 2;
        continue;
      }
    }
    out += raw[i++];
  }
  return out;
}

function parseBlock(s: Scanner, depth: number): NginxDirective[] {
  const out: NginxDirective[] = [];
  for (;;) {
    const stop = s.read();
    // An included file is parsed on its own: its `}` cannot close a block of the file including it.
    if (stop === 'close') {
      if (depth === 0) s.fail('unexpected "}"');
      return out;
    }
    if (stop === 'eof') {
      if (depth > 0) s.fail('unexpected end of file, expecting "}"');
      return out;
    }
    const [first, ...rest] = s.words;
    const d: NginxDirective = { name: first.value, args: rest.map((w) => w.value), words: s.words, line: first.line, column: first.column, endLine: s.line };
    if (stop === 'block') {
      if (depth >= MAX_DEPTH) s.fail(`blocks nested more than ${MAX_DEPTH} deep`);
      d.block = parseBlock(s, depth + 1);
    }
    out.push(d);
  }
}

/** Bytes as nginx sees them, one char per byte. */
export function nginxText(data: Buffer | string): string {
  if (typeof data !== 'string') return data.toString('latin1');
  return /[^\x00-\x7f]/.test(data) ? Buffer.from(data, 'utf8').toString('latin1') : data;
}

/** Parses one file (as nginx parses an included or main file). Throws NginxSyntaxError. */
export function parseNginx(data: Buffer | string): NginxDirective[] {
  return parseBlock(new Scanner(nginxText(data)), 0);
}

/** Every directive of a tree, depth first, with the names of the blocks around it. */
export function* walkDirectives(ds: NginxDirective[], parents: string[] = []): Generator<{ d: NginxDirective; parents: string[] }> {
  for (const d of ds) {
    yield { d, parents };
    if (d.block) yield* walkDirectives(d.block, [...parents, d.name]);
  }
}

/** A word that nginx reads back as itself without quotes. */
const BARE = /^[A-Za-z0-9._~:/*@+=,%!^|-][A-Za-z0-9._~:/*@+=,%!^|$-]*$/;

/** One word written so that nginx reads exactly `value` back (the inverse of unescape). */
export function quoteWord(value: string): string {
  if (BARE.test(value)) return value;
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Directives without blocks, one a line: the canonical text of a parsed snippet. */
export function formatDirectives(ds: { name: string; args: string[] }[], indent = ''): string {
  return ds.map((d) => `${indent}${[d.name, ...d.args].map(quoteWord).join(' ')};\n`).join('');
}
