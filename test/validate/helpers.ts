import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readFleetSource } from '../../src/lib/fleet/source.js';
import { validateFleet, type ValidationResult } from '../../src/lib/fleet/validate.js';
import { EXAMPLE } from '../helpers/paths.js';


const temps: string[] = [];

export async function tempDir(tag = 'v'): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), `edgectl-validate-${tag}-`));
  temps.push(d);
  return d;
}

export async function cleanTemps(): Promise<void> {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** A copy of fleet.example in a fresh temp directory (outside git). */
export async function exampleCopy(): Promise<string> {
  const d = await tempDir('ex');
  await cp(EXAMPLE, d, { recursive: true });
  return d;
}

/** Replaces exactly one occurrence of `find` in a file of the fleet; fails loudly if it is not there once. */
export async function mutate(dir: string, file: string, find: string | RegExp, replace: string): Promise<string> {
  const full = path.join(dir, file);
  const text = await readFile(full, 'utf8');
  const count = typeof find === 'string' ? text.split(find).length - 1 : (text.match(new RegExp(find.source, find.flags.replace('g', '') + 'g')) ?? []).length;
  if (count !== 1) throw new Error(`mutation target ${String(find)} occurs ${count} times in ${file}`);
  const out = text.replace(find, replace);
  await writeFile(full, out);
  return out;
}

/** The 1-based line of the first line of `text` containing `marker`. */
export function lineOf(text: string, marker: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(marker));
  if (i < 0) throw new Error(`marker ${marker} not found`);
  return i + 1;
}

export async function validateDir(dir: string, rev?: string): Promise<ValidationResult> {
  return validateFleet(await readFleetSource(dir, rev));
}

export function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', ['-c', 'user.name=edgectl test', '-c', 'user.email=test@localhost', '-c', 'commit.gpgsign=false', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** Signs of a crash that must never reach an operator. */
export const STACK_TRACE = /\n\s+at .+\(.+:\d+:\d+\)|node:internal|TypeError|ReferenceError|RangeError|SyntaxError: /;
