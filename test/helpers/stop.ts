import type { ChildProcess } from 'node:child_process';

/**
 * Stops a child the way an operator would: SIGTERM, then SIGKILL after `graceMs`. For nginx,
 * SIGTERM matters: its master takes the workers with it, while a killed master leaves them
 * running (and holding the test's ports) after the test.
 */
export async function stopProcess(proc: ChildProcess | undefined, graceMs = 5000): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}
