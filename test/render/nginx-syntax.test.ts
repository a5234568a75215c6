import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { NginxSyntaxError, formatDirectives, parseNginx, quoteWord, type NginxDirective } from '../../src/lib/nginx/syntax.js';
import { guardProblems } from '../../src/lib/nginx/guard.js';
import { REPO } from '../helpers/paths.js';
import { tempDir } from './helpers.js';

const run = promisify(execFile);
const names = (ds: NginxDirective[]): string[] => ds.flatMap((d) => [d.name, ...(d.block ? names(d.block).map((n) => `${d.name}>${n}`) : [])]);

/** The bypasses of the old line-matching guard, and friends: each hides a directive from a regex. */
const SMUGGLED: [what: string, text: string, directive: string][] = [
  ['a # inside an earlier quoted string on the same line', 'add_header X-A "#"; load_module /tmp/x.so;\n', 'load_module'],
  ['a # inside single quotes', "add_header X-A '# not a comment'; ssl_engine pkcs11;\n", 'ssl_engine'],
  ['a double-quoted directive name', '"load_module" /tmp/x.so;\n', 'load_module'],
  ['a single-quoted directive name', "'env' LD_PRELOAD=/tmp/x.so;\n", 'env'],
  ['a quoted block name', 'http { "content_by_lua_block" { return; } }\n', 'content_by_lua_block'],
  ['a name glued to a ; without space', 'gzip on;perl_modules /tmp;\n', 'perl_modules'],
  ['a name after a block on the same line', 'events {}js_import /tmp/x.js;\n', 'js_import'],
  ['an escaped quote that does not close the string', 'add_header X "a\\";load_module b";\nload_module /tmp/y.so;\n', 'load_module'],
  ['a tab and CR as separators', 'gzip\ton;\r\nlua_package_path\t"/tmp/?.lua";\r\n', 'lua_package_path'],
  ['mime.types closing its block', 'types {\n    text/html html;\n} load_module /tmp/x.so; types {\n    text/css css;\n}\n', 'load_module'],
];

describe('the nginx tokenizer reads what nginx reads', () => {
  it('words, quotes, escapes, variables, comments and blocks', () => {
    const t = parseNginx([
      'http { # a comment; with load_module in it',
      '  add_header X-A "semi; colon # hash" always;',
      "  add_header 'X-B' 'it\\'s';",
      '}',
    ].join('\n'));
    expect(names(t)).toEqual(['http', 'http>add_header', 'http>add_header']);
    expect(t[0].block![0].args).toEqual(['X-A', 'semi; colon # hash', 'always']);
    expect(t[0].block![1].args).toEqual(['X-B', "it's"]);
    expect(parseNginx('set $a ${b}c;')[0].args).toEqual(['$a', '${b}c']);
    expect(parseNginx('return 200 "a\\tb\\nc\\\\d\\x";')[0].args).toEqual(['200', 'a\tb\nc\\d\\x']);
    expect(parseNginx('if ($a = "b") { return 404; }')[0].args).toEqual(['($a', '=', 'b', ')']);
    expect(parseNginx('a#b c;')[0].args).toEqual(['c']);
    expect(parseNginx('a#b c;')[0].name).toBe('a#b');
    expect(parseNginx('x a}b;')[0].args).toEqual(['a}b']);
    const d = parseNginx('\n  gzip   on;')[0];
    expect([d.line, d.column]).toEqual([2, 3]);
  });

  it.each([
    ['x "a"b;', 'unexpected "b"', 1],
    ['x;\n}', 'unexpected "}"', 2],
    ['http {\n x;\n', 'unexpected end of file, expecting "}"', 3],
    ['x', 'unexpected end of file, expecting ";" or "}"', 1],
    [';', 'unexpected ";"', 1],
    ['x y }', 'unexpected "}"', 1],
    ['x "unterminated;\n', 'unexpected end of file, expecting ";" or "}"', 2],
    [`x ${'a'.repeat(5000)};`, 'too long parameter "aaaaaaaaaa..." started', 1],
  ])('syntax error: %j', (text, message, line) => {
    let err: unknown;
    try {
      parseNginx(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NginxSyntaxError);
    expect((err as NginxSyntaxError).message).toBe(message);
    expect((err as NginxSyntaxError).line).toBe(line);
  });

  it('writes words back so that they parse to the same values', () => {
    const values = ['plain', '$host', '', 'a b', 'semi;colon', '"quoted"', "it's", 'back\\slash', '#hash', '{brace}', '${var}', 'max-age=31536000; includeSubDomains'];
    const text = formatDirectives([{ name: 'add_header', args: values }]);
    expect(parseNginx(text)[0].args).toEqual(values);
    expect(quoteWord('text/html')).toBe('text/html');
    expect(quoteWord('a b')).toBe('"a b"');
  });

  it.each(SMUGGLED)('the guard finds a directive hidden by %s', (_what, text, directive) => {
    const problems = guardProblems(text);
    expect(problems.map((p) => p.message).join('\n')).toContain(`"${directive}"`);
  });

  it('the guard: includes stay inside nginx/, written files under the root, OpenSSL engines never', () => {
    const msgs = (t: string) => guardProblems(t).map((p) => p.message);
    expect(msgs('include mime.types;\ninclude conf.d/*.conf;\nerror_log log/error.log warn;\naccess_log off;')).toEqual([]);
    for (const bad of ['include /etc/nginx/nginx.conf;', 'include ../../x.conf;', 'include "conf.d/../../../etc/passwd";', 'include .*/x;', 'include a b;']) expect(msgs(bad).join()).toMatch(/only a relative path inside/);
    for (const bad of ['access_log /home/op/.bashrc;', 'access_log current/nginx/nginx.conf;', 'error_log ../x;', 'pid /run/x.pid;', 'proxy_cache_path /tmp/c keys_zone=a:1m;', 'client_body_temp_path /tmp/b;']) expect(msgs(bad).join()).toMatch(/writes only under log\/, run\/, cache\/ or tmp\//);
    for (const bad of ['root /;', 'alias /etc/;', 'root current/../../../etc;']) expect(msgs(`location / { ${bad} }`).join()).toMatch(/served only from inside the release/);
    expect(msgs('location / { root current/apps/acme--www; }')).toEqual([]);
    expect(msgs('ssl_certificate_key engine:pkcs11:id;').join()).toMatch(/engines/);
    expect(msgs('dav_methods PUT;').join()).toMatch(/never allowed/);
    // A MIME type named like a module is data inside types { }, not a directive.
    expect(msgs('types { application/x-perl pl; application/javascript js; }')).toEqual([]);
    expect(msgs('types { include /etc/mime.types; }').join()).toMatch(/only a relative path/);
    expect(msgs("map $a $b { default 0; }\nadd_header X '#'; \"load_module\" x;")).toHaveLength(1);
  });

  it('edgectl\'s own mime.types and the example\'s rendered config pass the guard', async () => {
    expect(guardProblems(await readFile(path.join(REPO, 'templates/nginx/mime.types')))).toEqual([]);
  });
});

/**
 * Differential: nginx -t on the same text. Each input is included in the http block; a directive
 * named `zz_probe` is unknown to nginx, so nginx names the first one it sees (and its line): the
 * tokenizer must see the same first directive at the same line, or the same syntax error.
 */
describe('the tokenizer agrees with nginx -t', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('syntax-diff');
    await mkdir(path.join(tmp.dir, 'logs'));
    await writeFile(path.join(tmp.dir, 'nginx.conf'), 'events {}\nhttp {\n    include t.conf;\n}\n');
  });
  afterAll(() => tmp.cleanup());

  const INPUTS = [
    'add_header X-A "#"; zz_probe 1;',
    "add_header X-A '#';\n# zz_probe_commented;\nzz_probe 2;",
    '"zz_probe" 3;',
    "'zz_probe' 4;",
    'add_header X "a\\";zz_probe b";\nzz_probe 5;',
    'gzip on;zz_probe 6;',
    'zz\\_probe 7;',
    'add_header X-A a#b; zz_probe 8;',
    'add_header X-A ${x}y;\nzz_probe ${x}{ }',
    'add_header X-A "a"b;',
    'add_header X-A a }',
    '}',
    'add_header X-A "never closed;\n',
    `add_header X-A "${'x'.repeat(4100)}";`,
    'zz_probe "multi\nline"\n;',
    'add_header X-A \\;zz_probe;\nzz_probe 11;',
    'add_header X-A \\"; zz_probe 12;',
    '# add_header "\nzz_probe 13;',
  ];

  async function nginxSays(text: string): Promise<string> {
    await writeFile(path.join(tmp.dir, 't.conf'), text);
    const r = await run('nginx', ['-t', '-q', '-p', tmp.dir + '/', '-e', path.join(tmp.dir, 'logs/error.log'), '-c', path.join(tmp.dir, 'nginx.conf')]).then(
      () => '',
      (e: { stderr: string }) => e.stderr,
    );
    const m = /\[emerg\] (.*?) in \S*t\.conf:(\d+)/.exec(r);
    return m ? `${m[1]} @${m[2]}` : r.trim() ? `other: ${r.trim()}` : 'ok';
  }

  function weSay(text: string): string {
    try {
      const first = parseNginx(text).find((d) => d.name !== 'add_header' && d.name !== 'gzip');
      return first ? `unknown directive "${first.name}" @${first.endLine}` : 'ok';
    } catch (e) {
      if (!(e instanceof NginxSyntaxError)) throw e;
      return `${e.message} @${e.line}`;
    }
  }

  it.each(INPUTS.map((t) => [JSON.stringify(t).slice(0, 60), t]))('%s', async (_label, text) => {
    expect(weSay(text)).toBe(await nginxSays(text));
  });
});
