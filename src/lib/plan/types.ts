import type { Manifest } from '../bundle/manifest.js';
import type { HealthTarget } from '../release/health.js';
import type { NginxTarget } from '../release/nginx.js';

/** The plan is a documented, versioned object: `--json` prints it, `--out` saves it, apply consumes it. */
export const PLAN_FORMAT = 'edgectl-plan/v1';

export type PlanAction = 'none' | 'create' | 'update' | 'finish' | 'unreachable';

export interface FileDiff {
  path: string;
  change: 'added' | 'changed' | 'removed';
  /** Unified diff (the `diff` package); already redacted. */
  patch: string;
  /** A certificate or secret: the patch shows digests only, never the bytes. */
  redacted?: boolean;
}

export interface KongFieldChange {
  field: string;
  old?: unknown;
  new?: unknown;
  redacted?: boolean;
}

export interface KongEntityChange {
  kind: string;
  name: string;
  change: 'added' | 'changed' | 'removed';
  fields: KongFieldChange[];
}

/** What a node is and what it should hold: the desired state (compute.ts) and the plan share it. */
export interface NodeTarget {
  node: string;
  role: 'core' | 'relay' | 'edge';
  /** How it is reached: ['local'], or relays then the node. */
  route: string[];
  root: string;
  nginx: NginxTarget;
  kong: boolean;
  health: HealthTarget[];
  manifest: Manifest;
}

export interface PlanNode extends NodeTarget {
  reachable: boolean;
  error?: string;
  /** dirty: current was rendered from uncommitted changes on top of `commit`. */
  current: {
    release: string | null; commit?: string | null; dirty?: boolean; manifestError?: string; nginxRunning?: boolean; pendingIntent?: boolean; lockedBy?: string;
    /** Current is the desired release, but its files on the node differ from its manifest (a hand edit): apply repairs it. */
    modified?: { modified: string[]; missing: string[]; extra: string[]; modeChanged: string[] };
  };
  desired: { release: string; digest: string; commit: string | null; nginxConfigId: string };
  action: PlanAction;
  reason?: string;
  files: { added: string[]; changed: string[]; removed: string[] };
  diff?: { files: FileDiff[]; kong?: KongEntityChange[] };
}

export interface PlanSummary {
  nodes: number;
  changes: number;
  unchanged: number;
  unreachable: number;
}

export interface Plan {
  format: typeof PLAN_FORMAT;
  createdAt: string;
  edgectl: string;
  fleet: { name: string; commit: string | null; dirty: boolean };
  /** Local mode: the nodes' directory, and each node's ports (nodes/local-mode.ts localPorts). */
  local?: { root: string; ports?: Record<string, { http: number; https?: number; agent: number; admin: number }> };
  nodes: PlanNode[];
  summary: PlanSummary;
  /** File contents by sha256 (base64), shared between nodes. Only in saved plans: apply needs the bytes. */
  blobs?: Record<string, string>;
  /** Secret files by sha256, as their age files from the fleet (never their bytes). Only in saved plans. */
  sealed?: Record<string, { file: string; age: string }>;
}
