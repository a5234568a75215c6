import { createHash } from 'node:crypto';

/**
 * manifest.json, at the top of every bundle (and so of every release on a node). The bundle
 * digest names the release directory (<root>/releases/<digest>/) and is what plan, apply,
 * drift and rollback compare.
 */
export const MANIFEST_FORMAT = 'edgectl-bundle/v1';
export const MANIFEST_FILE = 'manifest.json';

export interface ManifestFile {
  sha256: string;
  size: number;
  /** 0o644, 0o755, or 0o600 for a secret (a TLS key) */
  mode: number;
}

/** One file of a bundle, in memory (render produces them, apply stages them). */
export interface BundleFile {
  path: string;
  data: Buffer;
  /** 0o644, 0o755, or 0o600 for a secret (a TLS key) */
  mode: number;
  /** A secret's age file in the fleet (path and armored bytes): what a saved plan carries instead of `data`. */
  sealed?: { file: string; data: Buffer };
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  edgectl: string;
  node: string;
  fleet: { name: string; commit: string | null; dirty: boolean };
  /** Relative paths (sorted), never manifest.json itself. */
  files: Record<string, ManifestFile>;
  /** sha256 of the canonical file list: `${path}\0${sha256}\0${mode}\n` for each path in order. */
  digest: string;
  /**
   * sha256 of the nginx config files with the marker placeholder; nginx serves it at
   * GET /.edgectl/config (any Host) so apply can check positively that a reload took effect.
   */
  nginxConfigId: string;
}

/** manifest.json's bytes: what render writes, a release holds and apply uploads. */
export function manifestBytes(m: Manifest): Buffer {
  return Buffer.from(JSON.stringify(m, null, 2) + '\n');
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function bundleDigest(files: Record<string, ManifestFile>): string {
  const h = createHash('sha256');
  for (const p of Object.keys(files).sort()) h.update(`${p}\0${files[p].sha256}\0${files[p].mode.toString(8)}\n`);
  return h.digest('hex');
}

/** The digest as a directory name: short enough to read, long enough never to collide in a fleet. */
export function releaseName(digest: string): string {
  return digest.slice(0, 20);
}

/** A path that may appear in a bundle: relative, no "..", no empty or dot segments, safe characters. */
export function isSafeBundlePath(p: string): boolean {
  return /^[A-Za-z0-9_-][A-Za-z0-9._-]*(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/.test(p) && !p.split('/').some((s) => s === '..' || s === '.');
}
