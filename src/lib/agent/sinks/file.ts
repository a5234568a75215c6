import { open, type FileHandle } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Deliverer } from '../forward/deliverer.js';
import type { Batch } from '../store/spool.js';
import { sinkLines } from './format.js';

/**
 * JSON lines appended to a file, fdatasync'ed before the batch counts as delivered. Development
 * and the embedded default: a hub crash between the write and the spool delete can repeat lines
 * (they carry their id, so readers can drop repeats); JetStream is the exactly-once sink.
 */
export class FileSink implements Deliverer {
  readonly name: string;
  private fh?: FileHandle;

  constructor(private file: string) {
    this.name = `file:${file}`;
  }

  async deliver(batch: Pick<Batch, 'messages'>): Promise<void> {
    const msgs = batch.messages();
    if (!this.fh) {
      mkdirSync(path.dirname(this.file), { recursive: true });
      this.fh = await open(this.file, 'a', 0o640);
    }
    await this.fh.write(sinkLines(msgs));
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
  }
}
