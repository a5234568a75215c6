import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { EdgectlError, type ErrorCode } from '../errors.js';
import type { Bundle } from './bundle.js';
import { prepareWriteDir } from '../safe-fs/write-dir.js';
import { outputError, writeOne, type Written } from './write.js';

const WORKER = new URL('./write-worker.js', import.meta.url);

/**
 * Writes bundles on a worker thread while render goes on producing them: render is JavaScript,
 * writing tens of thousands of files is mostly kernel time, and on two cores the two overlap.
 * Bundles go over in batches (structured clone); at most `maxInFlight` batches wait, so a
 * slow disk holds render back instead of piling copies up in memory. Where the compiled worker
 * is not there (running from TypeScript sources, as the tests do), it writes in this thread.
 */
export class BundleWriter {
  private batch: Bundle[] = [];
  private inFlight = 0;
  private error?: unknown;
  private waiters: (() => void)[] = [];
  private started?: Promise<void>;
  private worker?: Worker;
  private readonly written: Written = new Map();
  private exited?: Promise<void>;
  /** The real output directory, once prepareWriteDir has checked and created it. */
  private realOut = '';

  /** `fleetRoot`: no symbolic link inside it is followed on the way to the output (safe-fs/write-dir.ts). */
  constructor(private readonly outDir: string, private readonly opts: { batch?: number; maxInFlight?: number; fleetRoot?: string } = {}) {}

  /** On the first bundle (or close): a render that fails before any bundle leaves no output behind. */
  private start(): Promise<void> {
    this.started ??= this.begin();
    return this.started;
  }

  private async begin(): Promise<void> {
    try {
      this.realOut = await prepareWriteDir(this.outDir, this.opts.fleetRoot);
    } catch (e) {
      throw outputError(this.outDir, e);
    }
    if (!existsSync(WORKER)) return;
    const w = new Worker(WORKER, { workerData: { outDir: this.realOut } });
    this.worker = w;
    w.on('message', (m: { written?: number; error?: { message: string; code?: string; syscall?: string; path?: string; hint?: string } }) => {
      // A coded refusal in the worker (a link in the way) stays coded across the thread boundary.
      if (m.error?.code?.startsWith('EDGECTL_')) this.fail(new EdgectlError(m.error.code as ErrorCode, m.error.message, { hint: m.error.hint }));
      else if (m.error) this.fail(Object.assign(new Error(m.error.message), m.error));
      else this.inFlight--;
      this.wake();
    });
    w.on('error', (e) => { this.fail(e); this.wake(); });
    this.exited = new Promise((resolve) => w.once('exit', () => { if (this.inFlight > 0) this.fail(new Error('the bundle writer stopped early')); this.wake(); resolve(); }));
  }

  /** Queues a bundle; resolves at once unless too many batches are waiting for the disk. */
  async add(b: Bundle): Promise<void> {
    await this.start();
    this.check();
    if (!this.worker) {
      try {
        writeOne(this.realOut, b, this.written);
      } catch (e) {
        throw outputError(this.outDir, e);
      }
      return;
    }
    this.batch.push(b);
    if (this.batch.length >= (this.opts.batch ?? 200)) this.send();
    while (this.inFlight >= (this.opts.maxInFlight ?? 4) && !this.error) await new Promise<void>((r) => this.waiters.push(r));
    this.check();
  }

  /** Everything written (or the first error, as EDGECTL_OUTPUT when it is the output's fault). */
  async close(): Promise<void> {
    try {
      await this.start();
      if (this.worker) {
        if (!this.error) this.send();
        while (this.inFlight > 0 && !this.error) await new Promise<void>((r) => this.waiters.push(r));
      }
      this.check();
    } finally {
      await this.abort();
    }
  }

  /** Stops the worker (render failed, or after close). */
  async abort(): Promise<void> {
    if (!this.worker) return;
    this.inFlight = 0;
    await this.worker.terminate();
    await this.exited;
  }

  private send(): void {
    if (this.batch.length === 0) return;
    this.inFlight++;
    this.worker!.postMessage({ bundles: this.batch });
    this.batch = [];
  }

  private fail(e: unknown): void {
    this.error ??= e;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private check(): void {
    if (this.error) throw outputError(this.outDir, this.error);
  }
}
