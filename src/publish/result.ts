import type { Failure, PublishReason, Result, StoreReason } from '../report/failures.ts';
import type { Event } from '../report/events.ts';
import { scrubSecrets, type StoreFailure } from '../stores/store.ts';

/**
 * Values shared by the publishing steps (stage, promote, rollback, gc): their failures and the
 * honest account of what a multi-step operation did and did not do (the real promote printed a
 * warning per failed phase and still said "promoted", W5).
 */

/** What one step of a publishing operation ended up doing. */
export interface StepReport {
  /** Stable step name: `production`, `gcs`, `registry`, `registry-mirror`, `mark-promoted`... */
  step: string;
  status: 'done' | 'failed' | 'not-done';
  /** One line: what, where, how much. */
  detail: string;
}

/** A publishing failure, with the steps' account when it happened mid-way. */
export interface PublishFailure extends Failure<PublishReason> {
  /** The step that failed, when the operation had started writing. */
  step?: string;
  steps?: StepReport[];
}

/** Result of a publishing operation. */
export type PublishResult<T> = Result<T, PublishFailure>;

/** Builds a publishing failure value. */
export const publishFail = <R extends PublishReason>(
  reason: R,
  message: string,
  extra: Omit<PublishFailure, 'reason' | 'message'> = {},
): { ok: false; failure: PublishFailure & { reason: R } } => ({ ok: false, failure: { reason, message, ...extra } });

/** A store failure as a publishing failure (same reason code; message already scrubbed by the store). */
export const fromStore = (failure: StoreFailure, context: string): Failure<StoreReason> => ({ reason: failure.reason, message: `${context}: ${failure.message}` });

/** Emits publishing events; every message and detail passes through the secret scrubber. */
export type PublishEmit = (step: string, message: string, data?: Record<string, unknown>) => void;

/** Turns publish steps into `publish` events, secrets scrubbed. */
export function publishEmitter(emit: (event: Event) => void, secrets: readonly string[]): PublishEmit {
  return (step, message, data) => {
    const event: Event = { event: 'publish', step, message: scrubSecrets(message, secrets), ...(data && { data: JSON.parse(scrubSecrets(JSON.stringify(data), secrets)) as Record<string, unknown> }) };
    emit(event);
  };
}

/** `12.3 MB`: sizes for humans (decimal units, like the Hub shows). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Reports large transfers at every quarter, so a long upload shows progress without flooding logs. */
export function progressReporter(emit: PublishEmit, minBytes = 16 * 1024 * 1024): (p: { path: string; bytesDone: number; bytesTotal: number }) => void {
  const lastQuarter = new Map<string, number>();
  return ({ path, bytesDone, bytesTotal }) => {
    if (bytesTotal < minBytes) return;
    const quarter = Math.floor((bytesDone / bytesTotal) * 4);
    if (quarter <= (lastQuarter.get(path) ?? 0)) return;
    lastQuarter.set(path, quarter);
    emit('progress', `  ${path}: ${formatBytes(bytesDone)} / ${formatBytes(bytesTotal)}`, { path, bytesDone, bytesTotal });
  };
}
