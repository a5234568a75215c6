import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderUnit, systemdVersion, UNIT_NAME } from '../../src/lib/bootstrap/unit.js';

/**
 * The unit bootstrap installs, checked by this machine's own `systemd-analyze verify` (systemd
 * 252, Debian bookworm): its restarts back off only where systemd can (>= 254: RestartSteps=),
 * and the unit for an older systemd has no key that systemd does not know.
 */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-unit-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function verify(text: string): Promise<string> {
  const f = join(dir, UNIT_NAME);
  await writeFile(f, text);
  const r = await execa('systemd-analyze', ['verify', f], { reject: false });
  return `${r.stdout}\n${r.stderr}`.trim();
}

const values = () => ({ root: dir, runtime: process.execPath, nginx: '/usr/sbin/nginx' });

describe('edgectl-agent.service', () => {
  it('reads the systemd version off `systemctl --version`', () => {
    expect(systemdVersion('systemd 252 (252.39-1~deb12u2)')).toBe(252);
    expect(systemdVersion('systemd 256 (256.7-2)')).toBe(256);
    expect(systemdVersion('')).toBeUndefined();
    expect(systemdVersion(undefined)).toBeUndefined();
    expect(systemdVersion('bash: systemctl: command not found')).toBeUndefined();
  });

  it('systemd 252: restarts every 2 s for ever, and verify finds nothing to say', async () => {
    const unit = await renderUnit(values(), 252);
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^RestartSec=2$/m);
    expect(unit).toMatch(/^StartLimitIntervalSec=0$/m);
    expect(unit).not.toMatch(/^(RestartSteps|RestartMaxDelaySec)=/m);
    expect(unit).not.toMatch(/@[A-Z_]+@/);
    expect(await verify(unit)).toBe('');
  });

  it('systemd >= 254: the delay backs off to 60 s; the only keys this older systemd does not know are those two', async () => {
    const unit = await renderUnit(values(), 256);
    expect(unit).toMatch(/^RestartSteps=5$/m);
    expect(unit).toMatch(/^RestartMaxDelaySec=60$/m);
    const said = (await verify(unit)).split('\n').filter(Boolean);
    expect(said.map((l) => l.replace(/^.*?:\d+: /, ''))).toEqual([
      "Unknown key 'RestartSteps' in section [Service], ignoring.",
      "Unknown key 'RestartMaxDelaySec' in section [Service], ignoring.",
    ]);
  });

  it('an unreadable version is taken as old, and the unit is the same text as for 252 (a packed node\'s first bootstrap then has no unit change to restart the agent for)', async () => {
    expect(await renderUnit(values(), undefined)).not.toMatch(/^RestartSteps=/m);
    expect(await renderUnit(values(), undefined)).toBe(await renderUnit(values(), 252));
    expect(await renderUnit(values(), 254)).toBe(await renderUnit(values(), 257));
  });
});
