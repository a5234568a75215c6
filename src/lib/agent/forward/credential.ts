import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Logger } from '../../logger.js';
import { EdgectlError, errorMessage } from '../../errors.js';

const TOKEN = /^[\x21-\x7e]{1,512}$/;
const RECHECK_MS = 5000;

/**
 * This node's credential for its next hop's /v1/forward, from credentialFile. A node may run
 * before it has one (bootstrap writes it later): it then takes and spools device data, and its
 * next hop refuses its forwards until the file appears. Read again after a refusal, so a
 * rotated credential is picked up without a restart.
 */
export class CredentialFile {
  private value?: string;
  private checkedAt = 0;
  private saidMissing = false;

  constructor(private readonly file: string | undefined, private readonly log: Logger) {}

  /** Fails only on a file that is there and is not a credential (a config error worth stopping for). */
  async load(): Promise<void> {
    await this.read();
  }

  async get(): Promise<string | undefined> {
    if (this.value === undefined && Date.now() - this.checkedAt >= RECHECK_MS) {
      try {
        await this.read();
      } catch (err) {
        this.log.error('cannot use the forwarding credential', { error: errorMessage(err) });
      }
    }
    return this.value;
  }

  /** The next hop refused it: read the file again before the next attempt. */
  forget(): void {
    this.value = undefined;
    this.checkedAt = 0;
  }

  private async read(): Promise<void> {
    if (!this.file) return;
    this.checkedAt = Date.now();
    let fh;
    try {
      // O_NONBLOCK: a FIFO there must not hang the agent (it is refused as not a file).
      fh = await open(this.file, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new EdgectlError('EDGECTL_AGENT_CONFIG', `cannot read credentialFile ${this.file}: ${errorMessage(err)}`);
      if (!this.saidMissing) this.log.warn('no forwarding credential yet; the next hop will refuse forwards until there is one', { credentialFile: this.file });
      this.saidMissing = true;
      return;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size > 1024) throw new EdgectlError('EDGECTL_AGENT_CONFIG', `credentialFile ${this.file} is not a credential file (a regular file of at most 1 KiB)`);
      const text = (await fh.readFile('utf8')).trim();
      if (!TOKEN.test(text)) throw new EdgectlError('EDGECTL_AGENT_CONFIG', `credentialFile ${this.file} must hold one printable token`);
      if (this.saidMissing) this.log.info('forwarding credential found', { credentialFile: this.file });
      this.value = text;
      this.saidMissing = false;
    } finally {
      await fh.close();
    }
  }
}
