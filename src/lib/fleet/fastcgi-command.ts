/**
 * A FastCGI app's command: an argv list run without a shell (spec.fastcgi.command in the fleet,
 * fastcgi[].command in agent.json; the agent checks it again before spawning, since agent.json
 * on a node is only as trustworthy as whoever wrote it). Element 0 is either a bare program
 * name, looked up on the node's PATH, or a relative path inside the app's directory of the
 * release (bin/app); never absolute, never `..`, so a fleet cannot name a program elsewhere on
 * the node by path.
 */
export const FASTCGI_MAX_ARGS = 64;
export const FASTCGI_MAX_ARG_BYTES = 4096;
export const FASTCGI_MAX_PROCESSES = 64;

const SEGMENT = /^[A-Za-z0-9._+-]+$/;

/** Why element 0 cannot be run, or undefined. */
export function fastcgiProgramProblem(p: string): string | undefined {
  if (p.startsWith('/')) return 'must not be an absolute path: a program name looked up on the node\'s PATH (php-cgi) or a path inside the app\'s directory (bin/app)';
  const segs = p.split('/');
  if (segs.some((s) => s === '..' || s === '.')) return 'must not contain "." or ".." segments';
  if (!segs.every((s) => SEGMENT.test(s))) return 'must be a program name or relative path of letters, digits, ".", "_", "+", "-" and "/"';
  return undefined;
}

/** Why an argument cannot be passed, or undefined. */
export function fastcgiArgProblem(a: string): string | undefined {
  if (a.includes('\0')) return 'must not contain a NUL character';
  if (/[\r\n]/.test(a)) return 'must not contain a line break';
  if (Buffer.byteLength(a) > FASTCGI_MAX_ARG_BYTES) return `must be at most ${FASTCGI_MAX_ARG_BYTES} bytes`;
  return undefined;
}

/** Every problem of a command, each with the index of the element at fault. */
export function fastcgiCommandProblems(argv: readonly string[]): { index: number; message: string }[] {
  const out: { index: number; message: string }[] = [];
  if (argv.length === 0) return [{ index: -1, message: 'must name a program' }];
  if (argv.length > FASTCGI_MAX_ARGS) out.push({ index: FASTCGI_MAX_ARGS, message: `must have at most ${FASTCGI_MAX_ARGS} elements` });
  argv.forEach((a, i) => {
    const why = i === 0 ? fastcgiArgProblem(a) ?? fastcgiProgramProblem(a) : fastcgiArgProblem(a);
    if (why) out.push({ index: i, message: why });
  });
  return out;
}

/** True when element 0 is a path inside the app's directory rather than a name on PATH. */
export const isAppRelativeProgram = (p: string) => p.includes('/');
