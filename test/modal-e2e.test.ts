import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgv } from '../src/cli/argv.ts';
import { parseEntry } from '../src/caching/cache.ts';
import { digestFile } from '../src/caching/hash.ts';
import { isAlive } from '../src/caching/action-lock.ts';
import { cleanup, cli, commitChange, exampleRepo, git, outcomes, SMALL, startCli, summary, tempDir, type CliResult } from './helpers.ts';
import { modalPython, standinCalls, transfers } from './modal-helpers.ts';
import type { RunRequest } from '../src/executors/modal/protocol.ts';
import { DB_STEPS } from '../tasks/data.ts';

/**
 * The example pipeline with EXECUTOR=modal against the local stand-in, through the real CLI: the
 * calibration package, both fits and the areas run "remotely" (the same runner code, in detached
 * processes, with a directory as the volume), and everything Modal promises is checked on the
 * outcome: the same keys and bytes as a local run, nothing uploaded twice, one stale area
 * rebuilt alone, a killed orchestrator's call reattached rather than dispatched again, a
 * tampered checkout refused. A handful of areas stands for the 489 (the same code path).
 */
const GOALS = ['diagnostics', 'h5:states/DE', 'h5:districts/DE-01', 'h5:cities/NYC', 'h5:national/US'];
/** The data build (issue 14): on `run_data`, each action its own call, as the real data build's resources. */
const DATA = [
  'prerequisites-revision', 'prerequisites', ...DB_STEPS.map((s) => s.target),
  'acs', 'irs-puf', 'cps', 'puf', 'extended-cps', 'stratified-cps', 'source-imputed-cps',
];
const REMOTE = [...DATA, 'calibration-package', 'fit-regional', 'fit-national', 'h5:states/DE', 'h5:districts/DE-01', 'h5:cities/NYC', 'h5:national/US'];

interface Entry {
  key: string;
  executor: string;
  outputs: Record<string, { digest: string; size: number; remote?: string }>;
}

/** target -> its committed cache entry. */
function entries(cache: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const root = join(cache, 'actions');
  for (const shard of readdirSync(root)) {
    for (const f of readdirSync(join(root, shard))) {
      const e = parseEntry(readFileSync(join(root, shard, f), 'utf8')) as Entry & { target: string };
      out.set(e.target, e);
    }
  }
  return out;
}

interface Meta {
  runId: string;
  targets: Record<string, { outcome: string; key?: string; executor?: string; remote?: Record<string, unknown> }>;
}
const meta = (cache: string, runId: string) => JSON.parse(readFileSync(join(cache, 'runs', runId, 'meta.json'), 'utf8')) as Meta;
const runIdOf = (r: CliResult) => summary(r).runId as string;

describe('EXECUTOR=modal on the example pipeline (stand-in)', () => {
  let repo: string;
  let work: string;
  let standin: string;
  let env: Record<string, string>;
  const cache = (name: string) => join(work, name);
  let common: string[];
  let runA: string;

  beforeAll(() => {
    const python = modalPython();
    repo = exampleRepo();
    work = tempDir('modal-e2e');
    standin = join(work, 'standin');
    env = { MODAL_STANDIN_DIR: standin, BUILD_MODAL_PYTHON: python, BUILD_MODAL_BATCH_QUIET_MS: '300' };
    common = [`REPO=${repo}`, ...SMALL, 'NUM_WORKERS=2', '--json'];
  });
  afterAll(() => cleanup(repo, work));

  const remote = (goals: string[], cacheName: string, extra: Record<string, string> = {}, vars: string[] = []) =>
    cli([...goals, ...common, 'EXECUTOR=modal', ...vars], { cache: cache(cacheName), env: { ...env, ...extra } });

  it('an unknown GPU type is refused at start, before anything is dispatched', async () => {
    const r = await remote(GOALS, 'refused', {}, ['GPU=K80']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/GPU=K80 is invalid/);
    expect(existsSync(join(standin, 'calls'))).toBe(false);
  });

  it('runs the package, both fits and the areas remotely; local targets get remote outputs downloaded first', async () => {
    const r = await remote(GOALS, 'A');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).not.toContain('MaxListenersExceededWarning');
    runA = runIdOf(r);
    const events = r.events.filter((e) => e.event === 'target');
    for (const t of REMOTE) expect(events.find((e) => e.target === t), t).toMatchObject({ outcome: 'built', executor: 'modal' });
    expect(events.find((e) => e.target === 'diagnostics')).toMatchObject({ outcome: 'built', executor: 'local' });

    const m = meta(cache('A'), runA);
    expect(m.targets['fit-regional']!.remote).toMatchObject({ callId: expect.stringMatching(/^sc-/), function: 'run_t4', resourceClass: 'T4', batchSize: 1 });
    const fit = m.targets['fit-regional']!.remote!;
    expect(fit.gpuSeconds).toBe(fit.runSeconds);
    expect(typeof fit.queueSeconds).toBe('number');
    expect(m.targets['calibration-package']!.remote).toMatchObject({ function: 'run_cpu', gpuSeconds: 0 });
    // The database and dataset targets were calls of their own on run_data (the stand-in's calls name them).
    const calls = standinCalls(standin);
    for (const t of DATA) {
      expect(m.targets[t]!.remote, t).toMatchObject({ function: 'run_data', resourceClass: 'data', batchSize: 1, gpuSeconds: 0 });
      expect(calls.filter((c) => c.keys.includes(m.targets[t]!.key!)).map((c) => [c.function, c.keys.length]), t).toEqual([['run_data', 1]]);
    }
    // Four areas over NUM_WORKERS=2: LPT puts NYC (11) alone and the three weight-1 areas together.
    const areaCalls = new Map<string, string[]>();
    for (const t of REMOTE.filter((n) => n.startsWith('h5:'))) {
      const rem = m.targets[t]!.remote!;
      expect(rem.function).toBe('run_areas');
      areaCalls.set(rem.callId as string, [...(areaCalls.get(rem.callId as string) ?? []), t]);
    }
    expect([...areaCalls.values()].map((ts) => ts.sort()).sort()).toEqual([['h5:cities/NYC'], ['h5:districts/DE-01', 'h5:national/US', 'h5:states/DE']]);
    // One worker process per batch: in the call of three, the two regional areas are one batch
    // command over both items (the national area, another batch group, runs its own command).
    const three = standinCalls(standin).find((c) => c.keys.length === 3)!;
    const sent = (JSON.parse(readFileSync(join(standin, 'calls', three.id, 'request.json'), 'utf8')) as { request: RunRequest }).request;
    const regional = ['h5:districts/DE-01', 'h5:states/DE'].map((t) => m.targets[t]!.key!);
    expect(sent.batches?.map((b) => [...b.keys].sort())).toEqual([regional.sort()]);
    expect(JSON.parse(sent.batches![0]!.command[sent.batches![0]!.command.indexOf('--work-items') + 1]!)).toHaveLength(2);
    expect(existsSync(join(standin, 'volume', 'build', 'logs', `batch-${sent.batches![0]!.keys[0]}.log`))).toBe(true);

    // Outputs stay on the volume; diagnostics (local) got the fit files downloaded and verified.
    const e = entries(cache('A'));
    const fitOut = e.get('fit-regional')!.outputs['artifacts/unified_run_config.json']!;
    expect(fitOut.remote).toBe(`standin:${standin}`);
    expect(e.get('h5:states/DE')!.outputs['h5s/states/DE.h5']!.remote).toBe(`standin:${standin}`);
    expect(existsSync(join(cache('A'), 'runs', runA, 'h5s', 'states', 'DE.h5'))).toBe(false);
    const copied = await digestFile(join(cache('A'), 'runs', runA, 'diagnostics', 'unified_run_config.json'));
    expect(copied.digest).toBe(fitOut.digest);
  });

  it('-n names where each target would run; MODAL_TARGETS moves a local target there too', async () => {
    // A volume of its own: on the shared one, -n would find A's entries there (the shared action cache) and say cached.
    const own = { MODAL_STANDIN_DIR: join(work, 'standin-plan') };
    const plan = await remote(GOALS, 'plan', own, ['MODAL_TARGETS=area-list', '-n']);
    expect(plan.code, plan.stderr).toBe(0);
    const where = (t: string) => plan.events.find((e) => e.event === 'plan' && e.target === t) as { executor?: string; resourceClass?: string } | undefined;
    expect(where('db-age')).toMatchObject({ executor: 'modal', resourceClass: 'data' });
    expect(where('fit-regional')).toMatchObject({ executor: 'modal', resourceClass: 'T4' });
    expect(where('area-list')).toMatchObject({ executor: 'modal', resourceClass: 'cpu' });
    expect(where('diagnostics')).toMatchObject({ executor: 'local' });
    const text = await cli([...GOALS, `REPO=${repo}`, ...SMALL, 'EXECUTOR=modal', 'MODAL_TARGETS=area-list', '-n'], { cache: cache('plan'), env: { ...env, ...own } });
    expect(text.stdout).toMatch(/^would run database \[modal data\]  \(/m);
    expect(text.stdout).toMatch(/^would run area-list \[modal cpu\]  \(/m);
    expect(text.stdout).toMatch(/^would run diagnostics  \(/m);
    expect(existsSync(join(cache('plan'), 'runs'))).toBe(false);
    // A name that matches nothing: one line, exit 2, nothing dispatched.
    const bad = await remote(GOALS, 'plan', {}, ['MODAL_TARGETS=area-lst']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('error: MODAL_TARGETS: area-lst names no target (did you mean area-list?); see ./build.ts targets\n');
  });

  it('MODAL_TARGETS alone (EXECUTOR=local) sends the targets it names, globs included, and only those', async () => {
    // A volume of its own: on the shared one A's entries would answer these keys (the shared action cache).
    const own = join(work, 'standin-M');
    const r = await cli(['area-list', ...common, 'EXECUTOR=local', 'MODAL_TARGETS=area-list,db-*'], { cache: cache('M'), env: { ...env, MODAL_STANDIN_DIR: own } });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const m = meta(cache('M'), runIdOf(r));
    expect(m.targets['area-list']).toMatchObject({ outcome: 'built', executor: 'modal', remote: { function: 'run_cpu' } });
    expect(m.targets['db-age']).toMatchObject({ outcome: 'built', executor: 'modal', remote: { function: 'run_data' } });
    // `database` is not matched by db-*: it ran here, on the last ETL step's output downloaded from the volume.
    expect(m.targets.database).toMatchObject({ outcome: 'built', executor: 'local' });
    expect(m.targets['python-env']!.executor).toBe('local');
    const fresh = standinCalls(own);
    expect(fresh.find((c) => c.keys.includes(m.targets['area-list']!.key!))?.function).toBe('run_cpu');
    expect(fresh.some((c) => c.keys.includes(m.targets.database!.key!))).toBe(false);
  });

  it('gives the same keys and the same output bytes as a local run', async () => {
    const r = await cli([...GOALS, ...common, 'EXECUTOR=local'], { cache: cache('L'), env });
    expect(r.code, r.stderr).toBe(0);
    const remoteRun = entries(cache('A'));
    const localRun = entries(cache('L'));
    expect([...remoteRun.keys()].sort()).toEqual([...localRun.keys()].sort());
    for (const [target, a] of remoteRun) {
      const b = localRun.get(target)!;
      expect(a.key, target).toBe(b.key);
      const digests = (x: Entry) => Object.fromEntries(Object.entries(x.outputs).map(([p, o]) => [p, o.digest]));
      expect(digests(a), target).toEqual(digests(b));
      expect(a.executor).toBe(REMOTE.includes(target) ? 'modal' : b.executor);
    }
  });

  it('a rerun from a fresh cache against the same volume uploads nothing: the shared action cache answers', async () => {
    const puts = transfers(standin).filter((t) => t.op === 'put').length;
    const r = await remote(GOALS, 'B');
    expect(r.code, r.stderr).toBe(0);
    expect(transfers(standin).filter((t) => t.op === 'put').length).toBe(puts);
    const m = meta(cache('B'), runIdOf(r));
    // A's entries, from the volume's build/state/actions (test/shared-state.test.ts): nothing dispatched again.
    for (const t of REMOTE) expect(m.targets[t], t).toMatchObject({ outcome: 'cached', remote: { saved: true } });
    expect(new Map([...entries(cache('B'))].map(([t, e]) => [t, e.key]))).toEqual(new Map([...entries(cache('A'))].map(([t, e]) => [t, e.key])));
  });

  it('a change to the area worker rebuilds the areas alone, in LPT batches; only the new commit travels', async () => {
    const before = new Set(standinCalls(standin).map((c) => c.id));
    const puts = transfers(standin).filter((t) => t.op === 'put');
    const file = 'modal_app/worker_script.py';
    commitChange(repo, file, `${readFileSync(join(repo, file), 'utf8')}\n# a comment that changes no output\n`, 'worker comment');
    const r = await remote(GOALS, 'B');
    expect(r.code, r.stderr).toBe(0);
    const built = [...outcomes(r)].filter(([, o]) => o === 'built').map(([t]) => t).sort();
    expect(built).toEqual(REMOTE.filter((t) => t.startsWith('h5:')).sort());
    const fresh = standinCalls(standin).filter((c) => !before.has(c.id));
    expect(fresh.map((c) => [c.function, c.keys.length]).sort()).toEqual([['run_areas', 1], ['run_areas', 3]]);
    // Only the new commit travelled, as a small incremental bundle (the adapters were on the volume).
    // Beside it, the rebuilt areas' new entries join the shared action cache (one small file each).
    const sent = transfers(standin).filter((t) => t.op === 'put').slice(puts.length);
    const entriesSent = sent.filter((t) => t.paths.every((p) => p.startsWith('build/state/actions/')));
    expect(entriesSent.flatMap((t) => t.paths)).toHaveLength(built.length);
    const others = sent.filter((t) => !entriesSent.includes(t));
    expect(others.map((t) => t.paths)).toEqual([[expect.stringMatching(/^build\/git\/bundles\/[0-9a-f]{40}\.bundle$/)]]);
    expect(others[0]!.bytes).toBeLessThan(2000);
  });

  /** Starts a slowed fit, SIGKILLs the orchestrator once the call id is recorded; returns the run id and call id. */
  async function killMidFit(sleepMs: string): Promise<{ runId: string; callId: string; pid: number }> {
    const runs = join(cache('A'), 'runs');
    const known = new Set(readdirSync(runs));
    const child = startCli(['fit-regional', ...common, 'EXECUTOR=modal'], { cache: cache('A'), env: { ...env, EXAMPLE_FIT_SLEEP_MS: sleepMs } });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`no call id recorded:\n${child.output()}`);
      const runId = readdirSync(runs).find((d) => !known.has(d));
      const callId = runId && existsSync(join(runs, runId, 'meta.json')) ? (meta(cache('A'), runId).targets['fit-regional']?.remote?.callId as string | undefined) : undefined;
      if (runId && callId) {
        child.kill('SIGKILL');
        await new Promise((r) => child.on('close', r));
        const pid = Number(readFileSync(join(standin, 'calls', callId, 'pid'), 'utf8'));
        return { runId, callId, pid };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const fitCalls = (key: string) => standinCalls(standin).filter((c) => c.keys.includes(key));

  it('an orchestrator killed mid-fit: the rerun reattaches to the running call instead of dispatching again', async () => {
    const { callId, pid } = await killMidFit('150');
    expect(isAlive(pid)).toBe(true); // the remote fit outlived its orchestrator
    const r = await remote(['fit-regional'], 'A', { EXAMPLE_FIT_SLEEP_MS: '150' });
    expect(r.code, r.stderr).toBe(0);
    const m = meta(cache('A'), runIdOf(r));
    expect(m.targets['fit-regional']).toMatchObject({ outcome: 'built', executor: 'modal', remote: { callId, reattached: true } });
    expect(fitCalls(m.targets['fit-regional']!.key!)).toHaveLength(1);
  });

  // Issue 13, item 6: a kill between spawn and the journal write made the rerun dispatch the same
  // actions again, and they ran twice. The runner now claims the key: the second call waits for
  // the first one's result and returns it.
  it('killed between spawn and journal (injected): the rerun\'s call for the same key does not run it again', async () => {
    const runs = join(cache('A'), 'runs');
    const known = new Set(readdirSync(runs));
    const killed = await remote(['fit-regional'], 'A', { EXAMPLE_FIT_SLEEP_MS: '90', MODAL_STANDIN_FAULT: 'kill-after-spawn' });
    expect(killed.code).toBeNull(); // SIGKILLed by the injected fault
    expect(readdirSync(runs).filter((d) => !known.has(d))).toHaveLength(1);
    const journaled = new Set(existsSync(join(cache('A'), 'modal', 'calls')) ? readdirSync(join(cache('A'), 'modal', 'calls')) : []);
    const r = await remote(['fit-regional'], 'A', { EXAMPLE_FIT_SLEEP_MS: '90' });
    expect(r.code, r.stderr).toBe(0);
    const m = meta(cache('A'), runIdOf(r));
    const key = m.targets['fit-regional']?.key;
    expect(m.targets['fit-regional']).toMatchObject({ outcome: 'built' });
    expect(journaled.has(`${key}.json`)).toBe(false); // the killed run never journaled its call
    const calls = fitCalls(key!);
    expect(calls).toHaveLength(2); // dispatched twice...
    const results = calls.map((c) => {
      const state = JSON.parse(readFileSync(join(standin, 'calls', c.id, 'result.json'), 'utf8')) as { value: { results: { key: string; startedAt: number; reused?: boolean }[] } };
      return state.value.results.find((x) => x.key === key)!;
    });
    // ...but run once: both calls answer with the one execution's result.
    expect(new Set(results.map((x) => x.startedAt)).size).toBe(1);
    expect(results.filter((x) => x.reused)).toHaveLength(1);
  });

  it('RESUME=<run id> reattaches from that run\'s recorded call ids even without the journal', async () => {
    const { runId, callId } = await killMidFit('120');
    rmSync(join(cache('A'), 'modal', 'calls'), { recursive: true, force: true });
    const r = await remote(['fit-regional'], 'A', { EXAMPLE_FIT_SLEEP_MS: '120' }, [`RESUME=${runId}`]);
    expect(r.code, r.stderr).toBe(0);
    const m = meta(cache('A'), runIdOf(r));
    expect(m.targets['fit-regional']!.remote).toMatchObject({ callId, reattached: true });
    expect(fitCalls(m.targets['fit-regional']!.key!)).toHaveLength(1);
  });

  it('a preempted fit resumes from its own checkpoint, kept on the volume under its action key', async () => {
    const vars = [`REPO=${repo}`, 'HOUSEHOLDS=300', 'N_CLONES=2', 'EPOCHS=250', 'LOG_FREQ=100', 'NATIONAL_EPOCHS=30', '--json', 'EXECUTOR=modal'];
    const slow = { ...env, EXAMPLE_FIT_SLEEP_MS: '20' };
    const runs = join(cache('A'), 'runs');
    const known = new Set(readdirSync(runs));
    const child = startCli(['fit-regional', ...vars], { cache: cache('A'), env: slow });
    let key = '';
    let callId = '';
    for (const deadline = Date.now() + 60_000; !callId; await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > deadline) throw new Error(child.output());
      const runId = readdirSync(runs).find((d) => !known.has(d));
      const t = runId && existsSync(join(runs, runId, 'meta.json')) ? meta(cache('A'), runId).targets['fit-regional'] : undefined;
      if (t?.remote?.callId) [key, callId] = [t.key!, t.remote.callId as string];
    }
    const checkpoint = join(standin, 'volume', 'build', 'checkpoints', key, 'calibration_weights.checkpoint.pt');
    for (const deadline = Date.now() + 60_000; !existsSync(checkpoint); await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > deadline) throw new Error(`no checkpoint at ${checkpoint}`);
    }
    // The container is preempted: its whole process group (the stand-in call is a session leader).
    process.kill(-Number(readFileSync(join(standin, 'calls', callId, 'pid'), 'utf8')), 'SIGKILL');
    const code = await new Promise((r) => child.on('close', r));
    expect(code).toBe(1);
    expect(child.output()).toMatch(/"reason":"remote-preempted"/);

    const r = await cli(['fit-regional', ...vars], { cache: cache('A'), env: slow });
    expect(r.code, r.stderr).toBe(0);
    const log = readFileSync(join(runs, runIdOf(r), 'logs', 'fit-regional.log'), 'utf8');
    const resumed = new RegExp(`fit: checkpoint .*/checkpoints/${key}/calibration_weights\\.checkpoint\\.pt at epoch (100|200) of 250; running (150|50) more`).exec(log);
    expect(resumed, log).not.toBeNull();
    expect(Number(resumed![1]) + Number(resumed![2])).toBe(250);
    expect(fitCalls(key)).toHaveLength(2);
    // The epoch log stayed beside the checkpoint on the volume and was appended up to 250, no further.
    const entry = parseEntry(readFileSync(join(cache('A'), 'actions', key.slice(0, 2), `${key}.json`), 'utf8')) as Entry;
    const out = entry.outputs['artifacts/calibration_log.csv']!;
    const rows = readFileSync(join(standin, 'volume', 'build', 'cas', out.digest.slice(0, 2), out.digest), 'utf8').trim().split('\n').slice(1);
    expect([...new Set(rows.map((row) => Number(row.split(',').at(-7))))]).toEqual([100, 200, 250]);
  });

  it('./build.ts fetch downloads a remote-resident output into the run, verified', async () => {
    const { fetchCommand } = await import('../src/cli/fetch-command.ts');
    const { readSettings } = await import('../src/cli/settings.ts');
    const settings = readSettings({ ...process.env, BUILD_CACHE_DIR: cache('A') });
    const events: unknown[] = [];
    const logger = { emit: (e: unknown) => void events.push(e), close: () => undefined };
    expect(await fetchCommand({ words: ['h5:states/DE'], argv: parseArgv(['fetch', 'h5:states/DE', `RUN_ID=${runA}`, '--json'], 2), settings, logger })).toBe(0);
    expect(events).toEqual([expect.objectContaining({ event: 'fetched', runId: runA })]);
    const file = join(cache('A'), 'runs', runA, 'h5s', 'states', 'DE.h5');
    expect((await digestFile(file)).digest).toBe(entries(cache('A')).get('h5:states/DE')!.outputs['h5s/states/DE.h5']!.digest);
  });

  it('a checkout on the volume that is not at the pinned SHA is refused', async () => {
    const trees = join(standin, 'volume', 'build', 'trees');
    const sha = git(repo, 'rev-parse', 'HEAD');
    expect(existsSync(join(trees, sha))).toBe(true);
    const tree = join(trees, sha);
    execFileSync('git', ['-C', tree, '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'tampered']);
    try {
      const r = await remote(['fit-regional'], 'A', { EXAMPLE_FIT_SLEEP_MS: '1' });
      expect(r.code).toBe(1);
      const failed = r.events.find((e) => e.event === 'target' && e.target === 'fit-regional');
      expect(failed).toMatchObject({ outcome: 'failed', reason: 'sha-mismatch' });
      expect(String(failed!.error)).toMatch(new RegExp(`refusing to run: the checkout .* is at [0-9a-f]{40}, not the pinned ${sha}`));
    } finally {
      execFileSync('git', ['-C', tree, 'reset', '-q', '--hard', sha]);
    }
  });
});
