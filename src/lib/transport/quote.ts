import { EdgectlError } from '../errors.js';

/**
 * sshd runs a command string through the user's login shell, so argv has to become one string
 * that a POSIX shell splits back into exactly these words. Words made only of safe characters
 * pass as they are; every other word is single-quoted, where nothing is special except the
 * quote itself ('\'' closes, adds an escaped quote, reopens). "=" is not safe: `A=b cmd` would
 * be an assignment. A NUL byte cannot be carried by any shell or by execve, so it is refused.
 */
const SAFE = /^[A-Za-z0-9_@%+:,./-]+$/;

export function shQuote(word: string): string {
  if (word.includes('\0')) throw new EdgectlError('EDGECTL_TRANSPORT', 'a command argument contains a NUL byte, which no command line can carry');
  if (SAFE.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

export function shJoin(argv: string[]): string {
  return argv.map(shQuote).join(' ');
}
