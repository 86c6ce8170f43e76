import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gcRuns } from '../src/publish/gc-runs.ts';
import { promote, type PromoteInput } from '../src/publish/promote.ts';
import { openPublishStores, publishConfig, type PublishStores } from '../src/publish/config.ts';
import { releaseManifestPath, stagingPrefix } from '../src/publish/layout.ts';
import { readRegistry, registryBytes, parseRegistry, type Registry } from '../src/publish/registry.ts';
import { rollback } from '../src/publish/rollback.ts';
import { readMeta } from '../src/run.ts';
import { publishSection } from '../src/publish/run-publish.ts';
import { stageAndRecord } from '../src/publish/stage.ts';
import { storeFail, type Store } from '../src/stores/store.ts';
import { cleanup, tempDir } from './helpers.ts';
import { minutesAgo, recorder, stage, syntheticRun } from './publish-helpers.ts';

/**
 * Promote, rollback, gc and the registry against the local store, through the library (synthetic
 * runs, no Python): the refusals of preflight, honest partial failures swept over every store
 * call, and idempotent reruns. The same flows against the HF and GCS fakes are in
 * promote-remote.test.ts; through the real CLI in publish-cli.test.ts.
 */
let root: string;
beforeAll(() => {
  root = tempDir('promote');
});
afterAll(() => cleanup(root));

let n = 0;
async function setup(): Promise<{ cache: string; stores: PublishStores }> {
  const cache = join(root, `c${n++}`);
  const stores = await openPublishStores(publishConfig({}, {}, cache), { action: 'test', write: true });
  return { cache, stores };
}

const promoteInput = (cache: string, runId: string, stores: PublishStores, extra: Partial<PromoteInput> = {}): PromoteInput => ({
  cacheDir: cache,
  runId,
  stores,
  emit: recorder().emit,
  dryRun: false,
  confirm: async () => true,
  ...extra,
});

async function registryOf(stores: PublishStores): Promise<Registry> {
  const read = await readRegistry(stores.registryHome);
  if (!read.ok) throw new Error(read.failure.message);
  return read.value.registry;
}

/** A store whose Nth call (any method) fails as a dropped connection would, after retries. */
function failingOnCall(store: Store, nth: number): Store & { calls: () => number } {
  let calls = 0;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'calls') return () => calls;
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls++;
        if (calls === nth) return Promise.resolve(storeFail('transient', `injected failure on store call ${nth} (${String(prop)})`));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as Store & { calls: () => number };
}

describe('promote with the local store', () => {
  it('stages, promotes, refuses to repeat, lists, and rolls back as a new release', async () => {
    const { cache, stores } = await setup();
    const a = await syntheticRun(cache, { version: '2.0.0', at: minutesAgo(10) });
    await stage(cache, a, stores);
    // Staging wrote nothing under production paths.
    const everything = await stores.release.list('');
    expect(everything.ok && everything.value.every((e) => e.path.startsWith('staging/') || e.path.startsWith('calibration/runs/'))).toBe(true);

    const dry = await promote(promoteInput(cache, a.runId, stores, { dryRun: true }));
    expect(dry.ok && dry.value.status).toBe('dry-run');
    expect(await stores.release.stat('states/S000.h5')).toEqual({ ok: true, value: null });

    const declined = await promote(promoteInput(cache, a.runId, stores, { confirm: async () => false }));
    expect(declined.ok && declined.value.status).toBe('declined');
    expect((await registryOf(stores)).versions).toHaveLength(0);

    const first = await promote(promoteInput(cache, a.runId, stores));
    expect(first.ok && first.value.status).toBe('promoted');
    const registry = await registryOf(stores);
    expect(registry.current).toBe('2.0.0');
    expect(registry.versions[0]).toMatchObject({ version: '2.0.0', hf: null, gcs: null, pipeline_run_id: a.runId, diagnostics_path: `calibration/runs/${a.runId}/diagnostics/` });
    expect(Object.keys(registry.versions[0]!.local!.versions)).toHaveLength(498 + 1);
    const meta = await readMeta(cache, a.runId);
    expect(meta.ok && meta.value.status).toBe('promoted');
    expect(meta.ok && publishSection(meta.value).promote).toMatchObject({ version: '2.0.0', ok: true });
    // Production holds the run's bytes; the base dataset is released at the root.
    expect(await readFile(join(stores.config.release.kind === 'local' ? stores.config.release.dir : '', 'cps_2024.h5'))).toEqual(await readFile(join(a.dir, 'artifacts', 'cps_2024.h5')));

    const again = await promote(promoteInput(cache, a.runId, stores));
    expect(again.ok && again.value.status).toBe('already-promoted');

    // A second run, a second version; then roll back to the first as a new release.
    const b = await syntheticRun(cache, { version: '2.0.0', at: minutesAgo(5) });
    await stage(cache, b, stores);
    const sameVersion = await promote(promoteInput(cache, b.runId, stores));
    expect(!sameVersion.ok && sameVersion.failure.reason).toBe('version-exists');
    expect(await promote(promoteInput(cache, b.runId, stores, { version: '2.0.1' }))).toMatchObject({ ok: true });
    const dir = (stores.config.release as { dir: string }).dir;
    expect(await readFile(join(dir, 'states/S000.h5'))).toEqual(await readFile(join(b.dir, 'h5s/states/S000.h5')));

    const back = await rollback({ target: '2.0.0', newVersion: '2.0.2', stores, emit: recorder().emit, dryRun: false, confirm: async () => true });
    expect(back.ok && back.value.status).toBe('rolled-back');
    expect(await readFile(join(dir, 'states/S000.h5'))).toEqual(await readFile(join(a.dir, 'h5s/states/S000.h5')));
    const after = await registryOf(stores);
    expect(after.current).toBe('2.0.2');
    expect(after.versions.map((v) => v.version)).toEqual(['2.0.2', '2.0.1', '2.0.0']);
    expect(after.versions[0]).toMatchObject({ special_operation: 'roll-back', roll_back_version: '2.0.0', pipeline_run_id: a.runId });
    expect(existsSync(join(dir, releaseManifestPath('2.0.2')))).toBe(true);
    // Rerunning the rollback changes nothing; a taken NEW_VERSION is refused.
    expect(await rollback({ target: '2.0.0', newVersion: '2.0.2', stores, emit: recorder().emit, dryRun: false, confirm: async () => true })).toMatchObject({ ok: true });
    expect((await registryOf(stores)).versions).toHaveLength(3);
    const taken = await rollback({ target: '2.0.0', newVersion: '2.0.1', stores, emit: recorder().emit, dryRun: false, confirm: async () => true });
    expect(!taken.ok && taken.failure.reason).toBe('version-exists');
  });

  it('preflight refuses, before any write: incomplete runs, unstaged runs, wrong counts, tampered staging', async () => {
    const { cache, stores } = await setup();
    const failed = await syntheticRun(cache, { status: 'failed', at: minutesAgo(4) });
    expect(await promote(promoteInput(cache, failed.runId, stores))).toMatchObject({ ok: false, failure: { reason: 'run-not-completed' } });

    const unstaged = await syntheticRun(cache, { at: minutesAgo(3) });
    const notStaged = await promote(promoteInput(cache, unstaged.runId, stores));
    expect(notStaged).toMatchObject({ ok: false, failure: { reason: 'not-staged' } });
    expect(!notStaged.ok && notStaged.failure.message).toMatch(/\.\/build\.ts stage RUN_ID=/);

    const short = await syntheticRun(cache, { areas: { states: 50 }, at: minutesAgo(2) });
    const events = recorder();
    const staged = await stageAndRecord({ cacheDir: cache, runId: short.runId, release: stores.release, emit: events.emit });
    expect(staged.ok).toBe(true);
    expect(events.text()).toMatch(/states: 50 \(expected 51\)/);
    expect(await promote(promoteInput(cache, short.runId, stores))).toMatchObject({ ok: false, failure: { reason: 'area-count', message: expect.stringMatching(/states: 50 \(expected 51\)/) } });

    const tampered = await syntheticRun(cache, { at: minutesAgo(1) });
    await stage(cache, tampered, stores);
    const evil = join(root, 'evil.h5');
    await writeFile(evil, 'not the staged bytes');
    await stores.release.putFiles([{ localPath: evil, path: `${stagingPrefix(tampered.runId)}districts/D007.h5` }], { message: 'tamper', mode: 'overwrite' });
    const mismatch = await promote(promoteInput(cache, tampered.runId, stores));
    expect(mismatch).toMatchObject({ ok: false, failure: { reason: 'staging-mismatch', message: expect.stringMatching(/districts\/D007\.h5 has 20 bytes/) } });

    // Nothing reached production or the registry.
    const listed = await stores.release.list('');
    expect(listed.ok && listed.value.filter((e) => !/^(staging|calibration\/runs)\//.test(e.path))).toEqual([]);
    for (const run of [failed, unstaged, short, tampered]) {
      const meta = await readMeta(cache, run.runId);
      expect(meta.ok && meta.value.status).not.toBe('promoted');
    }
  });

  it('diagnostics and staging are append-only: a changed file is an error, never an overwrite', async () => {
    const { cache, stores } = await setup();
    const run = await syntheticRun(cache);
    await stage(cache, run, stores);
    // Staging the same run again writes nothing.
    const events = recorder();
    expect((await stageAndRecord({ cacheDir: cache, runId: run.runId, release: stores.release, emit: events.emit })).ok).toBe(true);
    expect(events.text()).toMatch(/0 written/);
    await writeFile(join(run.dir, 'diagnostics', 'calibration_log.csv'), 'epoch,loss\n1,999\n');
    const again = await stageAndRecord({ cacheDir: cache, runId: run.runId, release: stores.release, emit: recorder().emit });
    expect(again).toMatchObject({ ok: false, failure: { reason: 'append-only-violation' } });
    const meta = await readMeta(cache, run.runId);
    expect(meta.ok && publishSection(meta.value).stageError).toMatch(/append-only-violation/);
  });

  it('a store failing on its Nth call, for every N: never half promoted, registry untouched, the rerun completes', async () => {
    const { cache, stores } = await setup();
    // How many store calls a clean promote makes, on a twin setup.
    const twin = await setup();
    const probeRun = await syntheticRun(twin.cache, { at: minutesAgo(30) });
    await stage(twin.cache, probeRun, twin.stores);
    const counting = failingOnCall(twin.stores.release, Number.MAX_SAFE_INTEGER);
    const probeStores = { ...twin.stores, release: counting, registryHome: counting };
    expect(await promote(promoteInput(twin.cache, probeRun.runId, probeStores))).toMatchObject({ ok: true });
    const total = counting.calls();
    expect(total).toBeGreaterThan(6);

    for (let nth = 1; nth <= total; nth++) {
      const run = await syntheticRun(cache, { version: `3.0.${nth}`, at: minutesAgo(100 - nth) });
      await stage(cache, run, stores);
      const faulty = failingOnCall(stores.release, nth);
      // A lease left behind by a failed release must not block the rerun in this same process.
      const result = await promote(promoteInput(cache, run.runId, { ...stores, release: faulty, registryHome: faulty }, { leaseTtlMs: 1 }));
      const registered = (await registryOf(stores)).versions.some((v) => v.version === `3.0.${nth}`);
      const meta = await readMeta(cache, run.runId);
      if (!result.ok) {
        expect(registered, `call ${nth}: a failed promote left a registry entry`).toBe(false);
        expect(meta.ok && meta.value.status, `call ${nth}`).toBe('completed');
        if (result.failure.steps) expect(result.failure.steps.some((s) => s.status === 'failed')).toBe(true);
      } else {
        // The injected failure hit a step whose failure only warns (releasing the lease).
        expect(registered).toBe(true);
        expect(meta.ok && meta.value.status).toBe('promoted');
      }
      const rerun = await promote(promoteInput(cache, run.runId, stores));
      expect(rerun.ok, `call ${nth}: rerun failed: ${rerun.ok ? '' : rerun.failure.message}`).toBe(true);
      const entries = (await registryOf(stores)).versions.filter((v) => v.version === `3.0.${nth}`);
      expect(entries).toHaveLength(1);
      expect((await readMeta(cache, run.runId)).ok && ((await readMeta(cache, run.runId)) as { value: { status: string } }).value.status).toBe('promoted');
    }
  }, 300_000); // ~14 promotes of 499 files each, plus their reruns

  it('gc removes old unpromoted runs and their staging, never promoted or referenced ones', async () => {
    const { cache, stores } = await setup();
    const promoted = await syntheticRun(cache, { version: '4.0.0', at: minutesAgo(50) });
    await stage(cache, promoted, stores);
    expect(await promote(promoteInput(cache, promoted.runId, stores))).toMatchObject({ ok: true });
    const old = [];
    for (let i = 0; i < 4; i++) {
      const run = await syntheticRun(cache, { version: '4.0.0', at: minutesAgo(40 - i) });
      await stage(cache, run, stores);
      old.push(run);
    }
    const dry = await gcRuns({ cacheDir: cache, keep: 1, stores, emit: recorder().emit, dryRun: true });
    expect(dry.ok && dry.value.removed.map((r) => r.runId)).toEqual([old[2]!.runId, old[1]!.runId, old[0]!.runId]);
    expect(existsSync(old[0]!.dir)).toBe(true);

    const done = await gcRuns({ cacheDir: cache, keep: 1, stores, emit: recorder().emit, dryRun: false });
    expect(done.ok && done.value.removed).toHaveLength(3);
    for (const run of old.slice(0, 3)) {
      expect(existsSync(run.dir)).toBe(false);
      const staged = await stores.release.list(stagingPrefix(run.runId));
      expect(staged.ok && staged.value).toEqual([]);
      // Diagnostics are append-only and stay.
      const diag = await stores.release.list(`calibration/runs/${run.runId}/`);
      expect(diag.ok && diag.value.length).toBeGreaterThan(0);
    }
    expect(existsSync(old[3]!.dir)).toBe(true);
    expect(existsSync(promoted.dir)).toBe(true);
    const kept = await stores.release.list(stagingPrefix(promoted.runId));
    expect(kept.ok && kept.value.length).toBe(499);
    // Production and the registry are untouched.
    expect((await registryOf(stores)).current).toBe('4.0.0');
    expect((await stores.release.stat('states/S000.h5')).ok).toBe(true);
  });
});

describe('registry document', () => {
  it('round-trips the real schema and keeps keys it does not know', () => {
    const real = {
      current: '1.73.0',
      versions: [
        {
          version: '1.73.0',
          created_at: '2026-04-25T10:00:00Z',
          hf: { repo: 'policyengine/policyengine-us-data', commit: '0123456789abcdef0123456789abcdef01234567' },
          gcs: { bucket: 'policyengine-us-data', generations: { 'states/AL.h5': 1714039200000000 } },
          special_operation: 'roll-back',
          roll_back_version: '1.72.3',
          policyengine_us: { version: '1.500.0', git_commit: 'abc' },
        },
        { version: '1.72.3', created_at: '2026-04-20T10:00:00Z', hf: null, gcs: { bucket: 'policyengine-us-data', generations: {} }, pipeline_run_id: '1.72.3_abc12345_20260420_100000', diagnostics_path: 'calibration/runs/1.72.3_abc12345_20260420_100000/diagnostics/' },
      ],
    };
    const bytes = new TextEncoder().encode(JSON.stringify(real));
    const parsed = parseRegistry(bytes, 'test');
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const again = JSON.parse(new TextDecoder().decode(registryBytes(parsed.value))) as unknown;
    expect(again).toEqual(real);
    expect(Object.keys((again as typeof real).versions[1]!)).toEqual(['version', 'created_at', 'hf', 'gcs', 'pipeline_run_id', 'diagnostics_path']);
    expect(parseRegistry(new TextEncoder().encode('{"current": 3}'), 'test')).toMatchObject({ ok: false, failure: { reason: 'registry-corrupt' } });
  });
});
