/**
 * The last stop of an error that no edgectl command caught: oclif's own (a mistyped command, a
 * bad flag of `help` or `autocomplete`, which are oclif's plugins). oclif exits 2 for usage and
 * 127 for an unknown command; edgectl's table has neither (2 means "changes" or "drift" to a cron
 * job): both become 1, as EDGECTL_USAGE, and a mistyped command is told the nearest one.
 */
export interface OclifFailure extends Error {
  oclif?: { exit?: number };
}

export const EXIT_NOT_FOUND = 127;

/**
 * What to print and the status to exit with for an error oclif would exit 2 or 127 with; undefined
 * for any other (oclif's handler keeps those: an exit, a 0 or 1 it already chose).
 */
export function usageExit(err: OclifFailure, o: { argv: string[]; commandIDs: string[]; bin: string; tty: boolean }): { text: string; exit: 1 } | undefined {
  const exit = err && typeof err === 'object' ? err.oclif?.exit : undefined;
  if (exit === undefined || exit === 0 || exit === 1) return undefined;
  const words = (argv: string[]) => argv.slice(0, Math.max(0, argv.findIndex((a) => a.startsWith('-'))) || argv.length).slice(0, 2);
  const helpOf = o.argv[0] === 'help' && /not found/i.test(String(err.message));
  if (exit === EXIT_NOT_FOUND || helpOf) {
    const typed = words(helpOf ? o.argv.slice(1) : o.argv);
    const guess = nearest(typed, o.commandIDs.filter((c) => !c.startsWith('autocomplete:')));
    // On a terminal the not-found plugin has already asked "Did you mean …?", and was told no.
    const suggest = guess && (helpOf || !o.tty) ? `did you mean \`${o.bin} ${helpOf ? 'help ' : ''}${guess.replaceAll(':', ' ')}\`? ` : '';
    return { text: `error ${typed.join(' ') || o.argv[0] || 'that'} is not an edgectl command [EDGECTL_USAGE]\nhint: ${suggest}\`${o.bin} help\` lists every command\n`, exit: 1 };
  }
  const message = String(err.message ?? err).replace(/\n\s*See more help with --help$/, '');
  const typed = words(o.argv);
  const command = [typed.join(':'), typed[0]].find((id) => id && (o.commandIDs.includes(id) || id === 'help'));
  return { text: `error ${message} [EDGECTL_USAGE]\nhint: run \`${o.bin}${command ? ` ${command.replaceAll(':', ' ')}` : ''} --help\`\n`, exit: 1 };
}

/** The command id closest to what was typed (one or two words), if it is close enough to be a typo. */
function nearest(typed: string[], ids: string[]): string | undefined {
  if (typed.length === 0) return undefined;
  let best: { id: string; d: number } | undefined;
  for (const id of ids) {
    const words = id.split(':').length;
    const d = distance(typed.slice(0, words).join(':'), id);
    if (!best || d < best.d) best = { id, d };
  }
  return best && best.d <= Math.max(2, Math.floor(best.id.length / 3)) ? best.id : undefined;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
