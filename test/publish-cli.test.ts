import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPublishStores, publishConfig } from '../src/publish/config.ts';
import { REGISTRY_PATH, stagingPrefix } from '../src/publish/layout.ts';
import { FakeGcs } from './fakes/fake-gcs.ts';
import { FakeHfHub, type FakeRepoId } from './fakes/fake-hf-hub.ts';
import { cleanup, cli, exampleRepo, outcomes, SMALL, summary, tempDir, type CliResult } from './helpers.ts';
import { minutesAgo, stage, syntheticRun } from './publish-helpers.ts';

/**
 * The publishing flow through the real CLI on the example pipeline: `pipeline` (diagnostics and
 * staging, nothing in production) -> `promote` (refused without --yes off a terminal, `-n` plan,
 * then for real) -> `versions` -> a second release -> `rollback` -> `BUILD_DB=0` -> `gc`, first
 * with the local store (no account), then against the HF and GCS fakes with a sentinel token that
 * must never appear in any output, log, meta.json or store. Both flows share one cache, so the
 * second one's pipeline runs are cache hits.
 */
const SENTINEL = 'hf_SENTINELcli0123456789abcdef';
const hub = new FakeHfHub({ tokens: [SENTINEL], leakAuthInErrors: true });
const gcs = new FakeGcs();
const outputs: string[] = [];
let repo: string;
let cache: string;

beforeAll(async () => {
  repo = exampleRepo();
  cache = join(tempDir('publish-cli'), 'cache');
  await hub.start();
  await gcs.start();
});
afterAll(async () => {
  await hub.close();
  await gcs.close();
  cleanup(repo, join(cache, '..'));
});

async function run(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const result = await cli([...args, `REPO=${repo}`], { cache, env });
  outputs.push(result.stdout, result.stderr);
  return result;
}

const published = (result: CliResult, step: string) => result.events.filter((e) => e.event === 'publish' && e.step === step);

/** Every file under a directory, relative paths. */
function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)));
}

/** Two full pipelines and a promote flow each: allow for a loaded two-core machine. */
const LONG_FLOW_MS = 300_000;

describe('publishing through the CLI', () => {
  const local: { a?: string; b?: string } = {};

  it('local store: pipeline stages, promote needs --yes, -n plans, promote, versions, a second release, rollback, BUILD_DB=0, gc', async () => {
    const store = join(cache, 'store');
    const first = await run(['pipeline', ...SMALL, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const runA = summary(first).runId as string;
    local.a = runA;
    expect(published(first, 'diagnostics')).toHaveLength(1);
    expect(published(first, 'staging')[0]!.data).toMatchObject({ totals: { national: 1, states: 51, districts: 436, cities: 1 } });
    expect(first.events.at(-1)?.event).toBe('summary');
    // Diagnostics and staging only: nothing under a production path.
    const files = walk(store).filter((f) => !f.startsWith('.store/'));
    expect(files.length).toBeGreaterThan(490);
    expect(files.filter((f) => !f.startsWith(stagingPrefix(runA)) && !f.startsWith(`calibration/runs/${runA}/diagnostics/`))).toEqual([]);
    expect(files).toContain(`calibration/runs/${runA}/diagnostics/meta.json`);
    expect(files).toContain(`${stagingPrefix(runA)}manifest.json`);

    const noYes = await run(['promote', `RUN_ID=${runA}`]);
    expect(noYes.code).toBe(2);
    expect(noYes.stderr).toMatch(/stdin is not a terminal; review the plan with -n, then pass --yes/);
    const plan = await run(['promote', `RUN_ID=${runA}`, '-n']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/promote run .* as version 1\.72\.3/);
    expect(plan.stdout).toMatch(/districts\s+436 files/);
    expect(plan.stdout).toMatch(/calibration\/policy_data\.db -> calibration\/policy_data\.db/);
    expect(plan.stdout).toMatch(/destinations, in order: file:/);
    expect(existsSync(join(store, 'states/CA.h5'))).toBe(false);

    const promoted = await run(['promote', `RUN_ID=${runA}`, '--yes']);
    expect(promoted.code, promoted.stdout + promoted.stderr).toBe(0);
    expect(promoted.stdout).toMatch(/promoted run .* as version 1\.72\.3/);
    expect(readFileSync(join(store, 'states/CA.h5'))).toEqual(readFileSync(join(cache, 'runs', runA, 'h5s/states/CA.h5')));
    const status = await run(['status', `RUN_ID=${runA}`, '--json']);
    expect(status.events.find((e) => e.event === 'run')?.status).toBe('promoted');

    const second = await run(['pipeline', ...SMALL, 'EPOCHS=31', '--json']);
    expect(second.code, second.stderr).toBe(0);
    const runB = summary(second).runId as string;
    local.b = runB;
    const taken = await run(['promote', `RUN_ID=${runB}`, '--yes']);
    expect(taken.code).toBe(1);
    expect(taken.stdout).toMatch(/version 1\.72\.3 is already registered \(from run .*\); pass VERSION=/);
    expect((await run(['promote', `RUN_ID=${runB}`, 'VERSION=1.72.4', '--yes'])).code).toBe(0);
    expect(readFileSync(join(store, 'states/CA.h5'))).toEqual(readFileSync(join(cache, 'runs', runB, 'h5s/states/CA.h5')));

    const back = await run(['rollback', 'VERSION=1.72.3', 'NEW_VERSION=1.72.5', '--yes']);
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(readFileSync(join(store, 'states/CA.h5'))).toEqual(readFileSync(join(cache, 'runs', runA, 'h5s/states/CA.h5')));
    const versions = await run(['versions']);
    expect(versions.code).toBe(0);
    expect(versions.stdout).toMatch(/\* 1\.72\.5 .* roll-back to 1\.72\.3/);
    expect(versions.stdout.split('\n').filter((l) => /^\s+1\.72\.[34] /.test(l))).toHaveLength(2);
    const registry = JSON.parse(readFileSync(join(store, REGISTRY_PATH), 'utf8'));
    expect(registry.current).toBe('1.72.5');
    expect(registry.versions.map((v: { version: string }) => v.version)).toEqual(['1.72.5', '1.72.4', '1.72.3']);

    // BUILD_DB=0: the database is the current version's, downloaded at its pin; nothing downstream changes.
    const fromRegistry = await run(['pipeline', ...SMALL, 'BUILD_DB=0', 'PUBLISH=0', '--json']);
    expect(fromRegistry.code, fromRegistry.stderr).toBe(0);
    const runC = summary(fromRegistry).runId as string;
    expect(outcomes(fromRegistry).get('database')).toBe('built');
    expect(readFileSync(join(cache, 'runs', runC, 'logs/database.log'), 'utf8')).toMatch(/downloading calibration\/policy_data\.db of version 1\.72\.5 from file:/);
    expect(readFileSync(join(cache, 'runs', runC, 'artifacts/policy_data.db'))).toEqual(readFileSync(join(cache, 'runs', runA, 'artifacts/policy_data.db')));
    expect(outcomes(fromRegistry).get('cps')).toBe('cached');
    expect(published(fromRegistry, 'staging')).toHaveLength(0);

    // gc: the unpromoted run goes (no staging: PUBLISH=0), the promoted ones stay.
    const gc = await run(['gc', 'KEEP=0']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(existsSync(join(cache, 'runs', runC))).toBe(false);
    expect(existsSync(join(cache, 'runs', runA))).toBe(true);
    expect(existsSync(join(cache, 'runs', runB))).toBe(true);
    expect(gc.stdout).toMatch(new RegExp(`keeping run ${runA} \\((referenced by version|promoted)`));
  }, LONG_FLOW_MS);

  it('bad input is refused before any work: run ids with .. or /, no registered version for BUILD_DB=0, missing token', async () => {
    for (const bad of ['../etc', 'a/b']) {
      const r = await run(['promote', `RUN_ID=${bad}`, '--yes']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/path separator/);
    }
    const empty = join(tempDir('empty-store'), 'store');
    const runsBefore = readdirSync(join(cache, 'runs')).length;
    const noVersion = await run(['pipeline', ...SMALL, 'BUILD_DB=0', `STORE_DIR=${empty}`]);
    expect(noVersion.code).toBe(2);
    expect(noVersion.stderr).toMatch(/BUILD_DB=0 takes calibration\/policy_data\.db from the current registered version, but file:.* has none; build the database with BUILD_DB=1/);
    const noToken = await run(['pipeline', ...SMALL, 'HF_REPO=org/nowhere'], { HF_TOKEN: '', HUGGING_FACE_TOKEN: '' });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/publishing the run .* writes to Hugging Face repo org\/nowhere and needs a token: set HF_TOKEN/);
    const promoteNoToken = await run(['promote', `RUN_ID=${local.a ?? '1.0.0_abcdef12_20260101_000000'}`, 'HF_REPO=org/nowhere', '--yes'], { HF_TOKEN: '', HUGGING_FACE_TOKEN: '' });
    expect(promoteNoToken.code).toBe(2);
    expect(promoteNoToken.stderr).toMatch(/promote of run .* needs a token/);
    expect(readdirSync(join(cache, 'runs')).length).toBe(runsBefore);
  });

  it('two promotes racing through the CLI leave one consistent registry', async () => {
    const store = join(tempDir('race-store'), 'store');
    const stores = await openPublishStores(publishConfig({ STORE_DIR: store }, {}, cache), { action: 'test', write: true });
    const a = await syntheticRun(cache, { version: '11.0.0', at: minutesAgo(3) });
    const b = await syntheticRun(cache, { version: '11.0.1', at: minutesAgo(2) });
    await stage(cache, a, stores);
    await stage(cache, b, stores);
    const results = await Promise.all([run(['promote', `RUN_ID=${a.runId}`, `STORE_DIR=${store}`, '--yes']), run(['promote', `RUN_ID=${b.runId}`, `STORE_DIR=${store}`, '--yes'])]);
    for (const r of results) if (r.code !== 0) expect(r.stdout).toMatch(/another publish holds the lease/);
    const ok = results.filter((r) => r.code === 0).length;
    expect(ok).toBeGreaterThanOrEqual(1);
    let registry = JSON.parse(readFileSync(join(store, REGISTRY_PATH), 'utf8'));
    expect(registry.versions).toHaveLength(ok);
    for (const [i, r] of results.entries()) if (r.code !== 0) expect((await run(['promote', `RUN_ID=${[a, b][i]!.runId}`, `STORE_DIR=${store}`, '--yes'])).code).toBe(0);
    registry = JSON.parse(readFileSync(join(store, REGISTRY_PATH), 'utf8'));
    expect(registry.versions.map((v: { version: string }) => v.version).sort()).toEqual(['11.0.0', '11.0.1']);
  });

  it('stage retries a run\'s publishing; pipeline --clean-old-runs removes old unpromoted runs only', async () => {
    const store = join(tempDir('stage-store'), 'store');
    const old = await syntheticRun(cache, { version: '12.0.0', at: minutesAgo(600) });
    const plan = await run(['promote', `RUN_ID=${old.runId}`, `STORE_DIR=${store}`, '-n']);
    expect(plan.code).toBe(1);
    expect(plan.stdout).toMatch(/was not staged; stage it with \.\/build\.ts stage RUN_ID=/);
    const staged = await run(['stage', `RUN_ID=${old.runId}`, `STORE_DIR=${store}`]);
    expect(staged.code, staged.stdout + staged.stderr).toBe(0);
    expect(staged.stdout).toMatch(/then \.\/build\.ts promote RUN_ID=/);
    expect((await run(['promote', `RUN_ID=${old.runId}`, `STORE_DIR=${store}`, '-n'])).code).toBe(0);

    const cleaned = await run(['pipeline', ...SMALL, `STORE_DIR=${store}`, '--clean-old-runs', 'KEEP=0', '--json']);
    expect(cleaned.code, cleaned.stderr).toBe(0);
    const current = summary(cleaned).runId as string;
    expect(existsSync(join(cache, 'runs', old.runId))).toBe(false);
    expect(walk(store).filter((f) => f.startsWith(stagingPrefix(old.runId)))).toEqual([]);
    expect(existsSync(join(cache, 'runs', current))).toBe(true);
    expect(walk(store).some((f) => f.startsWith(stagingPrefix(current)))).toBe(true);
    for (const id of [local.a!, local.b!]) expect(existsSync(join(cache, 'runs', id))).toBe(true);
  });

  it('HF + GCS (fakes): the same flow, one commit per batch, generations recorded, and the token never shows', async () => {
    const id = randomBytes(4).toString('hex');
    const hfRepo: FakeRepoId = { type: 'model', name: `policyengine/us-data-${id}` };
    const bucket = `us-data-${id}`;
    hub.createRepo(hfRepo);
    gcs.createBucket(bucket);
    const env = { HF_TOKEN: SENTINEL, HF_ENDPOINT: hub.url, GCS_ENDPOINT: gcs.url, HF_REPO: hfRepo.name, GCS_BUCKET: bucket };

    const first = await run(['pipeline', ...SMALL, '--json'], env);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const runA = summary(first).runId as string;
    expect(hub.fileAt(hfRepo, 'main', `${stagingPrefix(runA)}manifest.json`)).toBeDefined();
    expect(hub.fileAt(hfRepo, 'main', `calibration/runs/${runA}/diagnostics/meta.json`)).toBeDefined();
    expect(hub.history(hfRepo)).toHaveLength(3); // initial, diagnostics, staging
    expect(hub.fileAt(hfRepo, 'main', 'states/CA.h5')).toBeUndefined();

    const promoted = await run(['promote', `RUN_ID=${runA}`, '--yes', '--json'], env);
    expect(promoted.code, promoted.stdout + promoted.stderr).toBe(0);
    const done = promoted.events.find((e) => e.event === 'publish' && e.step === 'done') as { data: { entry: { hf: { commit: string }; gcs: { generations: Record<string, number> } } } };
    const entry = done.data.entry;
    const history = hub.history(hfRepo);
    expect(history).toHaveLength(5); // + one copy commit, + the registry mirror
    expect(entry.hf.commit).toBe(history[1]!.oid);
    expect(hub.fileAt(hfRepo, entry.hf.commit, 'states/CA.h5')).toEqual(readFileSync(join(cache, 'runs', runA, 'h5s/states/CA.h5')));
    expect(entry.gcs.generations['states/CA.h5']).toBe(Number(gcs.live(bucket, 'states/CA.h5')!.generation));
    // 489 areas, 8 calibration files, 3 released datasets (cps, enhanced, small enhanced), the release manifest.
    expect(Object.keys(entry.gcs.generations)).toHaveLength(489 + 8 + 3 + 1);
    expect(gcs.live(bucket, REGISTRY_PATH)!.content.toString()).toBe(hub.fileAt(hfRepo, 'main', REGISTRY_PATH)!.toString());

    const second = await run(['pipeline', ...SMALL, 'EPOCHS=31', '--json'], env);
    expect(second.code, second.stderr).toBe(0);
    const runB = summary(second).runId as string;
    expect((await run(['promote', `RUN_ID=${runB}`, 'VERSION=1.72.4', '--yes'], env)).code).toBe(0);
    const back = await run(['rollback', 'VERSION=1.72.3', 'NEW_VERSION=1.72.5', '--yes'], env);
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(gcs.live(bucket, 'states/CA.h5')!.content).toEqual(readFileSync(join(cache, 'runs', runA, 'h5s/states/CA.h5')));
    expect(hub.fileAt(hfRepo, 'main', 'states/CA.h5')).toEqual(readFileSync(join(cache, 'runs', runA, 'h5s/states/CA.h5')));
    const versions = await run(['versions'], env);
    expect(versions.stdout).toMatch(/\* 1\.72\.5 .* roll-back to 1\.72\.3/);

    const fromRegistry = await run(['pipeline', ...SMALL, 'BUILD_DB=0', '--json'], env);
    expect(fromRegistry.code, fromRegistry.stderr).toBe(0);
    const runC = summary(fromRegistry).runId as string;
    expect(readFileSync(join(cache, 'runs', runC, 'logs/database.log'), 'utf8')).toMatch(new RegExp(`from hf:${hfRepo.name}@main at [0-9a-f]{40}`));

    const gc = await run(['gc', 'KEEP=0'], env);
    expect(gc.code, gc.stdout + gc.stderr).toBe(0);
    expect(hub.fileAt(hfRepo, 'main', `${stagingPrefix(runC)}manifest.json`)).toBeUndefined();
    expect(hub.fileAt(hfRepo, 'main', `${stagingPrefix(runA)}manifest.json`)).toBeDefined();
    expect(hub.fileAt(hfRepo, 'main', `calibration/runs/${runC}/diagnostics/meta.json`)).toBeDefined();

    // A Hub that echoes the Authorization header in its errors: still no token in our output.
    const leaky = await run(['versions', 'HF_REPO=org/does-not-exist'], { ...env, GCS_BUCKET: '' });
    expect(leaky.code).not.toBe(0);
    outputs.push(leaky.stdout, leaky.stderr);

    const everything = [...outputs];
    for (const file of walk(cache).filter((f) => f.startsWith('runs/') && (f.endsWith('.json') || f.endsWith('.log')))) {
      if (statSync(join(cache, file)).size < 5_000_000) everything.push(readFileSync(join(cache, file), 'utf8'));
    }
    everything.push(hub.fileAt(hfRepo, 'main', `calibration/runs/${runA}/diagnostics/meta.json`)!.toString());
    everything.push(gcs.live(bucket, REGISTRY_PATH)!.content.toString());
    expect(everything.join('\n')).not.toContain('SENTINEL');
  }, LONG_FLOW_MS);
});
