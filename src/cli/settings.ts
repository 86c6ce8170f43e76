import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { ModalSettings } from '../executors/modal/config.ts';
import type { GitSha } from '../git.ts';
import type { PublishEnv } from '../publish/config.ts';
import { UsageError } from '../report/failures.ts';
import type { Environment } from '../target.ts';
import { isMachineEnv } from '../machine-env.ts';

/**
 * The one place that reads the environment. The CLI parses it once, at start-up, into the
 * {@link Settings} below and passes them down: the engine, the executors, the stores and
 * publishing take what they need through their options and never look at `process.env`.
 *
 * An empty value counts as unset (`BUILD_CACHE_DIR= ./build.ts ...` is the default cache), as
 * the shell idiom intends.
 */

/**
 * A value taken as given (a path, a name, a token): one schema instance shared by every such
 * variable, since building zod schemas is most of what reading the settings costs at start-up.
 */
const text = z.string().optional();

/** Every environment variable the CLI reads, with its meaning. A bad value is a usage error (exit 2) naming it. */
export const settingsSchema = z.object({
  /** Any value: plain output, one line per finished target, instead of the terminal's live status line. */
  CI: text,
  /** Where the local cache lives (default `<project>/cache`); tests give every case its own. */
  BUILD_CACHE_DIR: text,
  /**
   * Where Python environments are built (default `<cache>/envs`). They are keyed by their
   * requirements alone, so caches may share one directory (the tests do, to build numpy once).
   */
  BUILD_ENVS_DIR: text,
  /** Another pipeline declaration (an .mjs exporting `makePipeline(profile)`) instead of tasks/: the benchmarks' trivial graph. */
  BUILD_TASKS: text,
  /** Set by `--detach` for its background child: the run the parent allocated. */
  BUILD_RUN_ID: text,
  /** Set by `--detach` for its background child: the SHA the parent pinned. */
  BUILD_PINNED_SHA: z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'a full commit id').optional(),
  /** Set by `--detach` for its background child: 1 when the pinned SHA is a snapshot of uncommitted changes. */
  BUILD_PINNED_DIRTY: z.enum(['0', '1'], '0 or 1').optional(),
  /**
   * NODE_EXTRA_CA_CERTS as build.ts moved it aside (Node reads that file at every start, ~80 ms):
   * restored for commands that open TLS connections and for every action.
   */
  BUILD_EXTRA_CA_CERTS: text,
  /** Extra CA certificates, when set directly (not through build.ts): nothing to restore then. */
  NODE_EXTRA_CA_CERTS: text,
  /** 0: hash large files on the main thread only, never in worker threads (the benchmarks compare with it). */
  BUILD_HASH_WORKERS: z.string().regex(/^[0-9]+$/, 'a whole number (0 turns the worker threads off)').optional(),
  /** Deployed Modal app that EXECUTOR=modal calls (default policyengine-us-data-build). */
  BUILD_MODAL_APP: text,
  /** Modal volume holding blobs, trees and logs (default pipeline-artifacts). */
  BUILD_MODAL_VOLUME: text,
  /** Python with the pinned modal and xxhash packages (default the venv modal_app/setup.sh makes). */
  BUILD_MODAL_PYTHON: text,
  /** How long the Modal executor waits for more weighted actions before spawning a batch (default 500). */
  BUILD_MODAL_BATCH_QUIET_MS: z.string().regex(/^[0-9]+$/, 'a whole number of milliseconds').optional(),
  /** Use the local Modal stand-in, with this directory as its volume and call store, instead of Modal. */
  MODAL_STANDIN_DIR: text,
  /** Tests only: `kill-after-spawn` makes the stand-in kill the orchestrator right after a call starts. */
  MODAL_STANDIN_FAULT: z.enum(['kill-after-spawn']).optional(),
  /** Set by the coordinator on Modal (coordinator_core.py): BUILD_CACHE_DIR is the volume's shared state, so no shared-cache pulls or pushes. */
  BUILD_VOLUME_STATE: z.enum(['0', '1']).optional(),
  /** How often a build rewrites its run's heartbeat.json (default 30000; tests shorten it): run-heartbeat.ts. */
  BUILD_HEARTBEAT_MS: z.string().regex(/^[1-9][0-9]*$/, 'a positive whole number of milliseconds').optional(),
  /** Modal's token, when set in the environment (CI): with ~/.modal.toml, what says Modal is configured. */
  MODAL_TOKEN_ID: text,
  /** Default of the variable HF_REPO: the Hugging Face repo that is the release store. */
  HF_REPO: text,
  /** Default of the variable HF_REPO_TYPE (model, dataset or space). */
  HF_REPO_TYPE: text,
  /** Default of the variable STORE_DIR: a local directory as the release store (default `<cache>/store`). */
  STORE_DIR: text,
  /** Default of the variable GCS_BUCKET: the GCS mirror of production, which holds the registry. */
  GCS_BUCKET: text,
  /** Hugging Face Hub base URL (a test server in tests). */
  HF_ENDPOINT: text,
  /** GCS JSON API base URL of a test server or emulator. */
  GCS_ENDPOINT: text,
  /** Read by @google-cloud/storage itself; accepted only when it ends in /storage/v1 (publish/config.ts says why). */
  STORAGE_EMULATOR_HOST: text,
  /** Hugging Face token for writes (secret: never printed). */
  HF_TOKEN: text,
  /** Hugging Face token, the Hub tooling's other name for it (secret: never printed). */
  HUGGING_FACE_TOKEN: text,
  /** Service-account key file for GCS writes. */
  GOOGLE_APPLICATION_CREDENTIALS: text,
  /** gcloud's configuration directory, where application-default credentials may be (default ~/.config/gcloud). */
  CLOUDSDK_CONFIG: text,
});

type SettingName = keyof typeof settingsSchema.shape;

/** What the CLI passes down, read once from the environment. */
export interface Settings {
  /** BUILD_CACHE_DIR, resolved. */
  cacheDir: string;
  /** BUILD_ENVS_DIR. */
  envsDir: string;
  /** This build system's directory (the one holding build.ts): the default REPO, and tasks/adapters/. */
  root: string;
  /** CI. */
  ci: boolean;
  /** BUILD_TASKS. */
  tasksFile?: string;
  /** BUILD_RUN_ID, unchecked (the build checks it like RUN_ID). */
  runId?: string;
  /** BUILD_PINNED_SHA and BUILD_PINNED_DIRTY. */
  pinned: { sha?: GitSha; dirty: boolean };
  /** BUILD_EXTRA_CA_CERTS, and whether NODE_EXTRA_CA_CERTS is set already. */
  caCerts: { stashed?: string; active: boolean };
  /** Not BUILD_HASH_WORKERS=0. */
  hashWorkers: boolean;
  /** BUILD_HEARTBEAT_MS: the run's heartbeat interval (run-heartbeat.ts). */
  heartbeatMs?: number;
  /** BUILD_MODAL_* and MODAL_STANDIN_DIR, with the environment the Modal client runs in. */
  modal: ModalSettings;
  /** The publishing defaults, test endpoints and credentials, by variable name. */
  publish: PublishEnv;
  /**
   * The whole environment as the process received it: where targets' declared variables
   * (Target.env) are read from, and what child processes inherit (baseActionEnv, cliEnv).
   */
  env: Environment;
}

/** Reads and validates the settings; a bad value is a UsageError naming the variable. */
export function readSettings(env: Environment = process.env): Settings {
  const given: Partial<Record<SettingName, string>> = {};
  for (const name of Object.keys(settingsSchema.shape) as SettingName[]) {
    const value = env[name];
    if (value) given[name] = value;
  }
  // Parsed once: zod's compiled fast path would cost more to generate than it saves.
  const parsed = settingsSchema.safeParse(given, { jitless: true });
  if (!parsed.success) {
    // Only variables with a format can be invalid; the tokens have none here (open-store.ts checks
    // them and never echoes them), so the value shown is never a secret.
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]) as SettingName;
    throw new UsageError('bad-setting', `${name}=${given[name]} in the environment is not valid (expected ${issue.message}); correct it or unset it`);
  }
  const s = parsed.data;
  const root = projectRoot();
  const cacheDir = resolve(s.BUILD_CACHE_DIR ?? join(root, 'cache'));
  const quietMs = Number(s.BUILD_MODAL_BATCH_QUIET_MS ?? 0);
  return {
    cacheDir,
    envsDir: s.BUILD_ENVS_DIR ?? join(cacheDir, 'envs'),
    root,
    ci: s.CI !== undefined,
    ...(s.BUILD_TASKS && { tasksFile: s.BUILD_TASKS }),
    ...(s.BUILD_RUN_ID && { runId: s.BUILD_RUN_ID }),
    pinned: { ...(s.BUILD_PINNED_SHA && { sha: s.BUILD_PINNED_SHA as GitSha }), dirty: s.BUILD_PINNED_DIRTY === '1' },
    caCerts: { ...(s.BUILD_EXTRA_CA_CERTS && { stashed: s.BUILD_EXTRA_CA_CERTS }), active: s.NODE_EXTRA_CA_CERTS !== undefined },
    hashWorkers: s.BUILD_HASH_WORKERS !== '0',
    ...(s.BUILD_HEARTBEAT_MS && { heartbeatMs: Number(s.BUILD_HEARTBEAT_MS) }),
    modal: {
      ...(s.BUILD_MODAL_APP && { app: s.BUILD_MODAL_APP }),
      ...(s.BUILD_MODAL_VOLUME && { volume: s.BUILD_MODAL_VOLUME }),
      ...(s.BUILD_MODAL_PYTHON && { python: s.BUILD_MODAL_PYTHON }),
      ...(s.MODAL_STANDIN_DIR && { standinDir: s.MODAL_STANDIN_DIR }),
      ...(s.MODAL_STANDIN_FAULT && { fault: s.MODAL_STANDIN_FAULT }),
      ...(s.BUILD_VOLUME_STATE === '1' && { volumeState: true }),
      ...(quietMs > 0 && { batchQuietMs: quietMs }),
      // The stand-in, a token in the environment (CI) or the one `modal token new` saved.
      configured: Boolean(s.MODAL_STANDIN_DIR || s.MODAL_TOKEN_ID || (env.HOME && existsSync(join(env.HOME, '.modal.toml')))),
      env,
    },
    publish: {
      HF_REPO: s.HF_REPO,
      HF_REPO_TYPE: s.HF_REPO_TYPE,
      STORE_DIR: s.STORE_DIR,
      GCS_BUCKET: s.GCS_BUCKET,
      HF_ENDPOINT: s.HF_ENDPOINT,
      GCS_ENDPOINT: s.GCS_ENDPOINT,
      STORAGE_EMULATOR_HOST: s.STORAGE_EMULATOR_HOST,
      HF_TOKEN: s.HF_TOKEN,
      HUGGING_FACE_TOKEN: s.HUGGING_FACE_TOKEN,
      GOOGLE_APPLICATION_CREDENTIALS: s.GOOGLE_APPLICATION_CREDENTIALS,
      CLOUDSDK_CONFIG: s.CLOUDSDK_CONFIG,
    },
    env,
  };
}

/**
 * Where things live. The project root is the directory holding build.ts: the CLI runs from
 * dist/cli.cjs (the bundle) or src/ (tsx, tests), so it is found by walking up.
 */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'build.ts'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no build.ts above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

/**
 * The environment an action sees: enough to find tools and reach package indexes, plus fixed
 * Python settings for reproducible bytes, unbuffered output so a Python step's log keeps its
 * prints and its traceback in order (the failure shows the log's tail), and the CA certificates
 * build.ts moved aside (Node-based tools need them). Declared env (per target) is added on top and hashed.
 */
export function baseActionEnv(s: Pick<Settings, 'env' | 'caCerts'>): Record<string, string> {
  const env: Record<string, string> = { PYTHONHASHSEED: '0', PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', LC_ALL: 'C.UTF-8' };
  for (const [name, value] of Object.entries(s.env)) {
    if (value !== undefined && isMachineEnv(name)) env[name] = value;
  }
  return { ...env, ...(s.caCerts.stashed && { NODE_EXTRA_CA_CERTS: s.caCerts.stashed }) };
}

/**
 * Provenance for the run's actions, as the real code reads it: `get_git_provenance`
 * (unified_calibration.py:69-119) asks git in its working directory and falls back to GIT_COMMIT
 * and GIT_BRANCH. The run's tree has no .git, but it lives in the cache, which may sit inside a
 * checkout (this one's `cache/`): GIT_CEILING_DIRECTORIES stops git's search at the run
 * directory, so git finds no repository and the pinned SHA is recorded. Per run, never in a key
 * (the SHA is already in every key through the sources; the branch must not be).
 */
export function provenanceEnv(o: { sha: string; branch: string; runDir: string }): Record<string, string> {
  return { GIT_COMMIT: o.sha, GIT_BRANCH: o.branch, GIT_CEILING_DIRECTORIES: o.runDir };
}

export { isMachineEnv } from '../machine-env.ts';

/**
 * The environment of the CLI re-executing itself (`--detach`, the TLS re-exec of network.ts):
 * the whole environment with `changes` applied, an undefined value removing the variable.
 */
export function cliEnv(env: Environment, changes: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...env, ...changes })) if (value !== undefined) out[name] = value;
  return out;
}
