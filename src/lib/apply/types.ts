import type { NodeResult, Outcome, Step } from '../release/activate.js';

export const APPLY_REPORT_FORMAT = 'edgectl-apply/v1';

export interface ApplyEvent {
  time: string;
  node: string;
  kind: 'start' | 'step' | 'result';
  step?: Step;
  outcome?: Outcome;
  message?: string;
}

export interface ApplyReport {
  format: typeof APPLY_REPORT_FORMAT;
  startedAt: string;
  finishedAt: string;
  interrupted: boolean;
  /** Why new nodes stopped being started, if they did. */
  stopped?: string;
  nodes: NodeResult[];
  summary: Record<Outcome, number> & { uploadedFiles: number; uploadedBytes: number; reloads: number };
}
