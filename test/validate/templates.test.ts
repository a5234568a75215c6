import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cliSync } from '../helpers/cli.js';
import { cleanTemps, exampleCopy, git, STACK_TRACE, tempDir, validateDir } from './helpers.js';

afterAll(cleanTemps);

async function put(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  }
}

async function allFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

/**
 * A fleet is data: a pull request that CI validates and renders must not run anything. The
 * templates below are what the red team tried (EJS running a command, reading /etc/hostname
 * into the bundle): nothing runs, nothing is read, and validate names each file.
 */
describe('fleet templates are not code', { timeout: 60_000 }, () => {
  it('EJS templates in a fleet run nothing, in validate, render and render --rev; validate names them', async () => {
    const dir = await exampleCopy();
    const marker = path.join(await tempDir('marker'), 'RAN');
    const hostname = (await readFile('/etc/hostname', 'utf8')).trim();
    // Under the old renderer the first spelling ran the command and the second put the host name in the bundle.
    const run = `<% process.getBuiltinModule('child_process').execSync('touch ${marker}') %>`;
    const read = "<%- process.getBuiltinModule('fs').readFileSync('/etc/hostname', 'utf8').trim() %>";
    const cmd = "<%- (process.mainModule ?? { require: process.getBuiltinModule }).require('child_process').execSync('id -un').toString() %>";
    await put(dir, {
      'templates/nginx/app-static.conf.ejs': `${run}\n# ${read}\nserver { }\n`,
      'templates/nginx/nginx.conf.ejs': `${run}\nevents {}\nhttp { map $host $x { default "<%= configId %>"; } }\n# ${cmd}\n`,
      'templates/kong/kong.yml.ejs': `${run}\n_format_version: "3.0"\n# ${read}\n`,
    });
    git(dir, 'init', '-q', '-b', 'main');
    git(dir, 'add', '.');
    git(dir, 'commit', '-q', '-m', 'hostile templates');

    const v = cliSync(['validate', '--fleet', dir, '--json']);
    expect(v.code).toBe(1);
    const problems = JSON.parse(v.stdout).problems.filter((p: { rule: string }) => p.rule === 'template-code');
    expect(problems.map((p: { file: string }) => p.file).sort()).toEqual(['templates/kong/kong.yml.ejs', 'templates/nginx/app-static.conf.ejs', 'templates/nginx/nginx.conf.ejs']);
    expect(problems[0].hint).toMatch(/http\.d\/\*\.conf/);

    for (const args of [['render', '--fleet', dir, '--check'], ['render', '--fleet', dir, '--rev', 'HEAD', '--out', path.join(dir, 'out-rev')]]) {
      const r = cliSync(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/EDGECTL_FLEET_INVALID/);
      expect(r.stderr).toMatch(/templates\/\S+\.ejs:1:1 fleet templates are no longer code/);
      expect(r.stderr).not.toMatch(STACK_TRACE);
    }
    expect(existsSync(marker), 'a fleet template ran a command').toBe(false);
    for (const f of [...(await allFiles(path.join(dir, '.edgectl'))), ...(await allFiles(path.join(dir, 'out-rev')))]) {
      expect(await readFile(f, 'utf8'), f).not.toContain(hostname);
    }
  });

  it('snippets: every directive outside the allow-list is reported with file, line and column', async () => {
    const dir = await exampleCopy();
    const server = [
      'gzip on; # fine',
      'add_header X-A "#"; load_module /tmp/x.so;',
      '"proxy_pass" http://203.0.113.1;',
      'include /etc/passwd;',
      'location /x { return 200; }',
      'access_log /tmp/x.log;',
      'set $edgectl_tenant other;',
      'limit_req_zone $binary_remote_addr zone=z:1m rate=1r/s;',
      "add_header X-B 'a\\nb';",
    ].join('\n') + '\n';
    await put(dir, {
      'templates/nginx/server.d/headers.conf': server,
      'templates/nginx/http.d/ok.conf': 'limit_req_zone $binary_remote_addr zone=z:1m rate=1r/s;\ngzip_types text/css;\n',
      'templates/nginx/http.d/broken.conf': 'gzip on\n',
      'templates/nginx/http.d/Bad Name.conf': 'gzip on;\n',
      'templates/nginx/mime.types': 'types {\n    text/html html;\n} load_module /tmp/x.so; types {\n    text/css css;\n}\n',
      'templates/notes.md': 'not edgectl\'s: ignored\n',
    });
    await symlink('/etc/passwd', path.join(dir, 'templates/nginx/server.d/link.conf'));
    const r = await validateDir(dir);
    const got = r.problems.map((p) => `${p.rule} ${p.file}:${p.line}:${p.column} ${p.message}`);
    const H = 'templates/nginx/server.d/headers.conf';
    expect(got).toEqual([
      `template-unknown-file templates/nginx/http.d/Bad Name.conf:1:1 snippet file names are NAME.conf with lowercase letters, digits, "-" and "_" (not "Bad Name.conf")`,
      'template-directive templates/nginx/http.d/broken.conf:2:1 nginx syntax: unexpected end of file, expecting ";" or "}"',
      'template-mime-types templates/nginx/mime.types:3:3 nothing may follow the types block (found "load_module")',
      'template-mime-types templates/nginx/mime.types:3:26 nothing may follow the types block (found "types")',
      `template-directive ${H}:2:21 the directive "load_module" is not allowed in a fleet snippet`,
      `template-directive ${H}:3:1 the directive "proxy_pass" is not allowed in a fleet snippet`,
      `template-directive ${H}:4:1 the directive "include" is not allowed in a fleet snippet`,
      `template-directive ${H}:5:1 "location { … }": a snippet holds simple directives only, no blocks`,
      `template-directive ${H}:6:1 the directive "access_log" is not allowed in a fleet snippet`,
      `template-directive ${H}:7:1 the directive "set" is not allowed in a fleet snippet`,
      `template-directive ${H}:8:1 the directive "limit_req_zone" is allowed only in http.d/ snippets`,
      `template-directive ${H}:9:16 an argument of "add_header" has control characters (a newline, a tab) or is longer than 1024`,
      'fleet-link templates/nginx/server.d/link.conf:1:1 templates/nginx/server.d/link.conf is a symbolic link or a special file: edgectl follows no symbolic link inside a fleet and reads only regular files (commit the file itself)',
    ]);
    // The report quotes the offending line of the snippet.
    const text = cliSync(['validate', '--fleet', dir]);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('add_header X-A "#"; load_module /tmp/x.so;');
    expect(text.stdout).not.toMatch(STACK_TRACE);
  });

  it('snippet arguments are bounded: zone names cannot take an app\'s, zones and buffers cannot take the node\'s memory, error_page stays local', async () => {
    const dir = await exampleCopy();
    const F = 'templates/nginx/http.d/limits.conf';
    await put(dir, {
      [F]: [
        'limit_req_zone $binary_remote_addr zone=globex.globex-shelves:1m rate=1r/s;', // the name of an app's cache zone
        'limit_req_zone $binary_remote_addr zone=big:100000m rate=1r/s;',
        'limit_conn_zone $binary_remote_addr zone=perip:10m;', // fine
        'client_body_buffer_size 2000m;',
        'large_client_header_buffers 16 1000m;',
        'large_client_header_buffers 4000 8k;',
        'proxy_buffers 8 16k;', // fine
        'error_page 403 http://evil.example/;',
        'error_page 404 =200 /index.html;', // fine
        '',
      ].join('\n'),
    });
    const r = await validateDir(dir);
    expect(r.problems.filter((p) => p.file === F).map((p) => `${p.line} ${p.message}`)).toEqual([
      expect.stringMatching(/^1 "limit_req_zone" needs zone=NAME:SIZE .*no "\."/),
      expect.stringMatching(/^2 "limit_req_zone": the zone size must be at most 64m/),
      expect.stringMatching(/^4 "client_body_buffer_size": the buffer size must be a size of at most 1m/),
      expect.stringMatching(/^5 "large_client_header_buffers": the buffer size must be/),
      expect.stringMatching(/^6 "large_client_header_buffers": the number of buffers must be 1 to 64/),
      expect.stringMatching(/^8 "error_page": the page must be a local path/),
    ]);
  });

  it('the same checks on a fleet read from git (--rev), symlinks included', async () => {
    const dir = await exampleCopy();
    await put(dir, { 'templates/nginx/http.d/x.conf': '\'load_module\' /tmp/x.so;\n' });
    await symlink('/etc/hostname', path.join(dir, 'templates/nginx/mime.types'));
    git(dir, 'init', '-q', '-b', 'main');
    git(dir, 'add', '.');
    git(dir, 'commit', '-q', '-m', 'x');
    const r = await validateDir(dir, 'HEAD');
    expect(r.problems.map((p) => `${p.rule} ${p.file}:${p.line}:${p.column}`)).toEqual([
      'template-directive templates/nginx/http.d/x.conf:1:1',
      'fleet-link templates/nginx/mime.types:1:1',
    ]);
  });
});
