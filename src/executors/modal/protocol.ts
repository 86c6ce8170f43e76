import { z } from 'zod';
import { REMOTE_REASONS } from '../../report/failures.ts';

/**
 * What crosses the process boundary between the orchestrator and the runner
 * (modal_app/runner_core.py), on Modal or in the stand-in: the request, the result, and the
 * function table. The runner refuses a request of another PROTOCOL (redeploy the app).
 */
export const PROTOCOL = 3;

/** Where the runner keeps everything on the volume (see runner_core.py for the layout). */
export const VOLUME_ROOT = 'build';
/** Where the shared run state lives on the volume: a cache dir's layout (remote-state.ts). */
export const STATE_ROOT = `${VOLUME_ROOT}/state`;

export const volumePaths = {
  blob: (digest: string) => `${VOLUME_ROOT}/cas/${digest.slice(0, 2)}/${digest}`,
  shard: (prefix: string) => `${VOLUME_ROOT}/cas/${prefix}`,
  bundle: (sha: string) => `${VOLUME_ROOT}/git/bundles/${sha}.bundle`,
  bundles: `${VOLUME_ROOT}/git/bundles`,
  shas: `${VOLUME_ROOT}/git/shas`,
  log: (key: string) => `${VOLUME_ROOT}/logs/${key}.log`,
};

/**
 * Resource class -> Modal function of modal_app/runner.py. Batches of weighted actions (the area
 * fan-out) go to `run_areas`; everything else runs alone on the function of its class.
 */
export const FUNCTIONS: Readonly<Record<string, string>> = {
  cpu: 'run_cpu',
  data: 'run_data',
  T4: 'run_t4',
  A10: 'run_a10',
  'A100-40GB': 'run_a100_40gb',
  'A100-80GB': 'run_a100_80gb',
  H100: 'run_h100',
};
export const BATCH_FUNCTION = 'run_areas';
/** The run's coordinator (`--detach` with EXECUTOR=modal): this build system's CLI, run on Modal. */
export const COORDINATOR_FUNCTION = 'run_coordinator';

/** Classes whose function has no GPU: `cpu` (the package) and `data` (the data build). */
const CPU_CLASSES: ReadonlySet<string> = new Set(['cpu', 'data']);
export const isGpuClass = (resourceClass: string): boolean => !CPU_CLASSES.has(resourceClass);

/** One action as the runner sees it: placeholders unresolved, inputs by digest. */
export interface RemoteAction {
  key: string;
  command: string[];
  /** Declared and fixed environment (PYTHONHASHSEED...); machine variables come from the runner's side. */
  env: Record<string, string>;
  /** Run-relative path -> digest. */
  inputs: Record<string, string>;
  outputs: string[];
  /**
   * Secret variables (names only) the runner gives this action from its container's environment,
   * where the call's Modal secrets put them (secrets.ts); no other action of the call gets them.
   */
  secretEnv?: string[];
  /**
   * Outputs whose content digest the runner computes beside their byte digest (Target.contentDigest),
   * as a local build does, so downstream keys do not depend on the executor; `hdf5` runs the
   * script the orchestrator ships among the inputs at HDF5_DIGEST_INPUT (executor.ts).
   */
  contentDigest?: Record<string, 'sqlite' | 'hdf5'>;
}

export interface RunRequest {
  protocol: number;
  sha: string;
  /** The project directory inside the repository ('.' or 'examples/us-data'). */
  projectDir: string;
  pythonEnv: { key: string; command: string[] } | null;
  /** Epoch seconds at spawn: the runner's start minus this is the queue time. */
  spawnedAt: number;
  actions: RemoteAction[];
  /**
   * Actions of the call that run together as one process (a target's batch command over their
   * items, e.g. one area worker for many areas); each still gets its own result. If the command
   * fails, the runner runs those actions one by one. Actions in no batch run alone.
   */
  batches?: { command: string[]; keys: string[] }[];
}

/**
 * What `run_coordinator` is given (modal_app/coordinator_core.py): the run the operator allocated
 * and pinned, the build system by digest, and the command line to run. Its result is not waited
 * for by anyone: the run's meta.json on the volume is the outcome.
 */
export interface CoordinatorRequest {
  protocol: number;
  kind: 'coordinator';
  runId: string;
  sha: string;
  dirty: boolean;
  /** Digest of the build system's files (buildsys.ts); the coordinator refuses other code. */
  buildsys: string;
  /** The CLI's arguments (`pipeline ...` without --detach and REPO=; the coordinator adds REPO=<its checkout>). */
  args: string[];
  /** Non-secret settings the operator had (HF_REPO, GCS_BUCKET...): the coordinator's CLI reads them from its environment. */
  env: Record<string, string>;
  spawnedAt: number;
}

/**
 * A failure reason as the client, the runner or the stand-in sends it (report/failures.ts lists
 * them); one this build does not know (a newer runner) is kept as `remote-error`, its message intact.
 */
export const remoteReasonSchema = z.enum(REMOTE_REASONS).catch('remote-error');

/** A failure the client reports for a whole operation (`{"error": ...}`). */
export const remoteFailureSchema = z.object({ reason: remoteReasonSchema, message: z.string() });

export const remoteResultSchema = z.object({
  key: z.string(),
  ok: z.boolean(),
  reason: remoteReasonSchema.optional(),
  message: z.string().optional(),
  exitCode: z.number().nullable().optional(),
  outputs: z.record(z.string(), z.object({ digest: z.string().regex(/^[0-9a-f]{32}$/), size: z.number().int().nonnegative(), content: z.string().regex(/^[0-9a-f]{32}$/).optional() })),
  startedAt: z.number(),
  runSeconds: z.number(),
  logTail: z.string(),
});
export type RemoteResult = z.infer<typeof remoteResultSchema>;

export const runResponseSchema = z.object({
  protocol: z.number(),
  containerStartedAt: z.number(),
  setupSeconds: z.number(),
  results: z.array(remoteResultSchema),
});
export type RunResponse = z.infer<typeof runResponseSchema>;

/** What waiting on a call yields. `unknown`: the transport has no such call (expired, or another volume). */
export const callStateSchema = z.union([
  z.object({ state: z.literal('running') }),
  z.object({ state: z.literal('done'), value: runResponseSchema }),
  z.object({ state: z.literal('failed'), reason: remoteReasonSchema, message: z.string() }),
  z.object({ state: z.literal('unknown') }),
]);
export type CallState = z.infer<typeof callStateSchema>;
