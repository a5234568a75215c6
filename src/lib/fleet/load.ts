import { EdgectlError } from '../errors.js';
import { readFleetSource, type FleetSource } from './source.js';
import { validateFleet, type ValidationResult } from './validate.js';
import type { FleetModel } from './model.js';

export interface LoadedFleet {
  model: FleetModel;
  source: FleetSource;
  validation: ValidationResult;
}

/** Reads and validates a fleet for commands that need a valid one (render, plan, apply). */
export async function loadFleet(dir: string, rev?: string): Promise<LoadedFleet> {
  const source = await readFleetSource(dir, rev);
  const validation = validateFleet(source);
  if (!validation.model) {
    const first = validation.problems.find((p) => p.severity === 'error');
    throw new EdgectlError('EDGECTL_FLEET_INVALID', `the fleet has ${validation.errors} error(s)${first ? `; first: ${first.file}:${first.line}:${first.column} ${first.path ? first.path + ': ' : ''}${first.message}` : ''}`);
  }
  return { model: validation.model, source, validation };
}
