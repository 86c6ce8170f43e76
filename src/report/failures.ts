/**
 * Expected failures are values, discriminated by a stable kebab-case `reason` that doubles as an
 * error code in NDJSON output. Only bugs throw; the CLI converts them in one place.
 */
export interface Failure {
  reason: string;
  /** One line naming the problem and, where there is one, the fix. */
  message: string;
}

export type Result<T, F extends Failure = Failure> = { ok: true; value: T } | { ok: false; failure: F };

/**
 * Bad usage or configuration, detected before any work starts: the CLI prints the message on one
 * line and exits 2 without side effects.
 */
export class UsageError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}
