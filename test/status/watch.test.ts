import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestFleet } from '../apply/helpers.js';
import { BIN } from '../helpers/paths.js';

/** `status --watch`: a round every --interval seconds until interrupted; the last round's exit status. */
let dir: string;
let fleet: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-status-watch-'));
  fleet = join(dir, 'fleet');
  await writeTestFleet(fleet, { nodes: ['w1', 'w2'], apps: [] });
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The CLI on a pseudo-terminal (util-linux script(1)): what an operator at a terminal sees, stdout and stderr together. */
async function onTty(args: string[], env: Record<string, string> = {}): Promise<string> {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'FORCE_COLOR' && k !== 'NO_COLOR'));
  const r = await execa('script', ['-qec', cmd, '/dev/null'], { reject: false, env: { ...base, ...env, TERM: 'xterm' }, extendEnv: false, timeout: 20_000 });
  return String(r.stdout);
}

describe('edgectl status on a terminal', { timeout: 30_000 }, () => {
  const args = () => ['status', '--fleet', fleet, '--local', join(dir, 'nodes'), '--local-port-base', '42000', '--local-port-range', '10'];
  it('shows progress and colour; NO_COLOR takes the colour away', async () => {
    const tty = await onTty(args());
    expect(tty).toMatch(/status: 2 node\(s\) answered/);
    expect(tty).toContain('\x1b[33mdegraded');
    const plain = await onTty(args(), { NO_COLOR: '1' });
    expect(plain).toMatch(/w1\s.*degraded/);
    expect(plain).not.toMatch(/\x1b\[\d+m/);
  });
});

describe('edgectl status --watch', { timeout: 30_000 }, () => {
  it('redraws every interval until SIGINT, then exits with the last round\'s status', async () => {
    const p = execa(process.execPath, [BIN, 'status', '--fleet', fleet, '--local', join(dir, 'nodes'), '--local-port-base', '42000', '--local-port-range', '10', '--watch', '--interval', '1', '--json'], { reject: false, env: { NO_COLOR: '1' } });
    const lines: string[] = [];
    let buf = '';
    p.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts.filter(Boolean));
    });
    const t0 = Date.now();
    while (lines.length < 3 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
    const took = Date.now() - t0;
    p.kill('SIGINT');
    const r = await p;
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const rounds = lines.map((l) => JSON.parse(l));
    expect(rounds.every((x) => x.format === 'edgectl-status/v1' && x.nodes.length === 2)).toBe(true);
    // One round per interval, each a new report: not one report printed thrice, nor a busy loop.
    expect(new Set(rounds.map((x) => x.at)).size).toBe(rounds.length);
    expect(Date.parse(rounds[2].at) - Date.parse(rounds[0].at)).toBeGreaterThanOrEqual(1900);
    expect(took).toBeGreaterThanOrEqual(1900);
    // The nodes never had a release: degraded, so the last round leaves exit 2 (not a signal's death).
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toBe('');
  });

  it('a round that fails (the fleet broken while being edited) is reported, and the watch goes on', async () => {
    const { readFile, writeFile } = await import('node:fs/promises');
    const file = join(fleet, 'nodes.yaml');
    const good = await readFile(file, 'utf8');
    const p = execa(process.execPath, [BIN, 'status', '--fleet', fleet, '--local', join(dir, 'nodes'), '--local-port-base', '42000', '--local-port-range', '10', '--watch', '--interval', '1', '--json'], { reject: false, env: { NO_COLOR: '1' } });
    let out = '';
    let err = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const until = async (f: () => boolean) => {
      for (let i = 0; i < 300 && !f(); i++) await new Promise((r) => setTimeout(r, 50));
    };
    try {
      await until(() => out.split('\n').filter(Boolean).length >= 1);
      await writeFile(file, 'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: [oops }\n');
      await until(() => err.includes('EDGECTL_FLEET_INVALID'));
      await writeFile(file, good);
      const before = out.split('\n').filter(Boolean).length;
      await until(() => out.split('\n').filter(Boolean).length > before);
      expect(out.split('\n').filter(Boolean).length).toBeGreaterThan(before);
    } finally {
      await writeFile(file, good);
      p.kill('SIGINT');
    }
    const r = await p;
    expect(err).toMatch(/^error .*\[EDGECTL_FLEET_INVALID\]$/m);
    expect(err).not.toMatch(/\n\s+at /);
    // The last round read the repaired fleet: its status, not the failed round's 1.
    expect(r.exitCode).toBe(2);
  });
});
