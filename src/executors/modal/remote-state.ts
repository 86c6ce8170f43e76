import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { digestBytes } from '../../caching/hash.ts';
import { readHeartbeat, HEARTBEAT_FILE, type Heartbeat } from '../../run-heartbeat.ts';
import { readMeta, RUN_ID_PATTERN, sortRunIds, type MetaRead } from '../../run.ts';
import { failed } from '../../report/failures.ts';
import { STATE_ROOT, VOLUME_ROOT } from './protocol.ts';
import type { ModalTransport } from './transport.ts';

/**
 * The run state every machine shares, on the Modal volume under `build/state/`: byte for byte the
 * layout of a local BUILD_CACHE_DIR (a remote coordinator runs the CLI with
 * BUILD_CACHE_DIR=<volume>/build/state), so each file is read with the code that reads a local one:
 * `state/runs/<run_id>/` (meta.json, heartbeat.json, run.log, logs/<target>.log, diagnostics/),
 * `state/actions/<aa>/<key>.json` (the action cache) and `state/cas/<aa>/<digest>` (its blobs).
 * Other machines reach it only through the {@link ModalTransport} (list, put, get), never a
 * mount; in the stand-in the volume is `<MODAL_STANDIN_DIR>/volume`.
 *
 * What coordination relies on, with no file lock (a Modal Volume has none):
 * - Modal Volume semantics (https://modal.com/docs/reference/modal.Volume,
 *   https://modal.com/docs/guide/volumes): a container sees other containers' commits only after
 *   `reload()`, and its own writes reach others only after a commit (explicit, background, or at
 *   container exit); `modal volume get/ls` from another machine reads the committed state.
 *   Concurrent writes to the same file: the last commit wins, whole file.
 * - So every shared write is one of two kinds:
 *   - content-addressed: a blob under its digest, an action entry under its key. Whoever writes
 *     it writes an equivalent file (the same bytes for a blob; for an entry, a result of the same
 *     action, any of which is a valid hit), so the last writer winning loses nothing. Writers put
 *     only what is absent (a put of an existing digest is a no-op), and readers verify every blob
 *     against its digest before use.
 *   - owned by exactly one writer: a run's directory (meta.json, heartbeat.json, logs) by the one
 *     process building that run (its coordinator; at most one live per run is the coordinator's
 *     business), and after that process ended, meta.json by promote, which holds the registry
 *     lease (publish/lease.ts) while it writes.
 * - Liveness across machines is the heartbeat (run-heartbeat.ts), not a pid; a commit delay of a
 *   few seconds only makes a live run look a few seconds older, far inside the stale bound.
 *
 * What this asks of a coordinator on Modal: build with BUILD_CACHE_DIR=<mount>/state, and commit
 * the volume often enough (background commits, or `commit()` after meta.json and heartbeat writes)
 * for readers to see it beat; entries other machines put there reach its mounted view only after
 * a `reload()`, so until then it may rebuild one (a valid duplicate, never a wrong hit); and its
 * build must not push to its own cache dir (isVolumeState recognises the stand-in's; on Modal the
 * mount path is the coordinator's to name).
 */
export const statePaths = {
  runs: `${STATE_ROOT}/runs`,
  run: (runId: string) => `${STATE_ROOT}/runs/${runId}`,
  /** A file of a run directory, by its path relative to the run (`meta.json`, `logs/x.log`). */
  runFile: (runId: string, rel: string) => `${STATE_ROOT}/runs/${runId}/${rel}`,
  action: (key: string) => `${STATE_ROOT}/actions/${key.slice(0, 2)}/${key}.json`,
  actionShard: (prefix: string) => `${STATE_ROOT}/actions/${prefix}`,
  blob: (digest: string) => `${STATE_ROOT}/cas/${digest.slice(0, 2)}/${digest}`,
};

/** Whether a volume path is content-addressed (a blob, an entry): written only when absent. */
export function isContentAddressed(remote: string): boolean {
  return /^build\/(state\/)?cas\/[0-9a-f]{2}\/[0-9a-f]{32}$/.test(remote) || /^build\/state\/actions\/[0-9a-f]{2}\/[0-9a-f]+\.json$/.test(remote);
}

/**
 * Whether a cache dir is the volume's own `state/` (a coordinator's, in the stand-in): such a build
 * reads and writes the shared action cache directly, so it neither pulls from it nor pushes to it.
 * A coordinator on Modal mounts the volume at a path of its choosing and must say so itself.
 */
export function isVolumeState(cacheDir: string, o: { standinDir?: string; volumeState?: boolean }): boolean {
  // On Modal the coordinator says so (BUILD_VOLUME_STATE=1, set by modal_app/coordinator_core.py).
  return o.volumeState === true || (o.standinDir !== undefined && resolve(cacheDir) === resolve(o.standinDir, 'volume', STATE_ROOT));
}

/** How status marks where a run lives: `modal:<volume>`, or `standin` for the local stand-in. */
function placeLabel(transport: ModalTransport): string {
  return transport.id.startsWith('standin:') ? 'standin' : transport.id;
}

/**
 * The runs on the volume, read from another machine: each file a command needs is downloaded
 * into a local mirror laid out like a cache dir (`<cache>/remote/<transport>/runs/<id>/...`), so
 * readMeta, status, logs and promote read it as they read a local run. The mirror is a copy,
 * refreshed at every read, never a source of truth.
 */
export class RemoteRuns {
  readonly transport: ModalTransport;
  /** The mirror: a cache-dir-shaped directory holding the downloaded copies. */
  readonly mirrorDir: string;
  readonly label: string;

  constructor(transport: ModalTransport, cacheDir: string) {
    this.transport = transport;
    this.mirrorDir = join(cacheDir, 'remote', digestBytes(transport.id).slice(0, 16));
    this.label = placeLabel(transport);
  }

  /** Run ids on the volume, newest first. */
  async listRunIds(): Promise<string[]> {
    return sortRunIds((await this.transport.list(statePaths.runs)).filter((n) => RUN_ID_PATTERN.test(n)));
  }

  /** Whether the volume holds this run. */
  async has(runId: string): Promise<boolean> {
    return (await this.transport.list(statePaths.run(runId))).includes('meta.json');
  }

  /** Downloads one file of a run into the mirror; its local path, or null when the volume lacks it. */
  async download(runId: string, rel: string): Promise<string | null> {
    const local = join(this.mirrorDir, 'runs', runId, rel);
    try {
      await this.transport.get([{ remote: statePaths.runFile(runId, rel), local }]);
      return local;
    } catch (error) {
      // One operation when the file is there; only a failed get asks whether it exists at all.
      const dir = statePaths.runFile(runId, rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '').replace(/\/$/, '');
      if (!(await this.transport.list(dir)).includes(rel.slice(rel.lastIndexOf('/') + 1))) return null;
      throw error;
    }
  }

  /** The run's meta.json, downloaded and validated as a local one is. */
  async readMeta(runId: string): Promise<MetaRead> {
    await mkdir(join(this.mirrorDir, 'runs', runId), { recursive: true });
    // Gone from (or never on) the volume: an older copy in the mirror is not the run, nor is the
    // mirror's empty directory a half-made run.
    if ((await this.download(runId, 'meta.json')) === null) {
      await rm(join(this.mirrorDir, 'runs', runId), { recursive: true, force: true });
      return failed({ reason: 'bad-run', message: `run ${runId} does not exist; list runs with ./build.ts status` });
    }
    return readMeta(this.mirrorDir, runId);
  }

  async readHeartbeat(runId: string): Promise<Heartbeat | null> {
    return (await this.download(runId, HEARTBEAT_FILE)) ? readHeartbeat(join(this.mirrorDir, 'runs', runId)) : null;
  }

  /** Names in one of the run's directories (`logs`, `diagnostics`). */
  async listRunDir(runId: string, rel: string): Promise<string[]> {
    return this.transport.list(statePaths.runFile(runId, rel));
  }

  /**
   * Copies the action entry `key` from the volume into the mirror's `actions/` (a cache dir's
   * layout, so the Cache reads it); false when the volume has none.
   */
  async mirrorEntry(key: string): Promise<boolean> {
    const shard = await this.transport.list(statePaths.actionShard(key.slice(0, 2)));
    if (!shard.includes(`${key}.json`)) return false;
    await this.transport.get([{ remote: statePaths.action(key), local: join(this.mirrorDir, 'actions', key.slice(0, 2), `${key}.json`) }]);
    return true;
  }

  /**
   * Puts the mirror's meta.json back on the volume: promote's record of a run whose builder has
   * ended (the one writer of meta.json then is promote, under the registry lease).
   */
  async putMeta(runId: string): Promise<void> {
    await this.transport.put([{ local: join(this.mirrorDir, 'runs', runId, 'meta.json'), remote: statePaths.runFile(runId, 'meta.json') }]);
  }

  /**
   * What promote, report and explain read of a run, mirrored: meta.json and the diagnostics
   * (small CSV/JSON files). The released files themselves are read from the store's staging.
   */
  async mirrorRecord(runId: string): Promise<MetaRead> {
    const meta = await this.readMeta(runId);
    if (!meta.ok) return meta;
    const names = await this.listRunDir(runId, 'diagnostics');
    await this.transport.get(names.map((n) => ({ remote: statePaths.runFile(runId, `diagnostics/${n}`), local: join(this.mirrorDir, 'runs', runId, 'diagnostics', n) })));
    return meta;
  }
}

/**
 * The coordinator's paths, as volume paths. The operator writes `meta(runId)` and
 * `coordinator(runId)` at `--detach`; every other machine reads them (and the logs) through the
 * transport. The Python side (modal_app/coordinator_core.py) uses the same names.
 */
export const remoteState = {
  runs: statePaths.runs,
  meta: (runId: string) => statePaths.runFile(runId, 'meta.json'),
  /** Which call coordinates the run: {@link CoordinatorRecord}, written by the operator at `--detach` (and rewritten by a resume). */
  coordinator: (runId: string) => statePaths.runFile(runId, 'coordinator.json'),
  /** The coordinators' call journal (journal.ts under BUILD_CACHE_DIR): in-flight action calls by action key. */
  journal: `${STATE_ROOT}/modal/calls`,
  journalEntry: (key: string) => `${STATE_ROOT}/modal/calls/${key}.json`,
  /** The build system's code, content-addressed (buildsys.ts): `<digest>/MANIFEST` is written last. */
  buildsys: (digest: string) => `${VOLUME_ROOT}/buildsys/${digest}`,
  buildsysManifest: (digest: string) => `${VOLUME_ROOT}/buildsys/${digest}/MANIFEST`,
};

/** `coordinator.json`: what `cancel` and the shared-state commands need to find a run's coordinator, and a resume to start another. */
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
  /** The CLI arguments and non-secret settings it was started with, which a resume starts it with again (absent in older records). */
  args?: string[];
  env?: Record<string, string>;
  /** The secret variables (names) its call's Modal secrets hold: publishing's HF_TOKEN, and those of the targets it runs itself. */
  secretEnv?: string[];
}
