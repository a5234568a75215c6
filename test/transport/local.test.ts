import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { LocalTransport } from '../../src/lib/transport/local.js';
import { freePort } from '../helpers/ports.js';
import { ECHO_SERVER, transportContract } from './contract.js';

describe('LocalTransport contract', () => {
  let dir: string;
  let echo: ChildProcess;
  let port: number;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ec-local-'));
    port = await freePort('127.0.1.250');
    echo = spawn(process.execPath, ['-e', ECHO_SERVER, '127.0.1.250', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => echo.stdout!.once('data', r));
  });
  afterAll(async () => {
    echo?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  const t = new LocalTransport('local-node');
  transportContract({ t: () => t, dir: () => dir, httpTarget: () => ({ host: '127.0.1.250', port }) });
});
