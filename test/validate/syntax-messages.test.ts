import { afterAll, describe, expect, it } from 'vitest';
import { cleanTemps, exampleCopy, lineOf, mutate, validateDir } from './helpers.js';

// Issue 12 item 16: one mistake, one clear error at the line to fix, and nothing else about it.
afterAll(cleanTemps);

const brief = (r: Awaited<ReturnType<typeof validateDir>>) => r.problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.severity} ${p.rule} ${p.message}`);

describe('validate: syntax mistakes give one error where they are', () => {
  it('one over-indented key: one error, at that key\'s line, saying what is wrong', async () => {
    const d = await exampleCopy();
    const text = await mutate(d, 'tenants/tenants.yaml', '  displayName: ACME Logistics\n  uplink:', '  displayName: ACME Logistics\n   uplink:');
    const r = await validateDir(d);
    expect(brief(r)).toEqual([`tenants/tenants.yaml:${lineOf(text, '   uplink:')}:4 error yaml-syntax YAML syntax error: "uplink" is indented by 3 spaces, more than "displayName" on the line above (2), which already has a value`]);
    expect(r.problems[0].hint).toMatch(/same column/);
  });

  it('one tab: one error, at the tab', async () => {
    const d = await exampleCopy();
    const text = await mutate(d, 'tenants/tenants.yaml', '  displayName: ACME Logistics\n', '\tdisplayName: ACME Logistics\n');
    const r = await validateDir(d);
    expect(brief(r)).toEqual([`tenants/tenants.yaml:${lineOf(text, '\tdisplayName')}:1 error yaml-syntax YAML syntax error: a tab is used for indentation`]);
    expect(r.problems[0].hint).toMatch(/spaces/);
  });

  it('a tenant file that fails to parse: no "unknown tenant" for the apps of the tenants it defined', async () => {
    const d = await exampleCopy();
    await mutate(d, 'tenants/tenants.yaml', '  displayName: ACME Logistics\n  uplink:', '  displayName: ACME Logistics\n   uplink:');
    const r = await validateDir(d);
    expect(r.problems.filter((p) => p.rule !== 'yaml-syntax')).toEqual([]);
  });

  it('an app file that fails to parse: no warning that its tenant has no apps', async () => {
    const d = await exampleCopy();
    await mutate(d, 'apps/initech.yaml', '  type: fastcgi', '   type: fastcgi');
    const r = await validateDir(d);
    expect(brief(r)).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ file: 'apps/initech.yaml', rule: 'yaml-syntax', line: 8 });
  });

  it('a file that cannot be parsed at all still gets its error, and stays one error', async () => {
    const d = await exampleCopy();
    await mutate(d, 'apps/initech.yaml', 'kind: App', 'kind: App\n\u0007');
    const r = await validateDir(d);
    expect(brief(r)).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ file: 'apps/initech.yaml', rule: 'yaml-control-character' });
  });
});
