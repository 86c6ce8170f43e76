import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { appendFile, copyFile, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UsageError } from '../../report/failures.ts';
import type { Environment } from '../../target.ts';
import { isAlive } from '../../caching/action-lock.ts';
import { isMachineEnv } from '../../machine-env.ts';
import { callStateSchema, COORDINATOR_FUNCTION, type CallState } from './protocol.ts';
import type { SecretNeed } from './secrets.ts';
import { runProcess, type ModalTransport, type SpawnCall } from './transport.ts';
import { isContentAddressed } from './remote-state.ts';

/**
 * The local Modal STAND-IN (MODAL_STANDIN_DIR=<dir>): the same client interface as the real
 * transport, with only Modal itself replaced. The "volume" is `<dir>/volume`; a spawned call is a
 * detached local process (its own session, so it outlives a killed orchestrator) running
 * modal_app/standin.py, which runs the very same runner_core.py as the Modal functions. Call ids
 * (`sc-<uuid>`) and their state live in `<dir>/calls/<id>/` (request.json, pid, result.json,
 * container.log), so a new orchestrator can reattach to a call that is still running.
 *
 * Every byte that crosses the "network" is logged to `<dir>/transfers.jsonl`, so tests can check
 * that a rerun uploads nothing.
 *
 * A coordinator call (`run_coordinator`) is supervised as Modal's retries would: standin.py runs
 * each attempt as a "container" of its own (a new session, its pid in `container.pid`) and starts
 * it again, up to COORDINATOR_ATTEMPTS in all, when it dies without a result. Its "image's" Node is
 * this process's own (BUILD_STANDIN_NODE). `cancel` kills the call's sessions, supervisor first.
 *
 * A container gets what a Modal container has: the machine's own variables (PATH, HOME, proxies:
 * the image's), the runner's `BUILD_*` knobs, and the secrets of its call, here taken from this
 * environment (the stand-in's secret store) by variable name. Nothing else of the operator's
 * environment reaches it, so a call whose actions declare no secret never holds one, and no file
 * of the stand-in (requests, results, logs, volume) ever holds a secret's value.
 */
export interface StandinOptions {
  dir: string;
  /** A Python with xxhash (the runner's only dependency). */
  python: string;
  appDir: string;
  volume: string;
  /** A fault to inject (tests only, MODAL_STANDIN_FAULT): `kill-after-spawn` SIGKILLs this process right after a call starts. */
  fault?: 'kill-after-spawn';
  /** The environment the stand-in's containers run in (the CLI passes the one it read); default this process's own. */
  env?: Environment;
}

export class StandinTransport implements ModalTransport {
  readonly id: string;
  readonly volume: string;
  private readonly o: StandinOptions;
  private readonly volumeDir: string;

  constructor(o: StandinOptions) {
    this.o = o;
    this.volume = o.volume;
    this.id = `standin:${o.dir}`;
    this.volumeDir = join(o.dir, 'volume');
  }

  private callDir(id: string): string {
    if (!/^sc-[0-9a-f-]+$/.test(id)) throw new Error(`not a stand-in call id: ${id}`);
    return join(this.o.dir, 'calls', id);
  }

  /** The stand-in's "deployed app" is modal_app/runner.py itself: its functions must exist there; its secrets are this environment's. */
  async check(functions: string[], secrets: SecretNeed[] = []): Promise<void> {
    const unset = secrets.find((n) => !this.env()[n.variable]);
    if (unset) {
      throw new UsageError('modal-secret-missing', `the Modal stand-in gives the secret ${unset.secret} from the environment, where ${unset.variable} is not set; export it (it reaches the actions that declare it only), or build goals that do not need it`);
    }
    const probe = await runProcess(this.o.python, ['-c', 'import xxhash'], { env: this.o.env });
    if (probe.code !== 0) throw new UsageError('modal-client-missing', `the Modal stand-in needs a Python with xxhash; ${this.o.python} has none (run modal_app/setup.sh or set BUILD_MODAL_PYTHON)`);
    const app = await readFile(join(this.o.appDir, 'runner.py'), 'utf8');
    const defined = new Set([...app.matchAll(/^def (run_\w+)\(/gm)].map((m) => m[1]));
    const missing = functions.filter((f) => !defined.has(f));
    if (missing.length) throw new UsageError('modal-app-missing', `modal_app/runner.py defines no ${missing.join(', ')}`);
    await mkdir(join(this.volumeDir), { recursive: true });
  }

  async list(dir: string): Promise<string[]> {
    return readdir(join(this.volumeDir, dir)).catch(() => []);
  }

  async put(files: { local: string; remote: string }[]): Promise<number> {
    let bytes = 0;
    const sent: string[] = [];
    for (const f of files) {
      const dest = join(this.volumeDir, f.remote);
      // Content-addressed: the file there already holds these bytes (or an equivalent entry).
      if (isContentAddressed(f.remote) && existsSync(dest)) continue;
      sent.push(f.remote);
      await mkdir(dirname(dest), { recursive: true });
      const tmp = `${dest}.tmp-${randomUUID()}`;
      await copyFile(f.local, tmp);
      await rename(tmp, dest);
      bytes += (await stat(dest)).size;
    }
    if (sent.length) await this.logTransfer('put', sent, bytes);
    return bytes;
  }

  async get(files: { remote: string; local: string }[]): Promise<void> {
    let bytes = 0;
    for (const f of files) {
      await mkdir(dirname(f.local), { recursive: true });
      await copyFile(join(this.volumeDir, f.remote), f.local);
      bytes += (await stat(f.local)).size;
    }
    if (files.length) await this.logTransfer('get', files.map((f) => f.remote), bytes);
  }

  private async logTransfer(op: string, paths: string[], bytes: number): Promise<void> {
    await appendFile(join(this.o.dir, 'transfers.jsonl'), `${JSON.stringify({ op, bytes, paths, at: new Date().toISOString() })}\n`);
  }

  private env(): Environment {
    return this.o.env ?? process.env;
  }

  /** A call's container environment: the machine's, the runner's knobs, and the call's secrets. */
  private containerEnv(secretEnv: string[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.env())) {
      if (value !== undefined && (isMachineEnv(name) || name.startsWith('BUILD_') || secretEnv.includes(name))) out[name] = value;
    }
    return out;
  }

  async spawn(calls: SpawnCall[], onSpawned: (index: number, id: string) => Promise<void>): Promise<string[]> {
    const ids: string[] = [];
    for (const [index, call] of calls.entries()) {
      const id = `sc-${randomUUID()}`;
      const dir = this.callDir(id);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'request.json'), JSON.stringify({ function: call.fn, request: call.request }));
      const log = openSync(join(dir, 'container.log'), 'a');
      try {
        const child = spawn(this.o.python, [join(this.o.appDir, 'standin.py'), this.o.dir, id], {
          detached: true,
          stdio: ['ignore', log, log],
          // A coordinator's "container" spawns the run's calls itself, through a stand-in of its own:
          // it carries this stand-in's environment (the stand-in's secret store) and its Node.
          env: call.fn === COORDINATOR_FUNCTION ? { ...this.env(), BUILD_STANDIN_NODE: process.execPath } : this.containerEnv(call.secretEnv ?? []),
        });
        if (child.pid === undefined) throw new Error(`could not start ${this.o.python}`);
        await writeFile(join(dir, 'pid'), String(child.pid));
        child.unref();
      } finally {
        closeSync(log);
      }
      // Fault injection for the tests: the orchestrator dies the moment a call has started, before
      // it journaled the call (issue 13: the rerun dispatched that call's actions again).
      if (this.o.fault === 'kill-after-spawn') process.kill(process.pid, 'SIGKILL');
      await onSpawned(index, id);
      ids.push(id);
    }
    return ids;
  }

  async wait(ids: string[], timeoutS: number): Promise<Record<string, CallState>> {
    const deadline = Date.now() + timeoutS * 1000;
    for (;;) {
      const states: Record<string, CallState> = {};
      for (const id of ids) states[id] = await this.state(id);
      if (Object.values(states).some((s) => s.state !== 'running') || Date.now() >= deadline) return states;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async cancel(ids: string[]): Promise<void> {
    for (const id of ids) {
      const dir = this.callDir(id);
      if (await readFile(join(dir, 'result.json'), 'utf8').then(() => true, () => false)) continue;
      await writeFile(join(dir, 'cancelled'), new Date().toISOString());
      // The supervisor first, so that it starts no new attempt; then the attempt's own session.
      const pids = [join(dir, 'pid'), join(dir, 'container.pid')];
      const groups: number[] = [];
      for (const file of pids) {
        const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
        if (!pid || !(await this.alive(pid, id))) continue;
        groups.push(pid);
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone in between
        }
      }
      for (const deadline = Date.now() + 10_000; groups.some((pid) => isAlive(pid)) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      const tmp = join(dir, 'result.json.tmp-cancel');
      await writeFile(tmp, JSON.stringify({ state: 'failed', reason: 'call-cancelled', message: `call ${id} was cancelled (./build.ts cancel)` }));
      await rename(tmp, join(dir, 'result.json'));
    }
  }

  private async state(id: string): Promise<CallState> {
    const dir = this.callDir(id);
    const result = async () => {
      const text = await readFile(join(dir, 'result.json'), 'utf8').catch(() => null);
      return text === null ? null : callStateSchema.parse(JSON.parse(text));
    };
    const done = await result();
    if (done) return done;
    const pid = Number((await readFile(join(dir, 'pid'), 'utf8').catch(() => '')).trim());
    if (!pid) return { state: 'unknown' };
    if (await this.alive(pid, id)) return { state: 'running' };
    // The container may have finished between the two reads.
    return (await result()) ?? { state: 'failed', reason: 'remote-preempted', message: `the stand-in container of call ${id} exited without a result (as if preempted); see ${join(dir, 'container.log')}` };
  }

  /** Alive and still our process (pids are reused): its command line names the call. */
  private async alive(pid: number, id: string): Promise<boolean> {
    if (!isAlive(pid)) return false;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
    return cmdline === null || cmdline.includes(id);
  }
}
