import { createHash } from 'node:crypto';
import { EdgectlError } from '../errors.js';
import { MANIFEST_FORMAT, bundleDigest, isSafeBundlePath, type BundleFile, type Manifest, type ManifestFile } from '../bundle/manifest.js';

export type { BundleFile };
import { CONFIG_ID_PLACEHOLDER } from './nginx.js';

/** One node's bundle in memory: `files` excludes manifest.json and is sorted by path. */
export interface Bundle {
  node: string;
  files: BundleFile[];
  manifest: Manifest;
}

// Buffers shared between bundles (app fragments, payloads, mime.types) are hashed once.
const shaCache = new WeakMap<Buffer, string>();
function sha(data: Buffer): string {
  let h = shaCache.get(data);
  if (h === undefined) {
    h = createHash('sha256').update(data).digest('hex');
    shaCache.set(data, h);
  }
  return h;
}

/**
 * The nginx config id: sha256 over `path\0sha256\n` of every nginx/ file in path order, with
 * nginx.conf still carrying the placeholder where the id itself goes. Two bundles with the same
 * nginx config have the same id whatever else differs (agent.json, payloads), and a running
 * nginx serves either without a reload (apply switches current/, through which nginx reads pages
 * and scripts): so every file nginx reads when it loads its config (includes, mime.types,
 * certificates and keys) must live under nginx/.
 */
export function nginxConfigId(files: { path: string; data: Buffer }[]): string {
  const h = createHash('sha256');
  for (const f of files) if (f.path.startsWith('nginx/')) h.update(`${f.path}\0${sha(f.data)}\n`);
  return h.digest('hex');
}

// The same paths recur in thousands of bundles: check each once.
const safePaths = new Set<string>();
function safePath(p: string): boolean {
  if (safePaths.has(p)) return true;
  if (!isSafeBundlePath(p) || p === 'manifest.json') return false;
  if (safePaths.size > 100_000) safePaths.clear();
  safePaths.add(p);
  return true;
}

const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

// nginx.conf with its id filled in, shared by every bundle with the same nginx config.
const finalConfs = new WeakMap<Buffer, Map<string, Buffer>>();
function withConfigId(conf: Buffer, id: string): Buffer {
  let m = finalConfs.get(conf);
  if (!m) finalConfs.set(conf, (m = new Map()));
  let out = m.get(id);
  if (!out) m.set(id, (out = Buffer.from(conf.toString().split(CONFIG_ID_PLACEHOLDER).join(id))));
  return out;
}

export function assembleBundle(node: string, nginxConf: Buffer, others: BundleFile[], meta: { edgectl: string; fleet: Manifest['fleet'] }): Bundle {
  const withPlaceholder = [...others, { path: 'nginx/nginx.conf', data: nginxConf, mode: 0o644 }].sort(byPath);
  const configId = nginxConfigId(withPlaceholder);
  const conf = withConfigId(nginxConf, configId);
  const files = withPlaceholder.map((f) => (f.path === 'nginx/nginx.conf' ? { ...f, data: conf } : f));
  const manifestFiles: Record<string, ManifestFile> = {};
  let prev = '';
  for (const f of files) {
    if (f.path === prev) throw new EdgectlError('EDGECTL_RENDER', `node ${node}: two files at ${f.path}`);
    if (!safePath(f.path)) throw new EdgectlError('EDGECTL_RENDER', `node ${node}: unsafe bundle path ${f.path}`);
    prev = f.path;
    manifestFiles[f.path] = { sha256: sha(f.data), size: f.data.length, mode: f.mode };
  }
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    edgectl: meta.edgectl,
    node,
    fleet: meta.fleet,
    files: manifestFiles,
    digest: bundleDigest(manifestFiles),
    nginxConfigId: configId,
  };
  return { node, files, manifest };
}
