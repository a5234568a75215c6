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

/** systemd's version from the first line of `systemctl --version` ("systemd 252 (252.39-1~deb12u2)"); undefined if unreadable. */
export function systemdVersion(line: string | undefined): number | undefined {
  const m = /^systemd (\d{1,5})\b/.exec(line ?? '');
  return m ? Number(m[1]) : undefined;
}

/** The first systemd whose restarts can back off (RestartSteps=, RestartMaxDelaySec=). */
export const BACKOFF_SYSTEMD = 254;

/**
 * The restart policy's back-off lines: on systemd >= 254 the delay grows from RestartSec=2 to
 * 60 s over 5 steps (a crash loop costs little, a node that recovers is back within a minute);
 * older systemd does not know the keys (and warns about them), so there the agent is restarted
 * every 2 s, never given up on. The text depends only on which of the two it is: a unit rendered
 * for an unknown version (a pack) is the one bootstrap renders for 252, so no restart follows.
 */
export function restartBackoff(version: number | undefined): string {
  return version !== undefined && version >= BACKOFF_SYSTEMD
    ? 'RestartSteps=5\nRestartMaxDelaySec=60'
    : `# systemd < ${BACKOFF_SYSTEMD} (or of unknown version) has no RestartSteps=: a restart every 2 s, never giving up`;
}

/** templates/systemd/edgectl-agent.service with the node's values; every value is checked first. */
export async function renderUnit(v: UnitValues, systemd: number | undefined, templateDir = BUILTIN_TEMPLATE_DIR): Promise<string> {
  for (const [k, val] of Object.entries(v)) {
    if (!SAFE_PATH.test(val) || val.split('/').includes('..')) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${k} "${val.slice(0, 80)}" cannot go into the systemd unit (an absolute path of letters, digits and ._/+- only)`);
  }
  const text = await readFile(join(templateDir, 'systemd', UNIT_NAME), 'utf8');
  return text.replaceAll('@ROOT@', v.root).replaceAll('@RUNTIME@', v.runtime).replaceAll('@NGINX@', v.nginx).replace('@RESTART_BACKOFF@', restartBackoff(systemd));
}
