import { EdgectlError } from '../errors.js';
import { MANIFEST_FILE } from '../bundle/manifest.js';

/**
 * Where things live under a node's root (docs/bundle.md). Every name below is fixed or
 * validated: nothing read from a node or a plan reaches a path or a command unchecked.
 */
export const KEEP_RELEASES = 5;
export const RELEASE_NAME = /^[0-9a-f]{20}$/;

export interface Layout {
  root: string;
  releases: string;
  current: string;
  good: string;
  state: string;
  lock: string;
  intent: string;
  pidFile: string;
  errorLog: string;
  release(name: string): string;
  confOf(dir: string): string;
}

export function layout(root: string): Layout {
  const r = normaliseRoot(root);
  return {
    root: r,
    releases: `${r}/releases`,
    current: `${r}/current`,
    good: `${r}/good`,
    state: `${r}/.edgectl`,
    lock: `${r}/.edgectl/lock`,
    intent: `${r}/.edgectl/intent.json`,
    pidFile: `${r}/run/nginx.pid`,
    errorLog: `${r}/log/error.log`,
    release: (name) => `${r}/releases/${checkReleaseName(name)}`,
    confOf: (dir) => `${dir}/nginx/nginx.conf`,
  };
}

/** An absolute path of safe characters, no "..", no trailing slash. */
export function normaliseRoot(root: string): string {
  const r = root.replace(/\/+$/, '');
  if (!/^\/[A-Za-z0-9._/-]*$/.test(r) || r.split('/').some((s) => s === '..' || s === '.') || r === '') {
    throw new EdgectlError('EDGECTL_USAGE', `node root "${root}" is not a safe absolute path`);
  }
  return r;
}

export function checkReleaseName(name: string): string {
  if (!RELEASE_NAME.test(name)) throw new EdgectlError('EDGECTL_RELEASE_INVALID', `"${name.slice(0, 80)}" is not a release name (20 hex digits)`);
  return name;
}

/** `releases/<name>` (how current and good point) → name, or undefined for anything else. */
export function releaseOfLink(target: string | undefined): string | undefined {
  if (!target) return undefined;
  const m = /^(?:.*\/)?releases\/([0-9a-f]{20})\/?$/.exec(target.trim());
  return m ? m[1] : undefined;
}

export const manifestPath = (releaseDir: string) => `${releaseDir}/${MANIFEST_FILE}`;

/** Where a release is built before it is renamed into place (under releases/), and its control lists beside it. */
export const stagingName = (name: string, nonce: string) => `.tmp-${checkReleaseName(name)}-${nonce}`;
export const controlName = (name: string, nonce: string) => `.tmp-ctl-${checkReleaseName(name)}-${nonce}`;
