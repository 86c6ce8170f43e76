import { spawn } from 'node:child_process';
import { copyFile, link, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { UsageError, type RemoteReason } from '../../report/failures.ts';
import type { Environment } from '../../target.ts';
import { modalCli } from './cli.ts';
import { createSecretHint, modalSecretName, type SecretNeed } from './secrets.ts';
import { callStateSchema, remoteFailureSchema, VOLUME_ROOT, type CallState, type CoordinatorRequest, type RunRequest } from './protocol.ts';

/**
 * How the executor reaches Modal: volume transfers and calls. Two implementations: the real one
 * below (the pinned Python `modal` client and CLI), and the local stand-in (modal-standin.ts),
 * which replaces only this transport and runs the very same runner code.
 *
 * Why the Python client rather than the JS SDK (`modal@0.11.1`, measured on this machine):
 * the JS SDK imports in ~0.5 s against ~1.2 s for `import modal` in Python, but it has no volume
 * put/get/ls at all, so the Python package is needed anyway; one toolchain means one pinned
 * version, one token configuration (~/.modal.toml) and one set of failure types. The SDK also
 * targets Node 22, is 0.x, and `npm i modal` resolves to an unrelated package unless pinned.
 * Python start-up is paid per operation, so operations are batched: one `spawn` for every batch
 * of an area fan-out, one `wait` process long-polling every pending call, one `volume put` for
 * all missing blobs.
 */
export interface ModalTransport {
  /** Names the volume namespace in journals: a call id of one transport means nothing to another. */
  readonly id: string;
  readonly volume: string;
  /**
   * Refuses early (a UsageError) when calls cannot work: no token, app not deployed, no Python, a
   * Modal secret an action needs does not exist.
   */
  check(functions: string[], secrets?: SecretNeed[]): Promise<void>;
  /** Names in a volume directory (relative to the volume root); [] when it does not exist. */
  list(dir: string): Promise<string[]>;
  /** Uploads local files to volume paths; resolves to the bytes sent. */
  put(files: { local: string; remote: string }[]): Promise<number>;
  /** Downloads volume files to local paths. */
  get(files: { remote: string; local: string }[]): Promise<void>;
  /**
   * Spawns one call per entry; resolves to the call ids, in order. `onSpawned` (the call journal)
   * is awaited for each call as soon as its id is known, before the next is spawned and before
   * spawn returns, so a kill leaves at most one spawned call unjournaled (the runner's claim on
   * the action key keeps even that one from running twice: modal_app/runner_core.py run_once).
   */
  spawn(calls: SpawnCall[], onSpawned: (index: number, id: string) => Promise<void>): Promise<string[]>;
  /** Waits up to `timeoutS` for any of the calls; every id gets a state. */
  wait(ids: string[], timeoutS: number): Promise<Record<string, CallState>>;
  /**
   * Stops calls and the containers running them, without a retry (`./build.ts cancel`); waiting
   * on a cancelled call then yields `call-cancelled`. An id that has already finished is left as it is.
   */
  cancel(ids: string[]): Promise<void>;
}

/** One call: the function, the request, and the secret variables its actions read (names; their Modal secrets go with this call alone). */
export interface SpawnCall {
  fn: string;
  request: RunRequest | CoordinatorRequest;
  secretEnv?: string[];
}

/**
 * A failure of the transport itself (auth, quota, unreachable...), carrying its remote reason.
 * Thrown inside the Modal executor (through its sync, batching and waiting) and turned into the
 * action's failure value at the executor's boundary (modal.ts `execute`, `materialise`).
 */
export class TransportError extends Error {
  readonly reason: RemoteReason;
  constructor(reason: RemoteReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program with `input` on stdin, in `env` (default: this process's own); never rejects for a non-zero exit. */
export function runProcess(program: string, args: string[], o: { input?: string; env?: Environment | undefined; cwd?: string } = {}): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { env: o.env, cwd: o.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (error) => resolve({ code: 127, stdout, stderr: `${stderr}${error.message}` }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(o.input ?? '');
  });
}

export interface RealTransportOptions {
  /** A Python with the pinned `modal` package (modal_app/requirements.txt). */
  python: string;
  /** The modal_app directory (client.py, runner.py). */
  appDir: string;
  app: string;
  volume: string;
  /** Parallel `modal volume get` processes. */
  downloads?: number;
  /** The environment the client runs in (the CLI passes the one it read); default this process's own. */
  env?: Environment;
}

/** The real Modal: `client.py` for calls, `python -m modal volume ...` for transfers. */
export class ModalCliTransport implements ModalTransport {
  readonly id: string;
  readonly volume: string;
  private readonly o: RealTransportOptions;

  constructor(o: RealTransportOptions) {
    this.o = o;
    this.volume = o.volume;
    this.id = `modal:${o.volume}`;
  }

  private async client(op: string, request: unknown): Promise<Record<string, unknown>> {
    const run = await runProcess(this.o.python, [join(this.o.appDir, 'client.py'), op], { input: JSON.stringify(request), env: this.o.env });
    let out: Record<string, unknown>;
    try {
      out = JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
    } catch {
      throw new TransportError('modal-client-failed', `modal_app/client.py ${op} exited with ${run.code}: ${lastLines(run.stderr || run.stdout)}`);
    }
    if (out.error !== undefined) {
      const error = remoteFailureSchema.safeParse(out.error);
      throw error.success ? new TransportError(error.data.reason, error.data.message) : new TransportError('modal-client-failed', `modal_app/client.py ${op} answered a malformed error: ${JSON.stringify(out.error)}`);
    }
    return out;
  }

  private async cli(argv: string[]): Promise<ProcessResult> {
    return runProcess(this.o.python, ['-m', 'modal', ...argv], { env: this.o.env });
  }

  async check(functions: string[], secrets: SecretNeed[] = []): Promise<void> {
    const probe = await runProcess(this.o.python, ['-c', 'import modal, xxhash'], { env: this.o.env });
    if (probe.code !== 0) {
      throw new UsageError('modal-client-missing', `${this.o.python} cannot import modal and xxhash; run modal_app/setup.sh (or set BUILD_MODAL_PYTHON): ${lastLines(probe.stderr)}`);
    }
    try {
      await this.client('check', { app: this.o.app, functions, secrets: secrets.map((n) => ({ ...n, hint: createSecretHint(n) })) });
    } catch (error) {
      if (error instanceof TransportError) throw new UsageError(error.reason, error.message);
      throw error;
    }
  }

  async list(dir: string): Promise<string[]> {
    const run = await this.cli(modalCli.volumeLs(this.volume, dir));
    if (run.code !== 0) {
      if (/no such file|not found|does not exist/i.test(run.stderr + run.stdout)) return [];
      throw new TransportError('modal-volume-failed', `modal volume ls ${this.volume} ${dir} failed: ${lastLines(run.stderr || run.stdout)}`);
    }
    return run.stdout.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => basename(l));
  }

  async put(files: { local: string; remote: string }[]): Promise<number> {
    if (files.length === 0) return 0;
    // One upload for everything: hard links laid out as on the volume, put as one directory.
    const stage = await mkdtemp(join(tmpdir(), 'modal-put-'));
    try {
      let bytes = 0;
      // The shared run state (STATE_ROOT) is under VOLUME_ROOT too: one put of one directory.
      for (const f of files) {
        if (!f.remote.startsWith(`${VOLUME_ROOT}/`)) throw new Error(`refusing to upload outside ${VOLUME_ROOT}/: ${f.remote}`);
        const dest = join(stage, f.remote);
        await mkdir(dirname(dest), { recursive: true });
        await link(f.local, dest).catch(() => copyFile(f.local, dest));
        bytes += (await stat(f.local)).size;
      }
      const run = await this.cli(modalCli.volumePut(this.volume, join(stage, VOLUME_ROOT), VOLUME_ROOT));
      if (run.code !== 0) throw new TransportError('modal-volume-failed', `modal volume put to ${this.volume} failed: ${lastLines(run.stderr || run.stdout)}`);
      return bytes;
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }

  async get(files: { remote: string; local: string }[]): Promise<void> {
    const queue = [...files];
    const worker = async () => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        await mkdir(dirname(f.local), { recursive: true });
        const run = await this.cli(modalCli.volumeGet(this.volume, f.remote, f.local));
        if (run.code !== 0) throw new TransportError('modal-volume-failed', `modal volume get ${this.volume} ${f.remote} failed: ${lastLines(run.stderr || run.stdout)}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.downloads ?? 4, files.length) }, worker));
  }

  async spawn(calls: SpawnCall[], onSpawned: (index: number, id: string) => Promise<void>): Promise<string[]> {
    // One client process spawns the whole batch (Python start-up is paid per operation). Secrets
    // travel by name: client.py attaches the Modal secret to that call's function variant.
    const secrets = (c: SpawnCall) => [...new Set((c.secretEnv ?? []).map(modalSecretName))];
    const out = await this.client('spawn', { app: this.o.app, calls: calls.map((c) => ({ function: c.fn, request: c.request, secrets: secrets(c) })) });
    const ids = out.callIds as string[];
    for (const [i, id] of ids.entries()) await onSpawned(i, id);
    return ids;
  }

  async cancel(ids: string[]): Promise<void> {
    if (ids.length) await this.client('cancel', { ids });
  }

  async wait(ids: string[], timeoutS: number): Promise<Record<string, CallState>> {
    const out = await this.client('wait', { ids, timeout: timeoutS });
    const states: Record<string, CallState> = {};
    for (const [id, state] of Object.entries(out.states as Record<string, unknown>)) states[id] = callStateSchema.parse(state);
    return states;
  }
}

export function lastLines(text: string, n = 5): string {
  return text.trim().split('\n').slice(-n).join('\n');
}
