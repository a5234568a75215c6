import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BUILTIN_TEMPLATE_DIR } from '../render/templates.js';
import { EdgectlError } from '../errors.js';

export const UNIT_NAME = 'edgectl-agent.service';
export const UNIT_PATH = `/etc/systemd/system/${UNIT_NAME}`;

/** A path that can stand in a unit file unquoted: absolute, safe characters only (no spaces, %, $, quotes). */
const SAFE_PATH = /^\/[A-Za-z0-9._/+-]*$/;

export interface UnitValues {
  root: string;
  runtime: string;
  nginx: string;
}

/** templates/systemd/edgectl-agent.service with the node's values; every value is checked first. */
export async function renderUnit(v: UnitValues, templateDir = BUILTIN_TEMPLATE_DIR): Promise<string> {
  for (const [k, val] of Object.entries(v)) {
    if (!SAFE_PATH.test(val) || val.split('/').includes('..')) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${k} "${val.slice(0, 80)}" cannot go into the systemd unit (an absolute path of letters, digits and ._/+- only)`);
  }
  const text = await readFile(join(templateDir, 'systemd', UNIT_NAME), 'utf8');
  return text.replaceAll('@ROOT@', v.root).replaceAll('@RUNTIME@', v.runtime).replaceAll('@NGINX@', v.nginx);
}
