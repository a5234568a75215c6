import { X509Certificate } from 'node:crypto';
import { RELEASE_NAME, releaseOfLink } from '../release/layout.js';
import { MAX_CERTS, MAX_CERT_B64, MAX_HTTP_ANSWER, MAX_STATUS_OUTPUT } from './script.js';

/** A line of the node's own facts (not an agent answer) longer than this is no honest line. */
const MAX_LINE = 4096;
const COMMIT = /^[0-9a-f]{7,64}(-dirty)?$/;
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;
export const CONFIG_ID = /^[0-9a-f]{16,64}$/;
const TLS_APP = /^[a-z0-9-]{1,63}\.[a-z0-9-]{1,63}$/;

/** The expiry (ISO) of a certificate given as the base64 of its DER, or undefined when it is none. */
function leafExpiry(b64: string): string | undefined {
  if (b64.length > MAX_CERT_B64 || !/^[A-Za-z0-9+/]{16,}={0,2}$/.test(b64)) return undefined;
  try {
    const end = Date.parse(new X509Certificate(Buffer.from(b64, 'base64')).validTo);
    return Number.isFinite(end) ? new Date(end).toISOString() : undefined;
  } catch {
    return undefined;
  }
}

/** What the node said about itself, validated: anything that did not pass is absent, never passed on. */
export interface NodeFacts {
  /** false: the root does not exist (never applied to). */
  initialised: boolean;
  current: string | null;
  good: string | null;
  /** Release name → the commit its record names. */
  commits: Map<string, string>;
  nginxPid: number | null;
  workers: number | null;
  /** The agent version bootstrap linked as agent/current. */
  agentInstalled: string | null;
  token: 'ok' | 'missing' | 'bad' | null;
  disk: { freeBytes: number; totalBytes: number } | null;
  load: [number, number, number] | null;
  /** The nginx config id current's manifest names. */
  wantConfig: string | null;
  /** TLS app (tenant.app) → when the leaf of its chain in the current release expires (ISO). */
  certs: Map<string, string>;
  /** The HTTP answers by name (config: nginx's /.edgectl/config; healthz, status: the agent's); an empty answer is absent (nothing listened). */
  http: Map<string, { status: number; body: string }>;
  /** The node has neither curl nor bash: the agent could not be asked. */
  agentUnknown: boolean;
}

/** The node's answer does not have the shape the status script prints: it is refused whole. */
export class RefusedAnswer extends Error {
  constructor(why: string) {
    super(`the node's status answer was refused: ${why}`);
    this.name = 'RefusedAnswer';
  }
}

const int = (s: string | undefined, max = Number.MAX_SAFE_INTEGER): number | null => {
  if (!s || !/^\d{1,16}$/.test(s)) return null;
  const n = Number(s);
  return n <= max ? n : null;
};

function parseDisk(v: string): NodeFacts['disk'] {
  // df -Pk: "filesystem 1024-blocks used available capacity mountpoint"; the filesystem may hold spaces, so from the right.
  const f = v.trim().split(/\s+/);
  if (f.length < 6) return null;
  const total = int(f[f.length - 5]);
  const avail = int(f[f.length - 3]);
  return total === null || avail === null || avail > total ? null : { freeBytes: avail * 1024, totalBytes: total * 1024 };
}

function parseLoad(v: string): NodeFacts['load'] {
  const f = v.trim().split(/\s+/).slice(0, 3);
  if (f.length < 3 || !f.every((x) => /^\d{1,6}(\.\d{1,3})?$/.test(x))) return null;
  return f.map(Number) as [number, number, number];
}

/** `<result>\t<step>\t<at>\t<{"commit",…}>` as the node scripts write a release record: only the commit is wanted. */
function recordCommit(fields: string[]): string | undefined {
  if (!['staged', 'good', 'failed'].includes(fields[0] ?? '')) return undefined;
  try {
    const j = JSON.parse(fields[3] ?? '{}') as { commit?: unknown };
    return typeof j.commit === 'string' && COMMIT.test(j.commit) ? j.commit : undefined;
  } catch {
    return undefined;
  }
}

/** A raw HTTP/1.x answer (curl -i or bash's /dev/tcp): status and body; curl's "100 Continue" or a proxy's first head skipped. */
export function parseHttp(raw: string): { status: number; body: string } | undefined {
  let rest = raw;
  for (let i = 0; i < 3; i++) {
    const m = /^HTTP\/\d(?:\.\d)? (\d{3})[^\n]*\n/.exec(rest);
    if (!m) return undefined;
    const end = rest.search(/\r?\n\r?\n/);
    if (end < 0) return undefined;
    const body = rest.slice(end).replace(/^\r?\n\r?\n/, '');
    if (m[1] !== '100') return { status: Number(m[1]), body };
    rest = body;
  }
  return undefined;
}

/** Parses STATUS_SCRIPT's output. Throws RefusedAnswer for an answer that is too big or not the script's. */
export function parseNodeAnswer(out: string, nonce: string): NodeFacts {
  if (out.length > MAX_STATUS_OUTPUT) throw new RefusedAnswer(`${out.length} bytes, more than the ${MAX_STATUS_OUTPUT} a status answer can be`);
  const f: NodeFacts = { initialised: true, current: null, good: null, commits: new Map(), wantConfig: null, certs: new Map(), nginxPid: null, workers: null, agentInstalled: null, token: null, disk: null, load: null, http: new Map(), agentUnknown: false };
  if (out.startsWith('noroot\n') || out === 'noroot') return { ...f, initialised: false };
  if (!out.startsWith('v\t1\n')) throw new RefusedAnswer(`it does not start as the status script's does (${JSON.stringify(out.slice(0, 40))})`);
  const end = `--${nonce}-end--`;
  const lines = out.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.length > MAX_LINE) throw new RefusedAnswer(`line ${i + 1} is ${line.length} characters long`);
    const [k, ...rest] = line.split('\t');
    const v = rest.join('\t');
    if (k === 'http') {
      const close = lines.indexOf(end, i + 1);
      if (close < 0) throw new RefusedAnswer(`the agent's ${v.slice(0, 20)} answer has no end`);
      const raw = lines.slice(i + 1, close).join('\n');
      // The node cut each answer at MAX_HTTP_ANSWER; one longer than that was not cut by our script.
      if (raw.length > MAX_HTTP_ANSWER + 1) throw new RefusedAnswer(`the agent's ${v.slice(0, 20)} answer is ${raw.length} bytes`);
      const parsed = /^(config|healthz|status)$/.test(v) && raw.length > 0 ? parseHttp(raw) : undefined;
      if (parsed) f.http.set(v, parsed);
      i = close;
    } else if (k === 'current') f.current = releaseOfLink(v) ?? null;
    else if (k === 'good') f.good = releaseOfLink(v) ?? null;
    else if (k === 'rec' && RELEASE_NAME.test(rest[0] ?? '')) {
      const c = recordCommit(rest.slice(1));
      if (c) f.commits.set(rest[0], c);
    } else if (k === 'want') f.wantConfig = CONFIG_ID.test(v) ? v : null;
    else if (k === 'cert' && TLS_APP.test(rest[0] ?? '') && f.certs.size < MAX_CERTS) {
      const end = leafExpiry(rest[1] ?? '');
      if (end) f.certs.set(rest[0], end);
    }
    else if (k === 'nginx') f.nginxPid = int(v, 4_194_304);
    else if (k === 'workers') f.workers = int(v, 100_000);
    else if (k === 'agentv') f.agentInstalled = VERSION.test(v) ? v : null;
    else if (k === 'token' && (v === 'ok' || v === 'missing' || v === 'bad')) f.token = v;
    else if (k === 'disk') f.disk = parseDisk(v);
    else if (k === 'load') f.load = parseLoad(v);
    else if (k === 'agent' && v === 'unknown') f.agentUnknown = true;
  }
  return f;
}
