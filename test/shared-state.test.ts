import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StandinTransport } from '../src/executors/modal/standin.ts';
import { statePaths } from '../src/executors/modal/remote-state.ts';
import { REGISTRY_PATH } from '../src/publish/layout.ts';
import { FakeHfHub, type FakeRepoId } from './fakes/fake-hf-hub.ts';
import { APP_DIR, killStandinCalls, modalPython, standinCalls, transfers } from './modal-helpers.ts';
import { built, CLI, cleanup, cli, cliEnv, exampleRepo, SMALL, summary, tempDir, waitFor } from './helpers.ts';

/**
 * The run state every machine shares on the Modal volume (src/executors/modal/remote-state.ts),
 * through the real CLI and the stand-in. A "remote" run is what a coordinator leaves there: a
 * real build of the example with BUILD_CACHE_DIR=<stand-in>/volume/build/state (the coordinator runs
 * the CLI exactly so). A second machine is another BUILD_CACHE_DIR and HOME with the same
 * MODAL_STANDIN_DIR and the same store (the Hugging Face test server, as two operators share one
 * HF repository); it reads the volume only through the stand-in's transport.
 */
const SENTINEL = 'hf_SENTINELshared0123456789';
const hub = new FakeHfHub({ tokens: [SENTINEL] });

interface Machine {
  cache: string;
  env: Record<string, string>;
}

let work: string;
let repo: string;
let python: string;

beforeAll(async () => {
  python = modalPython();
  repo = exampleRepo();
  work = tempDir('shared-state');
  await hub.start();
});
afterAll(async () => {
  // A test that failed mid-build may leave stand-in calls running.
  for (const standin of ['standin-runs', 'standin-cache']) killStandinCalls(join(work, standin));
  await hub.close();
  cleanup(repo, work);
});

/** A machine of its own (cache and HOME) on the stand-in at `standin`. */
function machine(name: string, standin: string, extra: Record<string, string> = {}): Machine {
  return { cache: join(work, name, 'cache'), env: { HOME: join(work, name, 'home'), MODAL_STANDIN_DIR: standin, BUILD_MODAL_PYTHON: python, BUILD_MODAL_BATCH_QUIET_MS: '300', ...extra } };
}

/** What a coordinator leaves: the CLI with the volume's state/ as its cache dir, and no Modal of its own. */
function coordinator(standin: string, extra: Record<string, string> = {}): Machine {
  return { cache: join(standin, 'volume', 'build', 'state'), env: { HOME: join(work, 'coordinator-home'), ...extra } };
}

const on = (m: Machine, args: string[], env: Record<string, string> = {}) => cli(args, { cache: m.cache, env: { ...m.env, ...env } });

describe('a run on the volume, seen from another machine', () => {
  let standin: string;
  let hfRepo: FakeRepoId;
  let publish: Record<string, string>;
  let runId: string;

  beforeAll(() => {
    standin = join(work, 'standin-runs');
    hfRepo = { type: 'model', name: 'org/shared-state' };
    hub.createRepo(hfRepo);
    publish = { HF_TOKEN: SENTINEL, HF_ENDPOINT: hub.url, HF_REPO: hfRepo.name };
  });

  it('status lists it beside local runs, marked standin; logs -f follows it to the end; promote publishes it from the store', async () => {
    const remote = coordinator(standin, publish);
    const started = await on(remote, ['pipeline', `REPO=${repo}`, ...SMALL, '--detach']);
    expect(started.code, started.stderr).toBe(0);
    runId = started.stdout.trim();

    // Machine B follows it to its end, while it runs.
    const b = machine('B', standin, publish);
    const followed = await on(b, ['logs', `RUN_ID=${runId}`, '-f']);
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toMatch(new RegExp(`completed: \\d+ built, \\d+ cached, 0 failed.*\\(run ${runId}\\)`));
    expect(followed.stdout).toContain(`./build.ts promote RUN_ID=${runId}`);

    // B lists it beside a local run of its own (made after it: run ids are per second).
    const local = await on(b, ['acs', `REPO=${repo}`, ...SMALL, 'PUBLISH=0', '--json']);
    expect(local.code, local.stderr).toBe(0);
    const listed = await on(b, ['status', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = listed.events.filter((e) => e.event === 'run');
    expect(rows.find((r) => r.runId === summary(local).runId)).toMatchObject({ where: 'local' });
    expect(rows.find((r) => r.runId === runId)).toMatchObject({ where: 'standin', status: 'completed' });

    const one = await on(b, ['status', `RUN_ID=${runId}`]);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/where\s+standin/);
    expect(one.stdout).toMatch(/status\s+completed/);
    expect(one.stdout).toMatch(/built\s+fit-regional/);
    const targetLog = await on(b, ['logs', `RUN_ID=${runId}`, 'database']);
    expect(targetLog.code).toBe(0);
    expect(targetLog.stdout).toContain('validate_database: OK');
    // B's cache holds no run directory of it: the volume's files are read into a mirror.
    expect(readdirSync(join(b.cache, 'runs'))).toEqual([summary(local).runId]);

    // Its review page, from the diagnostics on the volume.
    const report = await on(b, ['report', `RUN_ID=${runId}`]);
    expect(report.code, report.stderr).toBe(0);
    const page = /: (\/\S+\.html) /.exec(report.stdout)![1]!;
    expect(page.startsWith(join(b.cache, 'remote'))).toBe(true);
    expect(readFileSync(page, 'utf8')).toContain(runId);

    const plan = await on(b, ['promote', `RUN_ID=${runId}`, '-n']);
    expect(plan.code, plan.stderr + plan.stdout).toBe(0);
    expect(plan.stdout).toContain(`promote run ${runId} as version`);
    const promoted = await on(b, ['promote', `RUN_ID=${runId}`, '--yes']);
    expect(promoted.code, promoted.stderr + promoted.stdout).toBe(0);
    const registry = JSON.parse(hub.fileAt(hfRepo, 'main', REGISTRY_PATH)!.toString()) as { versions: { pipeline_run_id: string }[] };
    expect(registry.versions.map((v) => v.pipeline_run_id)).toEqual([runId]);
    expect(hub.fileAt(hfRepo, 'main', 'states/CA.h5')).toEqual(readFileSync(join(remote.cache, 'runs', runId, 'h5s', 'states', 'CA.h5')));
    // The run's record on the volume says so, for every machine (its coordinator has ended).
    expect(JSON.parse(readFileSync(join(remote.cache, 'runs', runId, 'meta.json'), 'utf8')).status).toBe('promoted');
    const again = await on(machine('C', standin, publish), ['status', `RUN_ID=${runId}`, '--json']);
    expect(again.events.find((e) => e.event === 'run')).toMatchObject({ status: 'promoted', where: 'standin' });
    expect(`${listed.stdout}${followed.stdout}${promoted.stdout}${promoted.stderr}`).not.toContain(SENTINEL);
  });

  it('fetch downloads a remote run\'s outputs into the local cache, byte-identical', async () => {
    const c = machine('C', standin);
    const fetched = await on(c, ['fetch', `RUN_ID=${runId}`, 'h5:states/CA', 'database', '--json']);
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(fetched.events.find((e) => e.event === 'fetched')).toMatchObject({ event: 'fetched', where: 'standin', files: 3, downloaded: 3 });
    const mirror = readdirSync(join(c.cache, 'remote'));
    for (const rel of ['h5s/states/CA.h5', 'artifacts/policy_data.db']) {
      expect(readFileSync(join(c.cache, 'remote', mirror[0]!, 'runs', runId, rel)), rel).toEqual(readFileSync(join(standin, 'volume', 'build', 'state', 'runs', runId, rel)));
    }
  });

  it('a machine building the same SHA with EXECUTOR=modal takes the coordinator\'s entries: nothing built, nothing dispatched, the same bytes', async () => {
    const d = machine('D', standin);
    const goals = ['diagnostics', 'h5:states/DE', 'h5:cities/NYC'];
    const r = await on(d, [...goals, `REPO=${repo}`, ...SMALL, 'EXECUTOR=modal', 'PUBLISH=0', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(built(r)).toEqual([]);
    expect(standinCalls(standin)).toEqual([]);
    // The coordinator kept its outputs in its own cache dir's store (build/state/cas): fetched from there.
    const got = await on(d, ['fetch', 'h5:states/DE', 'diagnostics', `RUN_ID=${summary(r).runId}`]);
    expect(got.code, got.stderr).toBe(0);
    for (const rel of ['h5s/states/DE.h5', 'diagnostics/unified_diagnostics.csv']) {
      expect(readFileSync(join(d.cache, 'runs', summary(r).runId as string, rel)), rel).toEqual(readFileSync(join(standin, 'volume', 'build', 'state', 'runs', runId, rel)));
    }
  });

  it('explain RUN_ID=<remote run> reads that run\'s record of the target and names what changed since its entry', async () => {
    const c = machine('C', standin);
    const vars = [`REPO=${repo}`, ...SMALL.map((v) => (v.startsWith('HOUSEHOLDS=') ? 'HOUSEHOLDS=301' : v))];
    const r = await on(c, ['explain', 'acs', `RUN_ID=${runId}`, ...vars]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`in run ${runId} \\(standin\\): built on local, entry [0-9a-f]{12}:\n\\s+since then: var HOUSEHOLDS: 300 -> 301`));
    const same = await on(c, ['explain', 'acs', `RUN_ID=${runId}`, `REPO=${repo}`, ...SMALL]);
    expect(same.stdout).toMatch(/since then: nothing changed/);
    const unknown = await on(c, ['explain', 'acs', 'RUN_ID=1.0.0_abcdef12_20260101_000000', `REPO=${repo}`]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/run 1\.0\.0_abcdef12_20260101_000000 exists neither locally nor on standin/);
  });

  it('a run whose coordinator died for good is shown as interrupted, with the command that resumes it', async () => {
    const remote = coordinator(standin, { BUILD_HEARTBEAT_MS: '200', EXAMPLE_FIT_SLEEP_MS: '200' });
    const started = await on(remote, ['pipeline', `REPO=${repo}`, ...SMALL, 'PUBLISH=0', 'SEED=7', '--detach', '--json']);
    expect(started.code, started.stderr).toBe(0);
    const detached = started.events.find((e) => e.event === 'detached')!;
    const dying = detached.runId as string;
    const pid = detached.pid as number;
    const metaFile = join(remote.cache, 'runs', dying, 'meta.json');
    await waitFor('the run to reach its fits', () => JSON.parse(readFileSync(metaFile, 'utf8')).targets['calibration-package']?.outcome === 'built', 120_000);
    // The coordinator and its actions go at once, as a container lost for good would.
    process.kill(-pid, 'SIGKILL');

    const b = machine('B', standin);
    const status = await waitFor('the heartbeat to go stale', () => {
      const lines = execCli(b, ['status', `RUN_ID=${dying}`, '--json']).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const r = lines.find((e) => e.event === 'run')!;
      return r.status === 'interrupted' ? r : undefined;
    }, 30_000);
    expect(status).toMatchObject({ where: 'standin', resume: `./build.ts pipeline EXECUTOR=modal RUN_ID=${dying} --detach` });
    const text = await on(b, ['status', `RUN_ID=${dying}`]);
    expect(text.stdout).toContain(`resume it with ./build.ts pipeline EXECUTOR=modal RUN_ID=${dying} --detach`);
    const list = await on(b, ['status']);
    expect(list.stdout).toMatch(new RegExp(`${dying}\\s+interrupted\\s+standin.*coordinator lost; resume: ./build.ts pipeline EXECUTOR=modal RUN_ID=${dying} --detach`));
    const followed = await on(b, ['logs', `RUN_ID=${dying}`, '-f']);
    expect(followed.code).toBe(1);
    expect(followed.stderr).toBe(`run ${dying} is interrupted: its coordinator is gone; resume it with ./build.ts pipeline EXECUTOR=modal RUN_ID=${dying} --detach\n`);
  });

  it('a volume that cannot be read is one warning, and status shows the local runs', async () => {
    // A Modal token but a client that cannot run: no stand-in, so the real transport is asked.
    const b = { cache: machine('B', standin).cache, env: { HOME: join(work, 'B', 'home'), MODAL_TOKEN_ID: 'ak-test', BUILD_MODAL_PYTHON: '/bin/false' } };
    const r = await on(b, ['status']);
    expect(r.code).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^warning: cannot read the runs on modal:pipeline-artifacts \(.*\); showing local runs only$/)]);
    expect(r.stdout).toMatch(/\s+completed\s+local\s+/);
    const missing = await on(b, ['status', 'RUN_ID=1.0.0_abcdef12_20260101_000000']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error: run 1\.0\.0_abcdef12_20260101_000000 is not in the local cache, and the runs on modal:pipeline-artifacts cannot be read: /m);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('the action cache on the volume, shared by machines building with EXECUTOR=modal', () => {
  const GOALS = ['diagnostics', 'h5:states/DE', 'h5:districts/DE-01', 'h5:cities/NYC', 'h5:national/US'];
  let standin: string;

  beforeAll(() => {
    standin = join(work, 'standin-cache');
  });

  it('a second machine building the same SHA builds nothing, dispatches nothing, and its outputs are byte-identical', async () => {
    const args = [...GOALS, `REPO=${repo}`, ...SMALL, 'NUM_WORKERS=2', 'EXECUTOR=modal', 'PUBLISH=0', '--json'];
    const a = machine('A', standin);
    const first = await on(a, args);
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect(built(first).length).toBeGreaterThan(10);
    const calls = standinCalls(standin).length;
    expect(calls).toBeGreaterThan(0);
    // Every entry A made is on the volume, with its outputs there too.
    const keys = first.events.filter((e) => e.event === 'target' && e.outcome === 'built' && e.target !== 'python-env').map((e) => e.key as string);
    for (const key of keys) expect(existsSync(join(standin, 'volume', statePaths.action(key))), key).toBe(true);

    const b = machine('B', standin);
    // B's dry run says what its build will do: nothing to run, every target from the shared cache,
    // and it writes nothing to B's cache (the entries and the area list are read into a temporary directory).
    const files = () => (existsSync(b.cache) ? readdirSync(b.cache, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(b.cache.length + 1)) : []);
    const before = new Set(files());
    const plan = await on(b, [...args.filter((a) => a !== '--json'), '-n', '--json']);
    expect(plan.code, plan.stderr + plan.stdout).toBe(0);
    expect(plan.events.filter((e) => e.event === 'plan' && e.action === 'run').map((e) => e.target)).toEqual([]);
    expect(summary(plan)).toMatchObject({ status: 'dry-run', wouldRun: 0, cached: (summary(first).built as number) + (summary(first).cached as number) });
    const fromShared = plan.events.filter((e) => e.event === 'target' && e.fromSharedCache === true).map((e) => e.target as string);
    expect(fromShared).toEqual(expect.arrayContaining(['database', 'fit-regional', 'h5:states/DE']));
    expect(files().filter((f) => !before.has(f) && /^(actions|cas|runs|remote)\//.test(f))).toEqual([]);
    const text = await on(b, [...args.filter((a) => a !== '--json'), '-n']);
    expect(text.stdout).toMatch(/dry run: 0 would run, \d+ cached/);
    // explain agrees with -n (one code path).
    const why = await on(b, ['explain', 'fit-regional', ...args.slice(GOALS.length).filter((a) => a !== '--json')]);
    expect(why.code, why.stderr).toBe(0);
    expect(why.stdout).toMatch(/^fit-regional: cached: nothing changed; the build would use entry [0-9a-f]{12} from the shared cache \(another machine built it\)/);

    const sentBefore = transfers(standin).length;
    const second = await on(b, args);
    expect(second.code, second.stderr + second.stdout).toBe(0);
    expect(built(second)).toEqual([]);
    expect(second.events.filter((e) => e.event === 'target' && e.fromSharedCache === true).map((e) => e.target as string).sort()).toEqual(fromShared.sort());
    const secondMeta = JSON.parse(readFileSync(join(b.cache, 'runs', summary(second).runId as string, 'meta.json'), 'utf8')) as { targets: Record<string, { fromSharedCache?: true }> };
    expect(Object.entries(secondMeta.targets).filter(([, t]) => t.fromSharedCache).map(([n]) => n).sort()).toEqual(fromShared.sort());
    expect(summary(second).cached).toBe((summary(first).built as number) + (summary(first).cached as number));
    expect(standinCalls(standin)).toHaveLength(calls);
    // B downloaded entries, and of the outputs only the area list (the scheduler reads it to
    // expand the fan-out): no local action needed any other.
    const runMeta = JSON.parse(readFileSync(join(a.cache, 'runs', summary(first).runId as string, 'meta.json'), 'utf8')) as { targets: Record<string, { outputs: Record<string, { digest: string }> }> };
    const list = Object.values(runMeta.targets['area-list']!.outputs).map((o) => statePaths.blob(o.digest).replace(/^build\/state\//, 'build/'));
    const moved = transfers(standin).slice(sentBefore);
    expect(moved.every((t) => t.op === 'get'), JSON.stringify(moved.slice(0, 3))).toBe(true);
    const blobs = moved.flatMap((t) => t.paths).filter((p) => !p.startsWith('build/state/actions/'));
    expect(blobs.length).toBeGreaterThan(0);
    expect(blobs.filter((p) => !list.includes(p))).toEqual([]);

    // The outputs, asked for: byte-identical on both machines.
    for (const [m, r] of [[a, first], [b, second]] as const) {
      const got = await on(m, ['fetch', 'h5:states/DE', 'h5:cities/NYC', 'diagnostics', 'fit-regional', `RUN_ID=${summary(r).runId}`, '--json']);
      expect(got.code, got.stderr).toBe(0);
    }
    const runA = summary(first).runId as string;
    const runB = summary(second).runId as string;
    for (const rel of ['h5s/states/DE.h5', 'h5s/cities/NYC.h5', 'diagnostics/unified_diagnostics.csv', 'artifacts/calibration_weights.npy']) {
      expect(readFileSync(join(b.cache, 'runs', runB, rel)), rel).toEqual(readFileSync(join(a.cache, 'runs', runA, rel)));
    }
  });

  it('a corrupt entry on the volume is a miss with a warning: rebuilt here, the rest still shared', async () => {
    const args = [...GOALS, `REPO=${repo}`, ...SMALL, 'NUM_WORKERS=2', 'EXECUTOR=modal', 'PUBLISH=0', '--json'];
    const a = machine('A', standin);
    const acs = JSON.parse(readFileSync(join(a.cache, 'runs', readdirSync(join(a.cache, 'runs'))[0]!, 'meta.json'), 'utf8')).targets.acs.key as string;
    writeFileSync(join(standin, 'volume', statePaths.action(acs)), '{"key": "not this one"}\n');
    const before = new Set(standinCalls(standin).map((c) => c.id));
    const r = await on(machine('E', standin), args);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.events.filter((e) => e.event === 'warning').map((e) => e.message)).toEqual([expect.stringMatching(new RegExp(`^the shared cache entry build/state/actions/../${acs}\\.json on standin:.* is corrupt \\(.*\\); it is not trusted$`))]);
    expect(built(r)).toEqual(['acs']);
    // acs is a data target, which EXECUTOR=modal runs on Modal: its one call is the only new one.
    const fresh = standinCalls(standin).filter((c) => !before.has(c.id));
    expect(fresh.map((c) => [c.function, c.keys])).toEqual([['run_data', [r.events.find((e) => e.event === 'target' && e.target === 'acs')!.key]]]);
  });

  it('a put of a digest the volume holds is a no-op', async () => {
    const transport = new StandinTransport({ dir: standin, python, appDir: APP_DIR, volume: 'v' });
    const blobs = readdirSync(join(standin, 'volume', 'build', 'cas'));
    const shard = blobs[0]!;
    const digest = readdirSync(join(standin, 'volume', 'build', 'cas', shard))[0]!;
    const local = join(work, 'not-the-blob');
    writeFileSync(local, 'other bytes');
    const before = transfers(standin).length;
    expect(await transport.put([{ local, remote: `build/cas/${shard}/${digest}` }])).toBe(0);
    expect(transfers(standin)).toHaveLength(before);
    expect(readFileSync(join(standin, 'volume', 'build', 'cas', shard, digest)).toString()).not.toBe('other bytes');
  });
});

/** The CLI, synchronously (for polling inside waitFor). */
function execCli(m: Machine, args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], { env: { ...cliEnv(m.cache), ...m.env }, encoding: 'utf8' });
}
