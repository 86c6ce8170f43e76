import type { OutputRecord } from '../caching/cache.ts';
import type { ExecReason, Failure } from '../report/failures.ts';
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
  /** The action described independently of this machine, for executors that run it elsewhere. */
  portable?: PortableAction;
}

/**
 * What a remote executor needs beyond the resolved argv: the command with its placeholders still
 * unresolved (they are resolved on the remote side), the upstream outputs it reads, and the
 * Python environment its `{python}` names.
 */
/** Where src/python-env/hdf5_digest.py travels among a remote action's inputs (modal_app/runner_core.py HDF5_DIGEST_SCRIPT). */
export const HDF5_DIGEST_INPUT = '.adapters/hdf5_digest.py';

export interface PortableAction {
  /** The fingerprinted command: `{run}`, `{python}`, `{checkpoint}`, `{resume-from:...}` unresolved. */
  command: string[];
  /** Every upstream output the action may read: run-relative path -> record (remote-resident or local). */
  inputs: Record<string, OutputRecord>;
  /** The outputs, relative to the run directory. */
  outputs: string[];
  /** Outputs whose content digest the remote side computes too (Target.contentDigest); `hdf5` ships its script among the inputs. */
  contentDigest?: Record<string, 'sqlite' | 'hdf5'>;
  /** The names (never the values) of the target's secret variables: on Modal they come from Modal secrets. */
  secretEnv?: string[];
  /** The environment target `{python}` comes from: its key and its command (`{out}` unresolved). */
  pythonEnv?: { key: string; command: string[] };
  /** Relative cost from the target's resources, for batching (the area fan-out). */
  weight?: number;
  /** The target's batch declaration: actions of one group in one call run as `command(items)`, one process. */
  batch?: { group: string; item: unknown; command: (items: unknown[]) => string[] };
}

export interface ExecFailure extends Failure<ExecReason> {
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
  /** Optional: get ready to run actions in this environment soon (e.g. start a process launcher). */
  warm?(env: Record<string, string>): void;
  /**
   * Brings remote-resident outputs into the local content-addressed store (cache/cas), so that a
   * local action (or `fetch`) can use them. Executors whose outputs are always local omit it.
   */
  materialise?(records: OutputRecord[]): Promise<Failure<ExecReason> | null>;
}
