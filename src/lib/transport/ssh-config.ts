import { homedir } from 'node:os';
import { readRegularFile } from '../safe-fs/regular-file.js';
import { globMatch } from './known-hosts.js';

/**
 * The part of ~/.ssh/config that applies to a node's address: HostName, User, Port and
 * IdentityFile from `Host` blocks (patterns with * ? and !negation). As in OpenSSH the first
 * value found wins, except IdentityFile, which accumulates. `Match` blocks and `Include` are
 * not evaluated (their options are skipped); other keywords are ignored.
 */
export interface SshConfigHost {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
}

interface Block {
  patterns: string[] | 'match';
  options: [string, string][];
}

export function parseSshConfig(text: string): Block[] {
  const blocks: Block[] = [{ patterns: ['*'], options: [] }];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1].toLowerCase();
    const value = unquote(m[2].trim());
    if (key === 'host') blocks.push({ patterns: value.split(/\s+/), options: [] });
    else if (key === 'match') blocks.push({ patterns: 'match', options: [] });
    else blocks[blocks.length - 1].options.push([key, value]);
  }
  return blocks;
}

export function lookupSshConfig(blocks: Block[], host: string): SshConfigHost {
  const out: SshConfigHost = { identityFiles: [] };
  for (const b of blocks) {
    if (b.patterns === 'match' || !hostMatches(b.patterns, host)) continue;
    for (const [k, v] of b.options) {
      if (k === 'hostname' && out.hostName === undefined) out.hostName = v.replaceAll('%h', host).replaceAll('%%', '%');
      else if (k === 'user' && out.user === undefined) out.user = v;
      else if (k === 'port' && out.port === undefined && /^\d{1,5}$/.test(v)) out.port = Number(v);
      else if (k === 'identityfile') out.identityFiles.push(expandHome(v));
    }
  }
  return out;
}

function hostMatches(patterns: string[], host: string): boolean {
  let hit = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), host)) return false;
    } else if (globMatch(p, host)) hit = true;
  }
  return hit;
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? homedir() + p.slice(1) : p;
}

/** Reads the user's ssh config once; a missing or unreadable file is an empty one (a FIFO too: never blocks). */
export function loadSshConfig(path = `${homedir()}/.ssh/config`): Block[] {
  try {
    return parseSshConfig(readRegularFile(path, { maxBytes: 4 * 1024 * 1024 }).toString('utf8'));
  } catch {
    return [];
  }
}
