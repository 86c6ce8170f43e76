import type { OutputRecord } from '../cache.ts';
import type { Failure } from '../errors.ts';
import type { ActionKey } from '../fingerprint.ts';

/**
 * An executor runs one action, here or elsewhere; the scheduler decides what and when.
 * Whatever runs the action, the key and the outputs are the same.
 */
export interface ActionSpec {
  key: ActionKey;
  target: string;
  /** argv with placeholders already resolved for this machine. */
  argv: string[];
  /** Working directory: the project directory inside the run's pinned tree. */
  cwd: string;
  env: Record<string, string>;
  /** Absolute paths the command must produce. */
  outputs: string[];
  /** Where stdout and stderr go, together (ninja keeps each command's output together). */
  logFile: string;
  /** Resource class (cpu, T4, A100-80GB...) for remote executors. */
  resourceClass: string;
  signal: AbortSignal;
  /** Records remote bookkeeping as soon as it exists (e.g. a call id at spawn), so a killed orchestrator can reattach. */
  report: (remote: Record<string, unknown>) => void;
  /** Variables of the run (the Modal executor needs NUM_WORKERS; nothing here enters the key). */
  vars: Readonly<Record<string, string>>;
}

export interface ExecFailure extends Failure {
  exitCode?: number;
  /** The last lines of the action's log, shown with the failure. */
  logTail: string;
}

export type ExecOutcome =
  | {
      ok: true;
      durationMs: number;
      /** Outputs left remotely (not in the local run dir); the scheduler records them as remote-resident. */
      remoteOutputs?: Record<string, OutputRecord>;
      remote?: Record<string, unknown>;
    }
  | { ok: false; failure: ExecFailure; remote?: Record<string, unknown> };

export interface Executor {
  readonly kind: string;
  /**
   * How many actions this executor may run at once. Local actions share `-j`; a remote executor
   * takes many at once (so it can batch them) without using local slots.
   */
  readonly concurrency?: number;
  execute(spec: ActionSpec): Promise<ExecOutcome>;
}
