import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEntry } from '../src/caching/cache.ts';
import { isAlive } from '../src/caching/action-lock.ts';
import { cleanup, cli, exampleRepo, ROOT, SMALL, sleep, tempDir, waitFor } from './helpers.ts';
import { modalPython, processes, standinCalls, killStandinCalls } from './modal-helpers.ts';

/**
 * `./build.ts pipeline EXECUTOR=modal --detach` against the local stand-in, through the real CLI:
 * the coordinator is a stand-in call (the build system shipped to the "volume" by digest, run there
 * with the volume's state/ as its cache), so nothing of the run stays on the operator's machine;
 * a coordinator killed with SIGKILL mid-run is restarted by the stand-in and finishes the same run
 * with no action dispatched twice and the bytes of a local run; `cancel` stops a run and its calls.
 */
interface Meta {
  runId: string;
  status: string;
  pid: number;
  targets: Record<string, { outcome: string; key?: string; remote?: Record<string, unknown> }>;
}

describe('the coordinator on Modal (stand-in)', () => {
  let repo: string;
  let work: string;
  let standin: string;
  let env: Record<string, string>;
  let vars: string[];
  const cache = (name: string) => join(work, name);
  const state = () => join(standin, 'volume', 'build', 'state');
  const remoteMeta = (runId: string) => JSON.parse(readFileSync(join(state(), 'runs', runId, 'meta.json'), 'utf8')) as Meta;
  const coordinatorCall = (runId: string) => JSON.parse(readFileSync(join(state(), 'runs', runId, 'coordinator.json'), 'utf8')) as { callId: string; buildsys: string };
  const callPid = (id: string, file = 'pid') => Number(readFileSync(join(standin, 'calls', id, file), 'utf8'));

  beforeAll(() => {
    const python = modalPython();
    repo = exampleRepo();
    work = tempDir('coordinator');
    standin = join(work, 'standin');
    env = { MODAL_STANDIN_DIR: standin, BUILD_MODAL_PYTHON: python, BUILD_MODAL_BATCH_QUIET_MS: '300' };
    vars = [`REPO=${repo}`, ...SMALL, 'NUM_WORKERS=2', 'EXECUTOR=modal'];
  });
  afterAll(() => {
    // A failed test may leave stand-in calls running: stop them before removing their directory.
    killStandinCalls(standin);
    cleanup(repo, work);
  });

  const detach = async (extra: Record<string, string> = {}) => {
    const r = await cli(['pipeline', ...vars, '--detach', '--json'], { cache: cache('operator'), env: { ...env, ...extra } });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const event = r.events.find((e) => e.event === 'detached')!;
    return { runId: event.runId as string, callId: event.callId as string };
  };

  /** Polls the run's meta.json on the volume until the run has ended. */
  const ended = async (runId: string, timeoutMs = 600_000): Promise<Meta> => {
    for (const deadline = Date.now() + timeoutMs; ; await sleep(250)) {
      const m = remoteMeta(runId);
      if (m.status !== 'running') return m;
      if (Date.now() > deadline) throw new Error(`run ${runId} still running:\n${readFileSync(join(state(), 'runs', runId, 'run.log'), 'utf8').slice(-3000)}`);
    }
  };

  /** Action calls (not the coordinator's) spawned after `since` call ids were known: action key -> how many calls carried it. */
  const dispatches = (since: Set<string>) => {
    const count = new Map<string, number>();
    for (const c of standinCalls(standin)) {
      if (since.has(c.id) || c.function === 'run_coordinator') continue;
      for (const k of c.keys) count.set(k, (count.get(k) ?? 0) + 1);
    }
    return count;
  };

  it('bad input fails in the foreground with exit 2, and nothing is started', async () => {
    const r = await cli(['pipeline', ...vars, 'GPU=K80', '--detach'], { cache: cache('operator'), env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/GPU=K80 is invalid/);
    expect(existsSync(join(standin, 'calls'))).toBe(false);
    expect(existsSync(join(standin, 'volume', 'build', 'buildsys'))).toBe(false);
  });

  let first = '';
  it('prints the run id and returns; no process of ours is left but the stand-in\'s calls; the run completes on the volume', async () => {
    const { runId, callId } = await detach();
    first = runId;
    // The run record is on the volume at once, and nothing of the run on this machine.
    expect(remoteMeta(runId)).toMatchObject({ runId, status: 'running' });
    expect(existsSync(join(cache('operator'), 'runs', runId))).toBe(false);
    expect(coordinatorCall(runId).callId).toBe(callId);
    expect(standinCalls(standin).map((c) => c.function)).toEqual(['run_coordinator']);

    // The CLI has exited (cli() resolved on its close); what runs for the run descends from a stand-in call,
    // and the coordinator itself runs the shipped bundle, from the volume.
    const digest = coordinatorCall(runId).buildsys;
    const shipped = join(standin, 'volume', 'build', 'buildsys', digest, 'dist', 'cli.mjs');
    let procs = processes();
    for (const deadline = Date.now() + 60_000; !procs.some((p) => p.cmdline.includes(shipped)); procs = processes()) {
      if (Date.now() > deadline) throw new Error(`no coordinator CLI running ${shipped}`);
      await sleep(100);
    }
    const mine = procs.filter((p) => p.environ.includes(`MODAL_STANDIN_DIR=${standin}\0`));
    expect(mine.filter((p) => p.cmdline.includes(join(ROOT, 'dist', 'cli.mjs')))).toEqual([]);
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    const calls = () => new Set(standinCalls(standin).map((c) => callPid(c.id)));
    const roots = calls();
    const descends = (pid: number): boolean => {
      for (let p = byPid.get(pid); p; p = byPid.get(p.ppid)) if (roots.has(p.pid)) return true;
      return false;
    };
    expect(mine.filter((p) => !descends(p.pid)).map((p) => p.cmdline)).toEqual([]);

    const m = await ended(runId);
    expect(m.status, readFileSync(join(state(), 'runs', runId, 'run.log'), 'utf8').slice(-2000)).toBe('completed');
    expect(m.targets['fit-regional']).toMatchObject({ outcome: 'built', remote: { function: 'run_t4' } });
    expect(m.targets.database).toMatchObject({ outcome: 'built' });
    // The coordinator's CLI exits after recording the end (its publishing, its code cache); then no call process remains.
    for (const deadline = Date.now() + 120_000; standinCalls(standin).some((c) => isAlive(callPid(c.id))); await sleep(200)) {
      if (Date.now() > deadline) throw new Error('stand-in calls still running after the run ended');
    }
    expect(JSON.parse(readFileSync(join(standin, 'calls', callId, 'result.json'), 'utf8'))).toMatchObject({ state: 'done', value: { ok: true, exitCode: 0, runId } });
  }, 900_000);

  it('a coordinator killed with SIGKILL mid-run is restarted; the run completes, nothing dispatched twice, the bytes of a local run', async () => {
    const slow = { EXAMPLE_FIT_SLEEP_MS: '300' };
    const before = new Set(standinCalls(standin).map((c) => c.id));
    const { runId, callId } = await detach(slow);
    // Wait until the slowed fit's call is in flight (dispatched by the coordinator), then kill the coordinator's container.
    for (const deadline = Date.now() + 300_000; ; await sleep(100)) {
      const fit = remoteMeta(runId).targets['fit-regional'];
      if (fit?.outcome === 'running' && typeof fit.remote?.callId === 'string') break;
      if (Date.now() > deadline) throw new Error('the fit was never dispatched');
    }
    const container = callPid(callId, 'container.pid');
    process.kill(-container, 'SIGKILL');
    const m = await ended(runId);
    expect(m.status, readFileSync(join(state(), 'runs', runId, 'run.log'), 'utf8').slice(-3000)).toBe('completed');
    const attempts = readFileSync(join(standin, 'calls', callId, 'attempts'), 'utf8').trim().split('\n');
    expect(attempts).toHaveLength(2);
    expect(readFileSync(join(state(), 'runs', runId, 'run.log'), 'utf8').match(/coordinator started on/g)).toHaveLength(2);
    // The restarted coordinator reattached to the fit's call rather than dispatching it again.
    expect(m.targets['fit-regional']).toMatchObject({ outcome: 'built', remote: { reattached: true } });
    const count = dispatches(before);
    expect(count.size).toBeGreaterThan(0);
    expect([...count].filter(([, n]) => n > 1)).toEqual([]);

    // The same SHA and variables built locally: the same keys give the same output digests.
    const local = await cli(['pipeline', ...vars.filter((v) => v !== 'EXECUTOR=modal'), 'EXECUTOR=local', '--json'], { cache: cache('local'), env: { ...env, ...slow } });
    expect(local.code, local.stderr).toBe(0);
    const entries = (dir: string) => {
      const out = new Map<string, Record<string, string>>();
      for (const shard of readdirSync(join(dir, 'actions'))) {
        for (const f of readdirSync(join(dir, 'actions', shard))) {
          const e = parseEntry(readFileSync(join(dir, 'actions', shard, f), 'utf8')) as { key: string; outputs: Record<string, { digest: string }> };
          out.set(e.key, Object.fromEntries(Object.entries(e.outputs).map(([p, o]) => [p, o.digest])));
        }
      }
      return out;
    };
    const remoteEntries = entries(state());
    const localEntries = entries(cache('local'));
    const runKeys = Object.values(m.targets).map((t) => t.key).filter((k): k is string => Boolean(k));
    expect(runKeys.length).toBeGreaterThan(500);
    // One output embeds the run's own directory (validate_national_h5 prints "Loading <path>", as the
    // real script does), so no two runs share its bytes: compared without that line.
    const national = m.targets['national-validation']!.key!;
    for (const key of runKeys.filter((k) => k !== national)) expect(remoteEntries.get(key), key).toEqual(localEntries.get(key));
    const report = (dir: string, digest: string) => readFileSync(join(dir, 'cas', digest.slice(0, 2), digest), 'utf8').replace(/^Loading .*$/m, 'Loading <run>');
    const path = 'diagnostics/national_validation.txt';
    expect(report(state(), remoteEntries.get(national)![path]!)).toBe(report(cache('local'), localEntries.get(national)![path]!));
  }, 1_200_000);

  it('cancel stops the coordinator and its calls, marks the run cancelled and leaves no process', async () => {
    const before = new Set(standinCalls(standin).map((c) => c.id));
    const { runId, callId } = await detach({ EXAMPLE_FIT_SLEEP_MS: '5000' });
    for (const deadline = Date.now() + 300_000; ; await sleep(100)) {
      const fit = remoteMeta(runId).targets['fit-regional'];
      if (fit?.outcome === 'running' && typeof fit.remote?.callId === 'string') break;
      if (Date.now() > deadline) throw new Error('the fit was never dispatched');
    }
    const r = await cli(['cancel', `RUN_ID=${runId}`], { cache: cache('elsewhere'), env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`cancelled run ${runId}: \\d+ Modal call\\(s\\) stopped`));
    const m = remoteMeta(runId);
    expect(m.status).toBe('cancelled');
    expect(Object.values(m.targets).filter((t) => t.outcome === 'running')).toEqual([]);
    expect(m.targets['fit-regional']!.outcome).toBe('cancelled');
    // No process left: neither the coordinator's sessions nor any call this run started, nor anything under the stand-in.
    const spawned = standinCalls(standin).filter((c) => !before.has(c.id));
    expect(spawned.map((c) => c.id)).toContain(callId);
    // The launchers' watchdogs end the local actions of a killed coordinator: give them time (a loaded machine is slow), then say what is left.
    const left = () => [...spawned.filter((c) => isAlive(callPid(c.id))).map((c) => c.id), ...processes().filter((p) => p.environ.includes(`MODAL_STANDIN_DIR=${standin}\0`)).map((p) => p.cmdline)];
    await waitFor('the cancelled run\'s processes to end', () => left().length === 0 && !isAlive(callPid(callId, 'container.pid')), 30_000).catch(() => undefined);
    for (const c of spawned) expect(isAlive(callPid(c.id)), c.id).toBe(false);
    expect(isAlive(callPid(callId, 'container.pid'))).toBe(false);
    expect(processes().filter((p) => p.environ.includes(`MODAL_STANDIN_DIR=${standin}\0`)).map((p) => p.cmdline)).toEqual([]);
    // Cancelled once: a second cancel has nothing to do (exit 1); an unknown run is a usage error (exit 2).
    const again = await cli(['cancel', `RUN_ID=${runId}`], { cache: cache('elsewhere'), env });
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/is not running \(cancelled\); nothing to cancel/);
    const unknown = await cli(['cancel', `RUN_ID=${first.replace(/_\d{6}$/, '_000000')}`], { cache: cache('elsewhere'), env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/exists neither here nor on the Modal volume/);
  }, 900_000);
});
