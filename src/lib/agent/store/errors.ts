/** Why the spool refused a write. The HTTP layer maps each to a status with Retry-After. */
export class SpoolUnavailableError extends Error {
  readonly kind = 'unavailable';
}

export class SpoolFullError extends Error {
  readonly kind = 'full';
}
