/**
 * Sink specs may carry a password (postgres://user:secret@host/db). What the hub prints or logs
 * about one goes through these: the credentials are cut by their position in the URL, so even a
 * spec that does not parse as a URL never shows what stands before its '@'.
 */
export function redactSpec(spec: string): string {
  const scheme = spec.indexOf('://');
  if (scheme === -1) return spec;
  const rest = spec.slice(scheme + 3);
  // The last '@' anywhere: a password may hold an unencoded '/', '?' or '@'. An '@' in the query
  // only makes this hide more than it must.
  const at = rest.lastIndexOf('@');
  if (at === -1) return spec;
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon === -1) return spec;
  return `${spec.slice(0, scheme + 3)}${userinfo.slice(0, colon)}:***${rest.slice(at)}`;
}

/** An error text with every occurrence of the secrets replaced (defence in depth: drivers' messages should not hold them). */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join('***');
  return out;
}
