import { z } from 'zod';
import { EdgectlError, errorMessage } from '../errors.js';
import { manifestBytes, sha256Hex } from '../bundle/manifest.js';
import { parseManifest } from '../release/manifest-parse.js';
import { releaseRootProblem } from '../fleet/values.js';
import { normaliseRoot } from '../release/layout.js';
import type { ReleaseBundle } from '../release/stage.js';
import { PLAN_FORMAT, type Plan, type PlanNode } from './types.js';
import { secretOpener, type SecretOpener } from '../secrets/opener.js';
import { PRIVATE_MODE, isTlsFilePath } from '../secrets/paths.js';

/** A saved plan carries the bytes of every file it would send: apply needs nothing else. */
export function serialisePlan(plan: Plan, blobs: Map<string, Buffer>, sealed: Map<string, { file: string; data: Buffer }> = new Map()): string {
  const need = new Set<string>();
  for (const n of plan.nodes) if (n.action !== 'none' && n.action !== 'unreachable') for (const f of Object.values(n.manifest.files)) need.add(f.sha256);
  const out: Record<string, string> = {};
  const seal: Record<string, { file: string; age: string }> = {};
  for (const sha of [...need].sort()) {
    // A secret goes as the fleet's age file, never as its bytes: apply decrypts it again.
    const s = sealed.get(sha);
    if (s) seal[sha] = { file: s.file, age: s.data.toString('latin1') };
    else {
      const b = blobs.get(sha);
      if (b) out[sha] = b.toString('base64');
    }
  }
  return JSON.stringify({ ...plan, blobs: out, ...(Object.keys(seal).length ? { sealed: seal } : {}) }, null, 2) + '\n';
}

/** Without the bytes: what `plan --json` prints. */
export function planView(plan: Plan): Plan {
  const { blobs: _b, sealed: _s, ...rest } = plan;
  return rest;
}

const nodeSchema = z.object({
  node: z.string().regex(/^[a-z0-9-]{1,63}$/),
  role: z.enum(['core', 'relay', 'edge']),
  route: z.array(z.string().max(100)),
  root: z.string(),
  nginx: z.object({ binary: z.string().regex(/^\/[A-Za-z0-9._/-]+$/), host: z.string().regex(/^[A-Za-z0-9.:-]+$/), port: z.number().int().min(1).max(65535) }),
  kong: z.boolean(),
  action: z.enum(['none', 'create', 'update', 'finish', 'unreachable']),
  current: z.object({ release: z.string().regex(/^[0-9a-f]{20}$/).nullable() }).passthrough(),
  health: z.array(z.object({ app: z.string().regex(/^[a-z0-9-]+(?:\.[a-z0-9-]+)?$/), host: z.string().regex(/^[a-z0-9.-]+$/), path: z.string().regex(/^\/[A-Za-z0-9._~/-]*$/), expectStatus: z.number().int(), expectBody: z.string().max(200).optional(), page: z.enum(['static', 'fastcgi']).optional() })),
}).passthrough();

/** A saved plan's sealed secrets, decrypted: by the sha256 of their bytes, which must match. */
async function openSealed(p: Plan, file: string, secrets: SecretOpener | undefined, demoFleet: string | undefined): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const entries = Object.entries((p as { sealed?: Record<string, { file?: unknown; age?: unknown }> }).sealed ?? {});
  if (entries.length === 0) return out;
  const opener = secrets ?? secretOpener({ env: process.env });
  for (const [sha, s] of entries) {
    if (!/^[0-9a-f]{64}$/.test(sha) || typeof s?.file !== 'string' || !/^[A-Za-z0-9._/-]{1,300}\.age$/.test(s.file) || typeof s.age !== 'string') throw invalid(`${file}: sealed.${sha.slice(0, 64)}: not a sealed secret`);
    const data = await opener.open(`${s.file} (sealed in ${file})`, Buffer.from(s.age, 'latin1'), demoFleet);
    if (sha256Hex(data) !== sha) throw invalid(`${file}: the sealed ${s.file} does not decrypt to the file the plan names (plan edited?)`);
    out.set(sha, data);
  }
  return out;
}

/** Anything wrong inside a plan file: its own code, so a script can tell an edited plan from a mistyped flag. */
const invalid = (message: string, opts?: { hint?: string }) => new EdgectlError('EDGECTL_PLAN_INVALID', message, opts);

/**
 * A node's root in a plan is a fleet's release root (the same rule as validate), or with
 * `--local` the operator's local directory plus the node's name: nothing else.
 */
function checkPlanRoot(p: Plan, n: PlanNode, where: string): void {
  let why: string | undefined;
  try {
    if (p.local) {
      if (typeof p.local.root !== 'string' || normaliseRoot(n.root) !== `${normaliseRoot(p.local.root)}/${n.node}`) why = `${JSON.stringify(n.root)} is not the local directory of node ${n.node}`;
    } else {
      normaliseRoot(n.root);
      const problem = releaseRootProblem(n.root);
      if (problem) why = `release root ${problem}`;
    }
  } catch (e) {
    why = errorMessage(e);
  }
  if (why) throw invalid(`${where}.root: ${why}`);
}

/** Reads a saved plan: a hostile file until every manifest, digest and blob checks out. */
export async function loadPlan(text: string, file: string, opts: { secrets?: SecretOpener; demoFleet?: string } = {}): Promise<{ plan: Plan; bundles: Map<string, ReleaseBundle> }> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalid(`${file} is not a plan (not JSON: ${(e as Error).message})`);
  }
  const p = raw as Plan;
  if (p?.format !== PLAN_FORMAT) throw invalid(`${file} is not an ${PLAN_FORMAT} plan (format: ${JSON.stringify((p as { format?: unknown })?.format ?? null)})`, { hint: 'Make one with `edgectl plan --out plan.json`.' });
  if (!Array.isArray(p.nodes)) throw invalid(`${file}: nodes must be a list`);
  const { guardProblems } = await import('../nginx/guard.js');
  const bundles = new Map<string, ReleaseBundle>();
  const blobs = p.blobs ?? {};
  const sealed = await openSealed(p, file, opts.secrets, opts.demoFleet);
  p.nodes.forEach((n: PlanNode, i: number) => {
    const where = `${file}: nodes[${i}]`;
    const r = nodeSchema.safeParse(n);
    if (!r.success) throw invalid(`${where}.${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`);
    checkPlanRoot(p, n, where);
    const pm = parseManifest(JSON.stringify(n.manifest));
    if (!pm.manifest) throw invalid(`${where}: ${pm.error}`);
    if (n.desired?.digest !== pm.manifest.digest || n.desired?.nginxConfigId !== pm.manifest.nginxConfigId) throw invalid(`${where}: desired does not match its manifest`);
    if (n.action === 'none' || n.action === 'unreachable') return;
    const files = Object.entries(pm.manifest.files).map(([path, f]) => {
      const b64 = blobs[f.sha256];
      const opened = f.mode === PRIVATE_MODE ? sealed.get(f.sha256) : undefined;
      if (typeof b64 !== 'string' && !opened) throw invalid(`${where}: the plan lacks the bytes of ${path}`);
      if (f.mode === PRIVATE_MODE && !opened) throw invalid(`${where}: the secret ${path} is not sealed in the plan`);
      const data = opened ?? Buffer.from(b64, 'base64');
      if (sha256Hex(data) !== f.sha256 || data.length !== f.size) throw invalid(`${where}: the bytes of ${path} do not match its sha256 (plan edited?)`);
      // Every file under nginx/ is one nginx may read (includes cannot leave it): each must parse and pass the guard.
      if (path.startsWith('nginx/') && !isTlsFilePath(path)) {
        const [bad] = guardProblems(data);
        if (bad) throw invalid(`${where}: ${path}:${bad.line}:${bad.column}: ${bad.message}`, { hint: 'A saved plan is applied as it is: edgectl refuses nginx config in it that could load code or reach outside the bundle. Make a new plan with `edgectl plan --out`.' });
      }
      return { path, data, mode: f.mode };
    });
    bundles.set(n.node, { files, manifest: pm.manifest, manifestData: manifestBytes(pm.manifest) });
  });
  return { plan: p, bundles };
}
