/** The mode of a secret file on a node: readable by nginx's master (root, or the node's user) only. */
export const PRIVATE_MODE = 0o600;

/**
 * A bundle file that is a secret: never diffed, never read back from a node for a diff, shown
 * only as redacted with its digest. By mode, not by name, so no path can slip out of it.
 */
export const isSecretFile = (f: { mode: number }) => f.mode === PRIVATE_MODE;

/**
 * A certificate chain or key in a bundle (render/tls.ts): PEM that nginx reads as a file
 * (ssl_certificate), never as config, so the nginx guard does not parse it.
 */
export const isTlsFilePath = (p: string) => /^nginx\/tls\/[a-z0-9-]+\.[a-z0-9-]+\/(?:chain|key)\.pem$/.test(p);
