import { appPayloadDir, type AppResource } from './model.js';
import { locate } from './parse.js';
import { formatPath, type Problem } from './problems.js';
import { RESERVED_DIR, unsafePathMessage, type FleetSource } from './source.js';

const under = (p: string, dir: string) => p === dir || p.startsWith(dir + '/') || dir.startsWith(p + '/');

/**
 * Files, not documents: a symbolic link (or FIFO, device) where edgectl reads a file is an
 * error, since readers refuse it anyway (docs/fleet-format.md); links elsewhere (a README
 * link, a linked *.yaml, which is skipped as it always was) are left alone. And a fleet may not commit .edgectl/, where render and `--local`
 * write: a committed link there would turn a render into a write anywhere.
 */
export function fileRules(src: Pick<FleetSource, 'links' | 'reserved'>, apps: AppResource[]): Problem[] {
  const out: Problem[] = [];
  const fileProblem = (file: string, rule: string, message: string, hint: string) => out.push({ severity: 'error', rule, file, line: 1, column: 1, path: '', message, hint });
  if (src.reserved?.length) {
    fileProblem(src.reserved[0], 'reserved-path', `the fleet commits ${RESERVED_DIR}/ (${src.reserved.length} path(s)), where edgectl writes its render output and local nodes`,
      `Remove it from git (\`git rm -r --cached ${RESERVED_DIR}\`) and add ${RESERVED_DIR}/ to .gitignore.`);
  }
  const dirs = apps.flatMap((a) => {
    const p = appPayloadDir(a);
    return p ? [{ app: a, ...p }] : [];
  });
  for (const link of src.links ?? []) {
    if (link === RESERVED_DIR) continue; // a link there is committed, hence reported above, or the operator's own
    const reason = 'is a symbolic link or a special file';
    const owner = dirs.find((d) => under(link, d.dir));
    if (owner) {
      const pos = locate(owner.app.source, owner.field);
      out.push({ severity: 'error', rule: 'fleet-link', file: owner.app.source.file, ...pos, path: formatPath(owner.field), message: `payload of app "${owner.app.name}": ${unsafePathMessage(link, reason)}`, hint: 'Replace the link by a copy of the file or directory.' });
    } else if (link === 'known_hosts' || link === 'templates' || link.startsWith('templates/')) {
      fileProblem(link, 'fleet-link', unsafePathMessage(link, reason), 'Replace the link by a copy of the file.');
    }
  }
  return out;
}
