/**
 * Secrets are redacted by where they sit in Kong's structure (entity kind + field path), never
 * by matching their text: a key that happens to look harmless is still a key.
 */
const SECRET_FIELDS: Record<string, string[]> = {
  keyauth_credentials: ['key'],
  basicauth_credentials: ['password'],
  hmacauth_credentials: ['secret'],
  jwt_secrets: ['secret'],
  oauth2_credentials: ['client_secret'],
  certificates: ['key', 'key_alt'],
  vaults: ['config'],
};

/** Plugin config fields that hold secrets in Kong's bundled plugins. */
const SECRET_PLUGIN_CONFIG = ['secret', 'client_secret', 'password', 'api_key', 'token', 'private_key', 'session_secret', 'redis_password', 'aws_secret', 'aws_key'];

export const REDACTED = '(redacted)';

export function isSecretField(kind: string, field: string): boolean {
  if (SECRET_FIELDS[kind]?.some((f) => field === f || field.startsWith(f + '.'))) return true;
  if (kind === 'plugins' && field.startsWith('config.')) {
    const leaf = field.split('.').pop()!;
    return SECRET_PLUGIN_CONFIG.includes(leaf) || field.split('.').some((s) => SECRET_PLUGIN_CONFIG.includes(s));
  }
  return false;
}
