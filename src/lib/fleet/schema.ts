import { z } from 'zod';
import { isIP } from 'node:net';
import { ipSpellingProblem, unbracket } from './ip.js';
import { RE, COUNT_OR_PERCENT, UNIX_HOST_REASON, checkHttpUrl, isAddress, isDomain, releaseRootProblem } from './values.js';
import { MAX_MESSAGE_BYTES } from '../limits.js';
import { FASTCGI_MAX_PROCESSES, fastcgiCommandProblems } from './fastcgi-command.js';
import { parseSshPublicKey } from './ssh-public-key.js';
import { RECIPIENT_RE } from '../secrets/age.js';

/**
 * zod schemas of the edgectl/v1 documents. Every object is strict: an unknown field is an
 * error (usually a typo; the validator adds a "did you mean" hint). Stage one of validation;
 * cross-references live in rules.ts.
 */
const re = (r: RegExp, what: string) => z.string().regex(r, { message: `must be ${what}` });

export const dnsName = re(RE.dnsLabel, 'a DNS label: lowercase letters, digits and "-", at most 63, not starting or ending with "-"');
export const port = z.number({ invalid_type_error: 'must be a number' }).int('must be an integer').min(1, 'must be a port between 1 and 65535').max(65535, 'must be a port between 1 and 65535');
const absPath = re(RE.absPath, 'an absolute path of letters, digits, ".", "_", "-" and "/"').refine((p) => !p.split('/').includes('..'), { message: 'must not contain ".."' });
/** A node's release root: apply creates and swaps directories under it, so only below a data prefix (values.ts). */
const rootPath = z.string().superRefine((p, ctx) => {
  const why = releaseRootProblem(p);
  if (why) ctx.addIssue({ code: z.ZodIssueCode.custom, message: why });
});
const fileName = re(RE.fileName, 'a file name of letters, digits, ".", "_" and "-", not starting with "." or "-"');
const relPath = re(RE.relPath, 'a relative path inside the fleet repo (letters, digits, ".", "_", "-", "/")').refine((p) => !p.split('/').some((s) => s === '..' || s === '.'), { message: 'must not contain "." or ".." segments' });
/** A file under the fleet's tls/: certificates and their keys (read by validate and render, never shipped as a payload). */
const tlsPath = relPath.refine((p) => p.startsWith('tls/'), { message: 'must be under tls/ of the fleet' });
const httpUrl = (allowQuery = false) =>
  z.string().superRefine((s, ctx) => {
    const why = checkHttpUrl(s, { allowQuery });
    if (why) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `URL ${why}` });
  });
const address = z.string().superRefine((s, ctx) => {
  // One spelling per address, so that host-key pins and own-node checks compare like with like.
  const why = isAddress(s) ? ipSpellingProblem(s) : 'must be an IP address or a hostname';
  if (why) ctx.addIssue({ code: z.ZodIssueCode.custom, message: why });
});
/** An address nginx listens on or connects to (see UNIX_HOST_REASON). */
const nginxAddress = address.refine((s) => s !== 'unix', { message: UNIX_HOST_REASON });
const domain = z.string().refine(isDomain, { message: 'must be a valid hostname (lowercase; a wildcard only as the whole leftmost label, like *.example.com)' });
const duration = re(RE.duration, 'a duration like 30s, 10m, 2h or 1d');
const countOrPercent = z.union([z.number().int().min(0), re(COUNT_OR_PERCENT, 'a count or a percentage like "25%"')]);
const hostPort = z.string().superRefine((s, ctx) => {
  const m = /^(.+):(\d{1,5})$/.exec(s);
  const host = m ? unbracket(m[1]) : undefined;
  if (!m || !host || !isAddress(host) || Number(m[2]) < 1 || Number(m[2]) > 65535 || (isIP(host) === 6) !== m[1].startsWith('[')) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be HOST:PORT, with an IP or hostname (IPv6 in brackets: [2001:db8::1]:7311) and a port between 1 and 65535' });
  } else if (host === 'unix') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: UNIX_HOST_REASON });
  } else {
    const why = ipSpellingProblem(host);
    if (why) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `address ${why}` });
  }
});

const fastcgiCommand = z.array(z.string({ invalid_type_error: 'must be a string (quote numbers and booleans)' })).superRefine((argv, ctx) => {
  for (const p of fastcgiCommandProblems(argv)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: p.index >= 0 ? [p.index] : [], message: p.message });
});

export const labels = z.record(re(RE.labelKey, 'a label key (lowercase letters, digits, ".", "_", "-", "/")'), z.string({ invalid_type_error: 'must be a string (quote numbers and booleans)' }).regex(RE.labelValue, { message: 'must be a label value: letters, digits, ".", "_", "-", at most 63, starting and ending with a letter or digit' }));

export const metadataSchema = z.object({
  name: dnsName,
  labels: labels.optional(),
  annotations: z.record(re(RE.labelKey, 'an annotation key (lowercase letters, digits, ".", "_", "-", "/")'), re(RE.note, 'text of at most 1000 characters without control or bidi characters')).optional(),
}).strict();

/** An OpenSSH public key line that goes into a relay's authorized_keys (ssh-public-key.ts checks it to the byte). */
const publicKey = z.string().superRefine((s, ctx) => {
  const k = parseSshPublicKey(s);
  if (typeof k === 'string') ctx.addIssue({ code: z.ZodIssueCode.custom, message: k });
});

const sshSchema = z.object({
  user: re(RE.sshUser, 'a unix user name').optional(),
  port: port.optional(),
  hostKey: re(RE.hostKey, 'an OpenSSH public key line: "<type> <base64>", like ssh-ed25519 AAAA...').optional(),
  identityFile: z.string().regex(/^(?:~\/|\/)?[A-Za-z0-9._/-]+$/, { message: 'must be a path of letters, digits, ".", "_", "-", "/"' })
    .refine((p) => !/^\/+(?:dev|proc|sys)(?:\/|$)/.test(p), { message: 'must name a key file, not a device or kernel file under /dev, /proc or /sys' }).optional(),
}).strict();

const httpSchema = z.object({
  address: nginxAddress.optional(),
  port: port.optional(),
}).strict();

/** HTTPS for apps with spec.tls: the port (the address is http.address). */
const httpsSchema = z.object({
  port: port.optional(),
}).strict();

const agentSchema = z.object({
  listen: hostPort.optional(),
  maxMessageBytes: z.number().int().min(1).max(MAX_MESSAGE_BYTES).optional(),
}).strict();

const nginxSchema = z.object({
  binary: absPath.optional(),
  workerProcesses: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).optional(),
  workerConnections: z.number().int().min(64).max(65536).optional(),
}).strict();

/**
 * The ACME account and how its DNS-01 challenges are answered: a hook run without a shell on the
 * machine that runs `edgectl certs renew` (the edges never take part: see docs/tls.md).
 */
const acmeSchema = z.object({
  directory: z.string().superRefine((s, ctx) => {
    const why = checkHttpUrl(s, { allowQuery: false });
    if (why) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `URL ${why}` });
    else if (!s.startsWith('https://')) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be an https:// URL (the ACME directory)' });
  }),
  email: z.string().regex(/^[A-Za-z0-9._%+-]{1,64}@[a-z0-9.-]{1,190}\.[a-z]{2,63}$/, { message: 'must be an e-mail address like ops@example.com' }).optional(),
  /** The account's private key, age-encrypted (certs renew creates it on first use). */
  accountKey: tlsPath.refine((p) => p.endsWith('.age'), { message: 'must name an age-encrypted file (*.age) under tls/' }),
  /** PEM CA certificates to trust for the directory's HTTPS (a private ACME server), instead of the system's. */
  directoryCa: tlsPath.refine((p) => /\.(?:pem|crt)$/.test(p), { message: 'must name a PEM file (*.pem or *.crt) under tls/' }).optional(),
  dns01: z.object({
    /** argv of the hook, run without a shell; env gives EDGECTL_ACME_ACTION (set|clear), _DOMAIN, _RECORD, _VALUE. */
    hook: z.array(z.string().min(1).max(4096).refine((a) => !/[\0\n\r]/.test(a), { message: 'must not hold NUL or line breaks' })).min(1, 'needs the hook program').max(64)
      .refine((argv) => argv.length === 0 || argv[0].startsWith('/') || argv[0].startsWith('./') || /^[A-Za-z0-9._+-]+$/.test(argv[0]), { message: 'the program must be an absolute path, a path starting with ./ (in the fleet repo) or a bare command name' })
      .refine((argv) => argv.length === 0 || !argv[0].split('/').includes('..'), { message: 'the program must not contain ".."' }),
    /** Seconds to wait after the hook set the records, for DNS to propagate. */
    propagationSeconds: z.number().int().min(0).max(3600).optional(),
    timeoutSeconds: z.number().int().min(1).max(3600).optional(),
  }).strict(),
  /** Renew when a certificate expires within this many days (default 30; --days overrides). */
  renewDays: z.number().int().min(1).max(365).optional(),
}).strict();

export const fleetSpecSchema = z.object({
  defaults: z.object({
    ssh: sshSchema.optional(),
    root: rootPath.optional(),
    http: httpSchema.optional(),
    https: httpsSchema.optional(),
    agent: agentSchema.optional(),
    nginx: nginxSchema.optional(),
  }).strict().optional(),
  /** Who may decrypt the fleet's secrets (*.age files): age X25519 public keys of operators and CI. */
  secrets: z.object({
    recipients: z.array(re(RECIPIENT_RE, 'an age X25519 public key: "age1" and 58 lowercase bech32 characters (age-keygen -y prints it)')).min(1, 'needs at least one recipient').max(100),
  }).strict().optional(),
  hub: z.object({ url: httpUrl(true) }).strict(),
  /**
   * TLS on the uplink hops (docs/tls.md, Uplink hops): every relay and core node serves /v1/forward
   * over HTTPS on this port with its hop certificate (tls/hops/<node>.pem, issued by the fleet CA
   * tls/fleet-ca.pem), and every forward is verified against that CA. hub.url must be https://.
   */
  hops: z.object({
    tls: z.object({ port: port.optional() }).strict(),
  }).strict().optional(),
  /** ACME issuance for apps with tls.acme (edgectl certs renew, on the operator's machine; docs/tls.md). */
  acme: acmeSchema.optional(),
  /** The operator's exceptions to what tenants' apps may do: only here, never in an App. */
  policy: z.object({
    allowUpstreams: z.array(hostPort).max(1000).optional(),
  }).strict().optional(),
  rollout: z.object({
    canary: z.number().int().min(0).optional(),
    batchSize: countOrPercent.optional(),
    maxFailures: countOrPercent.optional(),
  }).strict().optional(),
}).strict();

const topicName = re(RE.topic, 'a plain topic name: lowercase letters, digits, "_" and "-", at most 63');

export const tenantSpecSchema = z.object({
  displayName: re(RE.text, 'printable text of at most 200 characters without { } ; $ # quotes < > or backslashes').optional(),
  uplink: z.object({
    tokens: z.array(z.object({
      name: dnsName,
      sha256: re(RE.sha256, 'the sha256 of the token as 64 lowercase hex digits (never the token itself)'),
    }).strict()).optional(),
  }).strict().optional(),
  quota: z.object({
    requestsPerSecond: z.number().int().min(1).max(1_000_000).optional(),
    spoolMb: z.number().int().min(1).max(1_048_576).optional(),
  }).strict().optional(),
  consumers: z.array(z.object({
    name: dnsName,
    keyEnv: re(RE.envName, 'an environment variable name (A-Z, 0-9, "_") holding the key on the node'),
  }).strict()).optional(),
}).strict();

export const nodeSpecSchema = z.object({
  role: z.enum(['core', 'relay', 'edge']),
  address,
  ssh: sshSchema.optional(),
  root: rootPath.optional(),
  via: z.array(dnsName).max(8, 'at most 8 relays').optional(),
  tunnel: z.enum(['none', 'reverse']).optional(),
  /** tunnel: reverse only: the port on the last relay's loopback where the node's reverse tunnel lands. */
  tunnelPort: port.optional(),
  /** tunnel: reverse only: the public key the node's agent opens its tunnel with (its private part is born on the node). */
  tunnelKey: publicKey.optional(),
  capacity: z.object({
    cpu: z.number().positive().max(1024).optional(),
    memoryMb: z.number().int().positive().max(16_777_216).optional(),
  }).strict().optional(),
  kong: z.boolean().optional(),
  http: httpSchema.optional(),
  https: httpsSchema.optional(),
  agent: agentSchema.optional(),
  nginx: nginxSchema.optional(),
  /** The sha256 of the credential this node presents to its parent hop's /v1/forward (bootstrap writes it; never the credential). */
  credential: z.object({
    sha256: re(RE.sha256, 'the sha256 of the node\'s credential as 64 lowercase hex digits (never the credential itself)'),
  }).strict().optional(),
}).strict();

const topicSchema = z.union([
  topicName,
  z.object({
    name: topicName,
    whenFull: z.enum(['reject', 'drop-oldest']).optional(),
    ttl: duration.optional(),
  }).strict(),
]);

export const appSpecSchema = z.object({
  tenant: dnsName,
  type: z.enum(['static', 'proxy', 'fastcgi', 'api']),
  domains: z.array(domain).min(1, 'needs at least one domain'),
  upstream: z.object({
    urls: z.array(httpUrl()).min(1, 'needs at least one URL'),
    keepalive: z.number().int().min(0).max(1024).optional(),
    connectTimeout: duration.optional(),
    readTimeout: duration.optional(),
  }).strict().optional(),
  cache: z.object({
    ttl: duration.optional(),
    methods: z.array(z.enum(['GET', 'HEAD', 'POST'])).optional(),
    staleOnError: z.boolean().optional(),
    maxBodyKb: z.number().int().min(1).max(1024).optional(),
  }).strict().optional(),
  static: z.object({ path: relPath, index: fileName.optional() }).strict().optional(),
  fastcgi: z.object({
    path: relPath.optional(),
    index: fileName.optional(),
    /** argv, no shell: the agent runs it with the listening socket as fd 0 (fastcgi-command.ts). */
    command: fastcgiCommand.optional(),
    processes: z.number({ invalid_type_error: 'must be a number' }).int('must be an integer').min(1, `must be between 1 and ${FASTCGI_MAX_PROCESSES}`).max(FASTCGI_MAX_PROCESSES, `must be between 1 and ${FASTCGI_MAX_PROCESSES}`).optional(),
  }).strict().optional(),
  routes: z.array(z.object({
    paths: z.array(re(RE.httpPath, 'an absolute URL path of letters, digits and . _ ~ / -')).min(1),
    methods: z.array(re(RE.httpMethod, 'an HTTP method in capitals')).optional(),
    stripPath: z.boolean().optional(),
  }).strict()).optional(),
  healthCheck: z.object({ path: re(RE.httpPath, 'an absolute URL path').optional(), expectStatus: z.number().int().min(100).max(599).optional() }).strict().optional(),
  placement: z.object({
    selector: labels.optional(),
    replicas: z.number().int().min(1).max(100_000).optional(),
    spreadBy: re(RE.labelKey, 'a label key').optional(),
    nodes: z.array(dnsName).optional(),
  }).strict().optional(),
  uplink: z.object({ topics: z.array(topicSchema).min(1) }).strict().optional(),
  /**
   * HTTPS for the app's domains with a certificate (a PEM chain) and its age-encrypted key, both
   * under tls/: given, or with `acme: true` issued there by `edgectl certs renew` (until then the
   * app is served over HTTP only).
   */
  tls: z.object({
    acme: z.boolean().optional(),
    certificate: tlsPath.refine((p) => /\.(?:pem|crt)$/.test(p), { message: 'must name a PEM file (*.pem or *.crt) under tls/' }),
    key: tlsPath.refine((p) => p.endsWith('.age'), { message: 'must name an age-encrypted file (*.age) under tls/: a private key is never committed in plaintext' }),
    redirect: z.boolean().optional(),
    hsts: z.union([z.literal(false), z.object({ maxAge: z.number().int().min(0).max(63_072_000), includeSubDomains: z.boolean().optional() }).strict()]).optional(),
  }).strict().optional(),
}).strict();

export const SPEC_SCHEMAS = {
  Fleet: fleetSpecSchema,
  Tenant: tenantSpecSchema,
  Node: nodeSpecSchema,
  App: appSpecSchema,
} as const;

export type Kind = keyof typeof SPEC_SCHEMAS;
export const KINDS = Object.keys(SPEC_SCHEMAS) as Kind[];

export type FleetSpec = z.infer<typeof fleetSpecSchema>;
export type TenantSpec = z.infer<typeof tenantSpecSchema>;
export type NodeSpec = z.infer<typeof nodeSpecSchema>;
export type AppSpec = z.infer<typeof appSpecSchema>;
export type Metadata = z.infer<typeof metadataSchema>;
