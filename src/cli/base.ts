import { Command } from '@oclif/core';
import { EdgectlError, isEdgectlError } from '../lib/errors.js';
import { Declined } from './declined.js';
import { colorsFor } from './output.js';

/**
 * Every edgectl command extends this. It owns the one place where errors become exit codes:
 *   0 success / valid / no changes, 1 error or invalid input, 2 changes or drift (only where a
 * command documents it). oclif's own usage errors would exit 2, which would read as "changes"
 * to a cron job, so they are mapped to 1 here (and in bin/run.js, src/cli/exit.ts, for the errors
 * no command catches: an unknown command, the help and autocomplete plugins). A "no" at a
 * confirmation prompt (Declined) is no error: one plain line and the command's exit status.
 */
export abstract class EdgectlCommand extends Command {
  protected out(text: string): void {
    process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }

  protected err(text: string): void {
    process.stderr.write(text.endsWith('\n') ? text : text + '\n');
  }

  protected setExit(code: number): void {
    process.exitCode = code;
  }

  override async catch(error: Error & { oclif?: { exit?: number }; code?: string }): Promise<void> {
    const c = colorsFor(process.stderr);
    if (error instanceof Declined) {
      this.err(error.message);
      process.exitCode = error.exitCode;
      return;
    }
    if (isEdgectlError(error)) {
      this.err(`${c.red('error')} ${error.message} ${c.dim(`[${error.code}]`)}`);
      if (error.detail) this.err(error.detail);
      if (error.hint) this.err(c.dim(`hint: ${error.hint}`));
      process.exitCode = error.exitCode;
      return;
    }
    // oclif's parse errors (unknown flag, missing arg) carry an `oclif` property.
    if (error && typeof error === 'object' && 'oclif' in error) {
      if (error.oclif?.exit === 0) return;
      this.err(`${c.red('error')} ${error.message.replace(/\n\s*See more help with --help$/, '')} ${c.dim('[EDGECTL_USAGE]')}`);
      this.err(c.dim(`hint: run \`edgectl ${this.id?.replaceAll(':', ' ') ?? ''} --help\``));
      process.exitCode = 1;
      return;
    }
    if (error?.code === 'EPIPE') return;
    // Uncoded: a bug. Show the stack only when asked.
    const wrapped = new EdgectlError('EDGECTL_INTERNAL', error?.message ?? String(error));
    this.err(`${c.red('error')} ${wrapped.message} ${c.dim('[EDGECTL_INTERNAL]')}`);
    if (process.env.EDGECTL_DEBUG) this.err(String(error?.stack ?? ''));
    this.err(c.dim(`hint: ${wrapped.hint} (set EDGECTL_DEBUG=1 for a stack trace)`));
    process.exitCode = 1;
  }
}
