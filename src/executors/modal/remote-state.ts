import { VOLUME_ROOT } from './protocol.ts';

/**
 * Where a run that lives on the Modal volume keeps everything, as volume paths (relative to the
 * volume root, as ModalTransport list/put/get take them). The coordinator runs the CLI with
 * BUILD_CACHE_DIR = `<mount>/build/state`, so its whole cache layout (README "The run layout")
 * is under `remoteState.root`: run records, logs, the action cache, blobs, the call journal.
 * The operator writes `meta(runId)` and `coordinator(runId)` at `--detach`; every other machine
 * reads them (and the logs) through the transport. The Python side (modal_app/coordinator_core.py)
 * uses the same names.
 */
export const STATE_ROOT = `${VOLUME_ROOT}/state`;

export const remoteState = {
  /** BUILD_CACHE_DIR of every coordinator. */
  root: STATE_ROOT,
  /** One directory per run id (state/runs/<run id>). */
  runs: `${STATE_ROOT}/runs`,
  run: (runId: string) => `${STATE_ROOT}/runs/${runId}`,
  meta: (runId: string) => `${STATE_ROOT}/runs/${runId}/meta.json`,
  /** The coordinator's own output (its CLI's plain output, every attempt appended). */
  runLog: (runId: string) => `${STATE_ROOT}/runs/${runId}/run.log`,
  /** One log per action, named as in a local run (cli/logs-command.ts targetLogName). */
  logs: (runId: string) => `${STATE_ROOT}/runs/${runId}/logs`,
  /** Which call coordinates the run: {@link CoordinatorRecord}, written by the operator at `--detach`. */
  coordinator: (runId: string) => `${STATE_ROOT}/runs/${runId}/coordinator.json`,
  /** The coordinators' call journal (journal.ts under BUILD_CACHE_DIR): in-flight action calls by action key. */
  journal: `${STATE_ROOT}/modal/calls`,
  journalEntry: (key: string) => `${STATE_ROOT}/modal/calls/${key}.json`,
  /** The build system's code, content-addressed (buildsys.ts): `<digest>/MANIFEST` is written last. */
  buildsys: (digest: string) => `${VOLUME_ROOT}/buildsys/${digest}`,
  buildsysManifest: (digest: string) => `${VOLUME_ROOT}/buildsys/${digest}/MANIFEST`,
  buildsysAll: `${VOLUME_ROOT}/buildsys`,
};

/** The claim key that makes one coordinator live per run (runner_core claims: a file or a modal.Dict entry). */
export const coordinatorClaimKey = (runId: string) => `coordinator-${runId}`;

/** `coordinator.json`: what `cancel` and the shared-state commands need to find a run's coordinator. */
export interface CoordinatorRecord {
  runId: string;
  /** The transport's id (`standin:<dir>` or `modal:<volume>`). */
  transport: string;
  callId: string;
  function: string;
  /** The build system's digest the coordinator runs (buildsys.ts). */
  buildsys: string;
  sha: string;
  /** ISO time of the spawn. */
  spawnedAt: string;
}
