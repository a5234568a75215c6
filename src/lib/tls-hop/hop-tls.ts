import { X509Certificate } from 'node:crypto';
import { stat, readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The node side of TLS on the uplink hops (node:tls only: the agent bundle carries no X.509
 * library). The client verifies its next hop against the fleet CA pinned in agent.json and the
 * host of the upstream URL; the server (a relay's or the hub's forward listener) serves the hop
 * certificate issued by the fleet CA and picks up a renewed one without a restart.
 */

/** What the forwarder last saw of its upstream's TLS (/status forward.tls, the heartbeat). */
export type UpstreamTlsState = 'ok' | 'expired' | 'not-yet-valid' | 'untrusted' | 'wrong-name' | 'handshake-failed';

export interface UpstreamTls {
  state: UpstreamTlsState;
  upstream: string;
  at: string;
  /** The TLS error's code (CERT_HAS_EXPIRED, …): never anything of the certificate's key. */
  detail?: string;
}

const CODES: Record<string, UpstreamTlsState> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
  ERR_TLS_CERT_ALTNAME_INVALID: 'wrong-name',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'untrusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'untrusted',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'untrusted',
  CERT_SIGNATURE_FAILURE: 'untrusted',
  CERT_UNTRUSTED: 'untrusted',
  CERT_REJECTED: 'untrusted',
  INVALID_CA: 'untrusted',
  INVALID_PURPOSE: 'untrusted',
};

/** The TLS state an error of a request to an https:// upstream stands for; undefined when it is no TLS error. */
export function tlsErrorState(err: unknown): { state: UpstreamTlsState; code: string } | undefined {
  for (let e = err as { code?: unknown; cause?: unknown; message?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    const code = typeof e.code === 'string' ? e.code : undefined;
    if (code && CODES[code]) return { state: CODES[code], code };
    if (code?.startsWith('ERR_SSL_') || code === 'EPROTO' || (typeof e.message === 'string' && /SSL routines|wrong version number/.test(e.message))) return { state: 'handshake-failed', code: code ?? 'EPROTO' };
  }
  return undefined;
}

/** The fleet CA as agent.json pins it: one CA certificate, PEM. Why not, or undefined. */
export function caProblem(pem: string): string | undefined {
  let c: X509Certificate;
  try {
    c = new X509Certificate(pem);
  } catch {
    return 'is not a PEM certificate';
  }
  if (!c.ca) return 'is not a CA certificate';
  if (/PRIVATE KEY/.test(pem)) return 'holds a private key';
  return undefined;
}

export interface ServerCertStatus {
  certFile: string;
  subjectAltName: string | null;
  notAfter: string | null;
  daysLeft: number | null;
  /** The last reload's failure (the certificate in force stays): unreadable file, key not the cert's. */
  lastError: string | null;
  reloads: number;
}

/**
 * The forward listener's certificate and key, from files (0600 key). Read at start (a failure
 * refuses the listener: no TLS, no listener), then checked every few seconds: a changed file
 * (apply shipped a renewed certificate) is loaded and served to new connections.
 */
export class HopServerCert {
  private sig = '';
  private cert?: X509Certificate;
  private lastError: string | null = null;
  private reloads = 0;
  context?: SecureContext;

  /** onChange: given the new pair (before its key buffer is zeroed) to hand to the server. */
  constructor(readonly certFile: string, readonly keyFile: string, private readonly onChange: (pair: { cert: Buffer; key: Buffer }) => void = () => {}) {}

  /** Throws with a message naming the file (never its content) when the pair cannot be used. */
  async load(): Promise<boolean> {
    const [cs, ks] = await Promise.all([stat(this.certFile), stat(this.keyFile)]);
    const sig = `${cs.ino}:${cs.size}:${cs.mtimeMs}|${ks.ino}:${ks.size}:${ks.mtimeMs}`;
    if (sig === this.sig) return false;
    if ((ks.mode & 0o077) !== 0) throw new Error(`${this.keyFile} is readable by others (mode ${(ks.mode & 0o777).toString(8)}): a hop key is 0600`);
    const [certPem, keyPem] = await Promise.all([readFile(this.certFile), readFile(this.keyFile)]);
    try {
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(certPem);
      } catch {
        throw new Error(`${this.certFile} is not a PEM certificate`);
      }
      let context: SecureContext;
      try {
        context = createSecureContext({ cert: certPem, key: keyPem, minVersion: 'TLSv1.2' });
      } catch {
        throw new Error(`${this.keyFile} is not the key of ${this.certFile}`);
      }
      this.cert = cert;
      this.context = context;
      this.sig = sig;
      this.lastError = null;
      this.reloads++;
      this.onChange({ cert: certPem, key: keyPem });
      return true;
    } finally {
      keyPem.fill(0);
    }
  }

  /** A maintenance tick: a changed pair is loaded; a bad one is reported and the old one stays. */
  async check(): Promise<void> {
    try {
      await this.load();
    } catch (err) {
      this.lastError = (err as Error).message;
    }
  }

  status(now = Date.now()): ServerCertStatus {
    const c = this.cert;
    return {
      certFile: this.certFile,
      subjectAltName: c?.subjectAltName ?? null,
      notAfter: c ? new Date(c.validTo).toISOString() : null,
      daysLeft: c ? Math.floor((Date.parse(c.validTo) - now) / 86_400_000) : null,
      lastError: this.lastError,
      reloads: this.reloads,
    };
  }
}

/** The TLS forward listener serves the hop API and the health check, nothing else (devices go through nginx). */
export function forwardOnly(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const p = (req.url ?? '').split('?')[0];
    if (p === '/v1/forward' || p === '/healthz') return handler(req, res);
    res.writeHead(404, { 'content-type': 'application/json', connection: 'close' }).end('{"error":"not_found","message":"the TLS forward listener serves /v1/forward only"}\n');
  };
}

/**
 * A hop with a TLS forward listener refuses /v1/forward on its plain listener (before reading
 * the body): a sender that would send its credential and batches in clear is told to use TLS.
 */
export function tlsRequired(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if ((req.url ?? '').split('?')[0] !== '/v1/forward') return handler(req, res);
    res.writeHead(403, { 'content-type': 'application/json', connection: 'close' }).end('{"error":"tls_required","message":"this hop takes forwards over TLS only (its forwardTls listener)"}\n');
  };
}
