/**
 * The failure vocabulary, in one place. Expected failures are values, `{ reason, message }`,
 * discriminated by a stable kebab-case `reason` that doubles as an error code in NDJSON output;
 * only bugs throw, and the CLI converts them in one place (cli/main.ts). Each layer has its own
 * union of reasons; a layer that wraps another takes its reasons in (a target fails with an exec
 * reason, which may come from Modal; publishing fails with a store reason).
 *
 * | layer   | what failed                                   | reported as                         | exit |
 * |---------|-----------------------------------------------|-------------------------------------|------|
 * | usage   | the command line or configuration, before any work | `error: ...` (UsageError)      | 2    |
 * | target  | one target of a build                         | its `target` event                  | 1    |
 * | exec    | an executor's action (here or remote)         | the target's reason                 | 1    |
 * | remote  | Modal, its client or the runner on it         | the action's reason                 | 1    |
 * | store   | a store operation (stores/store.ts)           | the publishing step's reason        | 1    |
 * | publish | stage, promote, rollback, gc, the registry    | `publish` events, `error: ... failed` | 1  |
 *
 * Views take a layer and must handle every one (see {@link exitCode} and {@link unreachable}):
 * a new layer without a view does not compile.
 */

/** Why a remote action or call failed: Modal, its Python client (modal_app/client.py), the runner (runner_core.py), or the transport. */
export const REMOTE_REASONS = [
  /** Modal refused the token. */
  'modal-auth',
  /** No Modal token is configured (`modal token new`). */
  'modal-auth-missing',
  /** The deployed app or one of its functions does not exist (`modal deploy`). */
  'modal-app-missing',
  /** A Modal secret an action declares (Target.secretEnv) does not exist, or did not reach its container. */
  'modal-secret-missing',
  /** A Modal quota or rate limit was reached. */
  'modal-quota',
  /** Modal cannot be reached; a call may still be running (a rerun reattaches). */
  'modal-unreachable',
  /** modal_app/client.py gave no answer it could parse. */
  'modal-client-failed',
  /** A `modal volume` transfer failed. */
  'modal-volume-failed',
  /** The function hit its timeout. */
  'remote-timeout',
  /** The container was lost (preempted or crashed) after its retries. */
  'remote-preempted',
  /** Any other remote failure, reported with its exception. */
  'remote-error',
  /** An output or input lives on another transport than this build's. */
  'remote-elsewhere',
  /** The call's result has expired on Modal. */
  'call-expired',
  /** The call is unknown to the transport, or never finished. */
  'call-lost',
  /** The call was stopped by `./build.ts cancel` (a rerun dispatches its actions again). */
  'call-cancelled',
  /** An input blob is not on the volume (forgotten here; a rerun uploads it). */
  'input-missing',
  /** The command exited non-zero on the remote machine. */
  'command-failed',
  /** The command succeeded but did not write a declared output. */
  'missing-output',
  /** A content digest (SQLite, HDF5) of an output could not be computed (here or on the remote machine). */
  'content-digest',
  /** The runner could not check out the pinned tree. */
  'git-failed',
  /** The checkout on the volume is not at the pinned SHA, or is modified. */
  'sha-mismatch',
  /** The pinned commit is not in the volume's mirror and no bundle came with the call. */
  'sha-missing',
  /** The runner was sent a malformed request. */
  'bad-request',
  /** Building the Python environment failed on the remote machine. */
  'env-failed',
  /** The runner speaks another protocol version than this build. */
  'protocol-mismatch',
] as const;

export type RemoteReason = (typeof REMOTE_REASONS)[number];

/** Why an executor's action failed; a remote executor passes on Modal's reasons. */
export type ExecReason =
  | RemoteReason
  /** The build was interrupted while the action waited or ran. */
  | 'cancelled'
  /** BUILD_DB=0: the registered database could not be downloaded. */
  | 'download-failed'
  /** The Modal executor was given no portable description of the action. */
  | 'modal-unsupported'
  /** The target asks for a resource class that has no Modal function. */
  | 'unknown-resource-class'
  /** Remote-resident outputs could not be downloaded for a local action. */
  | 'fetch-failed';

/** Why a target of a build failed: its action's reason, or the build's own. */
export type TargetReason =
  | ExecReason
  /** A bug: the target's build threw (the message says what). */
  | 'internal-error'
  /** The target's executor is not configured in this build. */
  | 'no-executor'
  /** A local action needs an output left on the Modal volume, and no executor can fetch it. */
  | 'remote-output'
  /** Another build held the action's lock for longer than the wait's bound. */
  | 'lock-wait-timeout'
  /** The package index does not serve a version the lock pins (PY_SUBSTITUTE substitutes it explicitly). */
  | 'unserved-pin'
  /** The pins (with their substitutions) cannot be installed together. */
  | 'conflicting-pins'
  /** A goal named an item the fan-out's list lacks (the run also ends with a usage error, exit 2). */
  | 'unknown-target'
  /** The fan-out's list could not be read or parsed. */
  | 'bad-fanout-list'
  | EnvironmentReason;

/** The machine, not the build, is in the way (report/environment-failure.ts). */
export type EnvironmentReason =
  /** The disk or quota is full (ENOSPC, EDQUOT). */
  | 'no-space'
  /** The directory is on a read-only file system (EROFS). */
  | 'read-only'
  /** The directory is not writable (EACCES, EPERM). */
  | 'not-writable';

/**
 * Why a target did not run (a `skipped` target event). These are sentences rather than codes,
 * as the views print them after the target's name.
 */
export type SkipReason = 'an upstream target failed' | 'stopped after a failure' | 'cancelled';

/** Stable failure codes of the store layer (stores/store.ts). */
export type StoreReason =
  /** A conditional write lost: the document (HF: the branch) changed since it was read. */
  | 'conflict'
  /** The path (or the pinned version of it) does not exist. */
  | 'not-found'
  /** An append-only batch would have replaced existing different content; nothing was written. */
  | 'append-only-violation'
  /** A credential needed for this action is not configured. */
  | 'auth-missing'
  /** The backend refused the credential (401/403). */
  | 'auth-rejected'
  /** 429/5xx/dropped connection, still failing after the retry budget. */
  | 'transient'
  /** A request exceeded its time limit, still failing after the retry budget. */
  | 'timeout'
  /** Bytes read back or sent do not match their digest. */
  | 'checksum-mismatch'
  /** A store path that is absolute, contains `..`, empty segments or control characters. */
  | 'invalid-path'
  /** Store configuration that cannot work (bad repo id, bad token format...). */
  | 'config-invalid'
  /** A local file could not be read or written. */
  | 'io-error'
  /** Any other refusal by the backend (4xx), reported with its status. */
  | 'remote-error';

/** Why a publishing operation (stage, promote, rollback, gc, the registry) failed or refused; a store's reason passes through. */
export type PublishReason =
  | StoreReason
  /** The run is not in this cache, or its meta.json is corrupt. */
  | 'run-not-found'
  /** The run did not complete; only a completed run is staged or promoted. */
  | 'run-not-completed'
  /** The run lacks files a release needs. */
  | 'run-incomplete'
  /** The run's area files do not match the manifest its own Python wrote. */
  | 'run-manifest-mismatch'
  /** Outputs the run left on the Modal volume could not be brought back for staging. */
  | 'remote-outputs-unavailable'
  /** The run was never staged (or its staging failed). */
  | 'not-staged'
  /** The run was staged to another release store. */
  | 'staged-elsewhere'
  /** The staged files no longer match what was staged. */
  | 'staging-mismatch'
  /** The staged release does not hold every area file. */
  | 'area-count'
  /** A staging or release manifest is not valid (callers say which, with their own reason). */
  | 'manifest-corrupt'
  /** The run was promoted already. */
  | 'already-promoted'
  /** The version is registered already. */
  | 'version-exists'
  /** The version is not in the registry. */
  | 'version-not-found'
  /** The version (or its files) was not published to the configured stores. */
  | 'not-published-here'
  /** The registry (or a release manifest) is not valid: fixed by hand, never replaced. */
  | 'registry-corrupt'
  /** The registry kept changing under a conditional write. */
  | 'registry-contended'
  /** Another publish holds the lease. */
  | 'publish-in-progress'
  /** A run file's bytes differ from the digest the build recorded for it (bit rot, an edit). */
  | 'output-digest-mismatch'
  /** A file to publish has no digest in the run's record. */
  | 'output-not-recorded'
  /** A quality gate (MAX_MEAN_ERROR, MAX_REGRESSION) refused the run; FORCE=1 overrides. */
  | 'quality-gate'
  /** The review page could not be written. */
  | 'report-failed'
  /** AGAINST= names a version the registry does not hold. */
  | 'unknown-version'
  /** `--detach` with EXECUTOR=modal needs the CLI bundle (dist/) or an npm package it ships. */
  | 'no-bundle'
  /** `--detach` with EXECUTOR=modal was given something the coordinator on Modal cannot have (BUILD_TASKS, STORE_DIR). */
  | 'not-remote';

/**
 * Bad usage or configuration, found before any work starts: exit 2, one line, no side effects.
 * A check that reaches into a lower layer before any work keeps that layer's reason: opening a
 * store (`auth-missing`, `config-invalid`), reading the registry for BUILD_DB=0
 * (`registry-corrupt`, a store reason), asking Modal (a remote reason).
 */
export type UsageReason =
  | StoreReason
  | RemoteReason
  | 'registry-corrupt'
  /** Nothing to do: no command and no target. */
  | 'no-command'
  /** The first word names no command (and no target). */
  | 'unknown-command'
  /** An option the CLI does not have. */
  | 'unknown-flag'
  /** An option given a value it does not take, or without the one it needs. */
  | 'bad-flag'
  /** An option the command does not take. */
  | 'flag-not-taken'
  /** A word with `=` that is not NAME=value. */
  | 'bad-assignment'
  /** A command given an argument it does not take. */
  | 'unexpected-argument'
  /** `cache` with a subcommand it does not have. */
  | 'bad-cache-command'
  /** `explain` without exactly one target. */
  | 'bad-explain'
  /** `fetch` without a target. */
  | 'missing-target'
  /** A command that needs RUN_ID=. */
  | 'missing-run-id'
  /** `logs RUN_ID=... <target>` for a target that wrote no log in that run. */
  | 'no-target-log'
  /** `rollback` without VERSION= and NEW_VERSION=. */
  | 'missing-version'
  /** `promote` or `rollback` without a terminal to confirm on, and no --yes. */
  | 'confirmation-needed'
  /** A variable the pipeline does not declare. */
  | 'unknown-variable'
  /** A variable's value that its declaration rejects. */
  | 'bad-variable'
  /** An environment variable's value that cli/settings.ts rejects. */
  | 'bad-setting'
  /** BUILD_TASKS names no valid pipeline declaration. */
  | 'bad-tasks'
  /** A target name the pipeline does not declare (or a run does not hold). */
  | 'unknown-target'
  /** A dependency cycle in the pipeline declaration. */
  | 'dependency-cycle'
  /** A dependency on a target the declaration does not have. */
  | 'unknown-dependency'
  /** Two targets of the declaration share a name. */
  | 'duplicate-target'
  /** REPO= names no directory. */
  | 'repo-not-found'
  /** REPO= is not a git work tree. */
  | 'repo-not-git'
  /** BRANCH= is not a valid ref name. */
  | 'bad-ref'
  /** BRANCH= resolves to no commit. */
  | 'ref-not-found'
  /** The checkout has uncommitted changes and ALLOW_DIRTY=1 was not given. */
  | 'dirty-tree'
  /** RUN_ID= (or BUILD_RUN_ID) is not a run id. */
  | 'bad-run-id'
  /** The run does not exist, or its meta.json is corrupt. */
  | 'bad-run'
  /** The target was never built (in that run, or at all). */
  | 'not-built'
  /** Outputs live on a transport this build cannot reach. */
  | 'unknown-remote'
  /** `fetch` got a blob that does not verify. */
  | 'fetch-failed'
  /** The publishing configuration cannot work (two release stores, a bad endpoint). */
  | 'publish-config'
  /** BUILD_DB=0 with no current registered version. */
  | 'no-registered-version'
  /** BUILD_DB=0 when the current version has no pinned database on the configured stores. */
  | 'not-published-here'
  /** A target asks for a resource class that has no Modal function. */
  | 'unknown-resource-class'
  /** No Python with the Modal client (or, for the stand-in, xxhash). */
  | 'modal-client-missing'
  /** The pinned project's requires-python cannot be read. */
  | 'bad-requires-python'
  /** PY_SUBSTITUTE names a package the lock does not pin, or is malformed. */
  | 'bad-substitution'
  /** No interpreter on this machine satisfies the project's requires-python. */
  | 'python-missing'
  /** `check` (or a build's preflight) found the plan does not match the pinned tree. */
  | 'plan-check'
  /** `-n --detach`: a dry run has nothing to detach. */
  | 'dry-run-detached'
  /** NODE_EXTRA_CA_CERTS names a file that cannot be read or holds no certificate. */
  | 'bad-ca-certificates'
  /** A target declares a secret (Target.secretEnv) that is not set. */
  | 'missing-secret'
  /** AGAINST= names a version the registry does not hold. */
  | 'unknown-version'
  /** `--detach` with EXECUTOR=modal needs the CLI bundle (dist/) or an npm package it ships. */
  | 'no-bundle'
  /** `--detach` with EXECUTOR=modal was given something the coordinator on Modal cannot have (BUILD_TASKS, STORE_DIR). */
  | 'not-remote'
  /** `pipeline EXECUTOR=modal RUN_ID=... --detach` names a run that ended, runs, or builds another SHA. */
  | 'not-resumable';

/** Every layer's reasons. */
export interface Reasons {
  usage: UsageReason;
  target: TargetReason;
  exec: ExecReason;
  remote: RemoteReason;
  store: StoreReason;
  publish: PublishReason;
}

export type Layer = keyof Reasons;

/** Any reason of any layer. */
export type Reason = Reasons[Layer];

/** An expected failure: a reason (of one layer's union) and one line naming the problem and, where there is one, the fix. */
export interface Failure<R extends Reason = Reason> {
  reason: R;
  /** One line naming the problem and, where there is one, the fix. */
  message: string;
}

/** What an operation that can fail as expected returns. */
export type Result<T, F extends Failure = Failure> = { ok: true; value: T } | { ok: false; failure: F };

/** A failure value of a Result. */
export const failed = <F extends Failure>(failure: F): { ok: false; failure: F } => ({ ok: false, failure });

/**
 * Bad usage or configuration, detected before any work starts: the CLI prints the message on one
 * line and exits 2 without side effects.
 */
export class UsageError extends Error {
  readonly reason: UsageReason;
  constructor(reason: UsageReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** The exit code of the CLI when a failure of `layer` ends a command (README, "Exit codes"). */
export function exitCode(layer: Layer): 1 | 2 {
  switch (layer) {
    case 'usage':
      return 2;
    // A target failed: its own reason, its action's, or Modal's.
    case 'target':
    case 'exec':
    case 'remote':
      return 1;
    // Publishing failed or refused: the run itself stays as it was.
    case 'store':
    case 'publish':
      return 1;
    default:
      return unreachable(layer);
  }
}

/** The `never` check that makes a switch over a union exhaustive: a case left out does not compile. */
export function unreachable(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
