import { z } from 'zod';
import { MANIFEST_FORMAT, bundleDigest, isSafeBundlePath, type Manifest } from '../bundle/manifest.js';

/**
 * manifest.json as read back from a node or a plan file: hostile until proven otherwise.
 * Every path must be a safe bundle path and the digest must match the file list.
 */
const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  edgectl: z.string().max(100),
  node: z.string().regex(/^[a-z0-9-]{1,63}$/),
  fleet: z.object({ name: z.string().max(200), commit: z.string().regex(/^[0-9a-f]{4,64}$/).nullable(), dirty: z.boolean() }).passthrough(),
  files: z.record(z.string().refine(isSafeBundlePath, 'unsafe path'), z.object({ sha256: hex64, size: z.number().int().min(0), mode: z.union([z.literal(0o644), z.literal(0o755), z.literal(0o600)]) }).passthrough()),
  digest: hex64,
  nginxConfigId: z.string().regex(/^[0-9a-f]{16,64}$/),
}).passthrough();

export function parseManifest(text: string | Buffer): { manifest?: Manifest; error?: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text.toString());
  } catch (e) {
    return { error: `manifest.json is not JSON: ${(e as Error).message}` };
  }
  const r = manifestSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    return { error: `manifest.json: ${i.path.join('.') || '(top)'}: ${i.message}` };
  }
  const m = r.data as unknown as Manifest;
  if (bundleDigest(m.files) !== m.digest) return { error: 'manifest.json: digest does not match its file list' };
  return { manifest: m };
}
