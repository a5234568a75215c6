import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Kind } from './schema.js';
import type { Problem } from './problems.js';
import { rebuildDocs } from './parse.js';
import type { FleetSource, SourceFile } from './source.js';
import { assemble, checkFile, validateFleet, type FileCheck, type ValidationResult } from './validate.js';

/** A FileCheck as it crosses the thread boundary: plain data, no syntax trees. */
export interface PlainCheck {
  path: string;
  text?: string;
  problems: Problem[];
  docs: { index: number; value: unknown; resource?: { kind: Kind; name: string; labels: Record<string, string>; spec: unknown } }[];
}

/** Below this many files one thread is faster: starting a worker costs about 100 ms. */
const MIN_FILES = 1500;
const WORKER = new URL('./check-worker.js', import.meta.url);

/**
 * validateFleet, with stage one (parsing and per-document schema checks, most of the cost)
 * split between this thread and one worker thread for large fleets. Same result as
 * validateFleet; if the worker cannot start or fails, its share is checked here instead.
 */
export async function validateFleetParallel(src: FleetSource, opts: { threads?: 1 | 2 } = {}): Promise<ValidationResult> {
  if (opts.threads === 1 || src.files.length < MIN_FILES || !existsSync(fileURLToPath(WORKER))) return validateFleet(src);
  // The worker's share is a little smaller: it first has to load the parser and the schemas.
  const total = src.files.reduce((n, f) => n + f.bytes.length, 0);
  let k = 0;
  for (let acc = 0; k < src.files.length && acc < total * 0.45; k++) acc += src.files[k].bytes.length;
  const theirs = src.files.slice(0, k);
  const pending = inWorker(theirs);
  const mine = src.files.slice(k).map(checkFile);
  const fromWorker = await pending.then((plain) => plain.map(rebuild)).catch(() => theirs.map(checkFile));
  return assemble(src, [...fromWorker, ...mine]);
}

function inWorker(files: SourceFile[]): Promise<PlainCheck[]> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { workerData: { files: files.map((f) => ({ path: f.path, bytes: new Uint8Array(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength) })) } });
    w.once('message', (m: PlainCheck[]) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  });
}

function rebuild(c: PlainCheck): FileCheck {
  if (c.text === undefined) return { path: c.path, problems: c.problems, docs: [] };
  const make = rebuildDocs(c.path, c.text);
  return {
    path: c.path,
    text: c.text,
    problems: c.problems,
    docs: c.docs.map((d) => {
      const doc = make(d.index, d.value);
      return { doc, resource: d.resource && { ...d.resource, source: doc } };
    }),
  };
}
