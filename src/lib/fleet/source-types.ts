// What a fleet source is, and which of its paths edgectl reads: shared by the working-tree and revision readers.
/** One file of a fleet repo, as bytes: decoding (and rejecting non-UTF-8) is the parser's job. */
export interface SourceFile {
  /** Path relative to the fleet root, with "/" separators. */
  path: string;
  bytes: Buffer;
}

export interface FleetSource {
  root: string;
  files: SourceFile[];
  /** The commit the files come from (HEAD for a working tree), undefined outside git. */
  commit?: string;
  /** True when the working tree differs from `commit`. Always false with --rev. */
  dirty: boolean;
  /** Where the files were read from: the working tree or a named revision. */
  from: 'worktree' | 'rev' | 'directory';
  rev?: string;
  /**
   * Everything under templates/ (read once, from the same place as the documents), so that
   * validate checks exactly the bytes render uses. Optional for sources built by hand.
   */
  templates?: TemplateFile[];
  /** Reads any other file of the fleet (app payloads) from the same place. */
  readExtra(relPath: string): Promise<Buffer | undefined>;
  /** Lists files under a directory of the fleet (for app payloads), relative to the fleet root. */
  listExtra(relDir: string): Promise<string[]>;
  /**
   * Symbolic links (and, in a working tree, FIFOs, sockets and devices) found where fleet files
   * live: edgectl reads none of them, and validate reports those at paths it would read.
   */
  links?: string[];
  /**
   * Certificates and secrets, read once like templates (validate checks their shape, render ships
   * them): every regular file under tls/ and every *.age file, each capped at MAX_SECRET_FILE_BYTES + 1.
   */
  secretFiles?: SourceFile[];
  /** Paths git tracks under .edgectl/, where edgectl writes (render output, local nodes). */
  reserved?: string[];
}

/** edgectl's own directory inside a fleet: render output and `--local` nodes. A fleet may not commit it. */
export const RESERVED_DIR = '.edgectl';

/** Why edgectl refuses to read a fleet path (a link, a FIFO...): one wording for validate and readers. */
export function unsafePathMessage(rel: string, reason: string): string {
  return `${rel} ${reason}: edgectl follows no symbolic link inside a fleet and reads only regular files (commit the file itself)`;
}

/** A file under the fleet's templates/: `bytes` only for regular files whose contents are used. */
export interface TemplateFile {
  path: string;
  type: 'file' | 'symlink' | 'other';
  bytes?: Buffer;
}

/** Files under templates/ whose bytes are read (the rest are only listed, to be reported). */
export const TEMPLATE_READ = /^templates\/nginx\/(?:(?:http|server)\.d\/[^/]+|mime\.types)$/;

/** tls/ and *.age files larger than this are refused (a chain or a key is a few KiB). */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** Which files are certificates or secrets (SourceFile.secretFiles): under tls/, or *.age, outside dot-directories. */
export function isSecretSourcePath(rel: string): boolean {
  if (!rel.startsWith('tls/') && !rel.endsWith('.age')) return false;
  const parts = rel.split('/');
  return parts[0] !== 'templates' && !parts.some((p) => p.startsWith('.') || p === 'node_modules');
}

/** Files larger than this are rejected before parsing: a fleet document is never this big. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;

const YAML_FILE = /\.ya?ml$/;

/** Which files are fleet documents: YAML anywhere but under templates/, dot-directories and node_modules. */
export function isFleetDocumentPath(rel: string): boolean {
  if (!YAML_FILE.test(rel)) return false;
  const parts = rel.split('/');
  if (parts[0] === 'templates') return false;
  return !parts.some((p) => p.startsWith('.') || p === 'node_modules');
}
