import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { agentAdminTokenFile, isLoopbackHost, type AgentConfig } from '../bundle/agent-json.js';
import { loadAdminToken } from './admin-token.js';
import type { Logger } from '../logger.js';
import { EdgectlError, errorMessage } from '../errors.js';
import { Spool } from './store/spool.js';
import { type AgentContext, buildContext } from './context.js';
import { buildAdminApp, buildDeviceApp, type Handler } from './http/app.js';
import { fastIntakeEnabled, fastIntakeFront } from './http/fast-intake.js';
import { Forwarder } from './forward/forwarder.js';
import type { Deliverer } from './forward/deliverer.js';
import { UpstreamDeliverer } from './forward/upstream.js';
import { CredentialFile } from './forward/credential.js';
import { createSink } from './sinks/index.js';
import { sendHeartbeat } from './heartbeat.js';
import { meterStep } from './metering/index.js';
import { createHttpClient, type HttpClient } from '../http-client.js';
import { splitHostPort } from '../fleet/ip.js';
import type { NodeRuntime } from './node-runtime.js';
import { ReverseTunnel } from './tunnel/tunnel.js';
import { HopServerCert, forwardOnly, tlsRequired, type UpstreamTls } from '../tls-hop/hop-tls.js';

export type AgentState = 'created' | 'running' | 'stopping' | 'stopped';

/**
 * The HTTPQ agent: spool + device/hop API + admin API + forwarder (or sink on the hub).
 * create() opens the store and builds the handlers; listen() binds the sockets; close() stops
 * accepting, lets the forwarder finish its batch, and closes the store. Built apart from listen()
 * so that a test can serve the handlers on its own http.Server (test/agent/device-app.test.ts).
 */
export class Agent {
  state: AgentState = 'created';
  readonly device: Handler;
  readonly admin: Handler;
  private servers: { close(cb: () => void): unknown; closeAllConnections(): void }[] = [];
  private timer?: NodeJS.Timeout;
  private lastHeartbeat = 0;
  private maintaining = false;
  private tunnel?: ReverseTunnel;
  private hopCert?: HopServerCert;

  private constructor(readonly ctx: AgentContext, private forwarder?: Forwarder, private ownHttp?: HttpClient) {
    this.device = buildDeviceApp(ctx);
    this.admin = buildAdminApp(ctx);
  }

  private startedAt = Date.now();

  /** deps.node: what outlives this instance (serve.ts). deps.http: the client for the forwarder's or the sink's HTTP calls; by default one of its own, closed by close(). */
  static async create(config: AgentConfig, log: Logger, deps: { http?: HttpClient; node?: NodeRuntime } = {}): Promise<Agent> {
    const t0 = Date.now();
    // Before the store: an agent that cannot authenticate its admin callers does not start.
    const adminTokenHash = await loadAdminToken(config.adminTokenFile ?? agentAdminTokenFile(config.dataDir));
    const forward = { maxMessages: config.forwardBatchMessages ?? 1000, maxBytes: config.forwardBatchBytes ?? 4 << 20 };
    // A device batch is stored as chunks no larger than a forward batch, so chunks never overshoot one.
    const spool = new Spool({ dataDir: config.dataDir, log, node: config.node, dedupeWindow: config.dedupeWindow, chunkMessages: forward.maxMessages, chunkBytes: Math.min(forward.maxBytes, 1 << 20) });
    try {
      await spool.open();
    } catch (err) {
      throw new EdgectlError('EDGECTL_AGENT_CONFIG', `cannot open the spool in ${config.dataDir}: ${errorMessage(err)}`, { cause: err });
    }
    const http = deps.http ?? createHttpClient();
    let out: Deliverer;
    const seen = { tls: (_t: UpstreamTls): void => {} };
    try {
      out = config.role === 'hub' ? await hubSink(config, log, http, forward) : await upstream(config, log, http, (t) => seen.tls(t));
    } catch (err) {
      await spool.close();
      if (!deps.http) await http.close();
      throw err;
    }
    const wake = { fw: undefined as Forwarder | undefined };
    const ctx = buildContext(config, spool, log, () => wake.fw?.notify());
    ctx.adminTokenHash = adminTokenHash;
    seen.tls = (t) => {
      const was = ctx.stats.upstreamTls?.state;
      ctx.stats.upstreamTls = t;
      if (t.state !== was) (t.state === 'ok' ? log.info : log.error).call(log, t.state === 'ok' ? 'the next hop\'s certificate verifies' : 'the next hop\'s certificate does not verify: nothing is sent to it, the spool keeps everything', { upstream: t.upstream, tls: t.state, ...(t.detail ? { code: t.detail } : {}) });
    };
    ctx.node = deps.node;
    const fw = new Forwarder(spool, out, ctx.stats, log, forward);
    wake.fw = fw;
    const agent = new Agent(ctx, fw, deps.http ? undefined : http);
    agent.startedAt = t0;
    if (config.tunnel) {
      const tunnel = new ReverseTunnel(config.tunnel, { log });
      agent.tunnel = tunnel;
      ctx.tunnel = () => tunnel.status();
    }
    return agent;
  }

  /** Binds the device and admin sockets, starts forwarding and maintenance. */
  async listen(): Promise<{ listen: string; admin: string }> {
    const c = this.ctx.config;
    const timeout = c.requestTimeoutMs ?? 30_000;
    // fast: the device port's front (http/fast-intake.ts) answers the plainest single POSTs and hands every other connection to the HTTP server.
    const bind = async (hp: string, handler: Handler, fast = false): Promise<string> => {
      const server = createServer({ requestTimeout: timeout, headersTimeout: Math.min(timeout, 10_000), keepAliveTimeout: 65_000, connectionsCheckingInterval: Math.max(100, Math.min(1000, timeout / 4)) }, handler);
      server.maxHeadersCount = 64;
      const front = fast ? fastIntakeFront(this.ctx, server, 65_000) : undefined;
      const listener = front ? front.server : server;
      const { host, port } = splitHostPort(hp);
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject);
        listener.listen(port, host, () => { listener.off('error', reject); resolve(); });
      });
      this.servers.push(front ?? server);
      const a = listener.address() as AddressInfo;
      return `${a.address}:${a.port}`;
    };
    const listen = await bind(c.listen, c.forwardTls ? tlsRequired(this.device) : this.device, fastIntakeEnabled);
    const admin = await bind(c.admin, this.admin);
    const forwardTls = c.forwardTls ? await this.bindTls(c.forwardTls, timeout) : undefined;
    // The config allows only loopback literals; what was bound is checked all the same.
    if (!isLoopbackHost(admin.slice(0, admin.lastIndexOf(':')))) throw new EdgectlError('EDGECTL_AGENT_CONFIG', `the admin API is bound to ${admin}, which is not a loopback address`);
    this.forwarder?.start();
    this.tunnel?.start();
    this.timer = setInterval(() => void this.maintain(), 1000);
    this.state = 'running';
    this.ctx.log.info('agent running', { node: c.node, role: c.role, listen, admin, ...(forwardTls ? { forwardTls } : {}), epoch: this.ctx.spool.epoch, startupMs: Date.now() - this.startedAt });
    return { listen, admin };
  }

  /**
   * The TLS forward listener (relays, the hub): /v1/forward and /healthz only, with the hop
   * certificate, which maintain() reloads when its files change. A pair that does not load
   * refuses the start: a hop that cannot prove who it is does not listen.
   */
  private async bindTls(t: NonNullable<AgentConfig['forwardTls']>, timeout: number): Promise<string> {
    let server: ReturnType<typeof createHttpsServer> | undefined;
    let first: { cert: Buffer; key: Buffer } | undefined;
    const cert = new HopServerCert(t.certFile, t.keyFile, (pair) => {
      if (server) server.setSecureContext({ ...pair, minVersion: 'TLSv1.2' });
      else first = { cert: Buffer.from(pair.cert), key: Buffer.from(pair.key) };
    });
    try {
      await cert.load();
    } catch (err) {
      throw new EdgectlError('EDGECTL_AGENT_CONFIG', `forwardTls: ${errorMessage(err)}`);
    }
    try {
      server = createHttpsServer({ ...first!, minVersion: 'TLSv1.2', requestTimeout: timeout, headersTimeout: Math.min(timeout, 10_000), keepAliveTimeout: 65_000, connectionsCheckingInterval: Math.max(100, Math.min(1000, timeout / 4)) }, forwardOnly(this.device));
    } finally {
      first!.key.fill(0);
    }
    server.maxHeadersCount = 64;
    const { host, port } = splitHostPort(t.listen);
    const s = server;
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, () => { s.off('error', reject); resolve(); });
    });
    this.servers.push(s);
    this.hopCert = cert;
    this.ctx.forwardTls = () => cert.status();
    const a = s.address() as AddressInfo;
    return `${a.address}:${a.port}`;
  }

  /** TTLs, dedupe window eviction, compaction, heartbeat. One run at a time. */
  async maintain(now = Date.now()): Promise<void> {
    const { spool, config, log } = this.ctx;
    if (this.maintaining || spool.state !== 'open') return;
    this.maintaining = true;
    try {
      await this.hopCert?.check();
      for (const t of this.ctx.tenants.values()) {
        for (const topic of t.topics.values()) {
          if (topic.ttlSeconds) await spool.expire(t.name, topic.name, now - topic.ttlSeconds * 1000);
        }
      }
      await spool.evictWindows();
      await spool.compactIfDue();
      if (await meterStep(this.ctx, now)) this.forwarder?.notify();
      const every = (config.heartbeatSeconds ?? 30) * 1000;
      if (every > 0 && now - this.lastHeartbeat >= every) {
        this.lastHeartbeat = now;
        await sendHeartbeat(this.ctx, now);
        this.forwarder?.notify();
      }
    } catch (err) {
      log.warn('maintenance step failed', { error: errorMessage(err) });
    } finally {
      this.maintaining = false;
    }
  }

  async close(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'stopping';
    clearInterval(this.timer);
    await this.tunnel?.stop();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); })));
    await this.forwarder?.stop();
    await this.ownHttp?.close();
    while (this.maintaining) await new Promise((r) => setTimeout(r, 10));
    await this.ctx.spool.close();
    this.state = 'stopped';
  }
}

async function hubSink(config: AgentConfig, log: Logger, http: HttpClient, forward: { maxMessages: number; maxBytes: number }): Promise<Deliverer> {
  if (!config.sink) throw new EdgectlError('EDGECTL_AGENT_CONFIG', 'role hub needs a sink (--sink file:PATH | http(s)://… | nats://HOST:PORT | postgres://USER@HOST:PORT/DATABASE)');
  try {
    return await createSink(config.sink, log, http, { batchMessages: forward.maxMessages, batchBytes: forward.maxBytes });
  } catch (err) {
    throw new EdgectlError('EDGECTL_AGENT_CONFIG', errorMessage(err));
  }
}

async function upstream(config: AgentConfig, log: Logger, http: HttpClient, onTls: (t: UpstreamTls) => void): Promise<Deliverer> {
  if (config.upstreams.length === 0) throw new EdgectlError('EDGECTL_AGENT_CONFIG', `role ${config.role} needs at least one upstream (--upstream http://relay:PORT/v1/forward)`);
  const credential = new CredentialFile(config.credentialFile, log);
  await credential.load();
  try {
    return new UpstreamDeliverer(config.upstreams, credential, log, http, 30_000, { ca: config.upstreamCa, onTls });
  } catch (err) {
    throw new EdgectlError('EDGECTL_AGENT_CONFIG', `upstreams: ${errorMessage(err)}`);
  }
}
