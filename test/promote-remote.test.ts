import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { promote, type PromoteInput } from '../src/publish/promote.ts';
import { openPublishStores, publishConfig, type PublishStores } from '../src/publish/config.ts';
import { MANIFEST_NAME, REGISTRY_PATH, releaseManifestPath, stagingPrefix } from '../src/publish/layout.ts';
import { addEntry, readRegistry, updateRegistry, type Registry, type VersionEntry } from '../src/publish/registry.ts';
import { rollback } from '../src/publish/rollback.ts';
import { readMeta } from '../src/run.ts';
import { publishSection } from '../src/publish/run-publish.ts';
import { parseManifest } from '../src/publish/staging-manifest.ts';
import type { Store } from '../src/stores/store.ts';
import { FakeGcs } from './fakes/fake-gcs.ts';
import { FakeHfHub, type FakeRepoId } from './fakes/fake-hf-hub.ts';
import { cleanup, tempDir } from './helpers.ts';
import { minutesAgo, noWaitRetry, recorder, stage, syntheticRun, type SyntheticRun } from './publish-helpers.ts';

/**
 * Promote, rollback and the registry against the Hugging Face and GCS fakes (test servers that
 * speak the Hub's and the JSON API's protocols, with fault injection): one commit per batch, the
 * real commit OID and the upload-returned generations recorded; faults (a store failing after N
 * files, a 412, timeouts, answers lost after the write landed); racing promotes and racing
 * registry writers. Everything emitted is grepped for the sentinel token.
 */
const SENTINEL = 'hf_SENTINELpublish0123456789';
const hub = new FakeHfHub({ tokens: [SENTINEL], leakAuthInErrors: true });
const gcs = new FakeGcs();
const seen: string[] = [];
let root: string;

beforeAll(async () => {
  root = tempDir('promote-remote');
  await hub.start();
  await gcs.start();
});
afterEach(() => {
  hub.faults.clear();
  gcs.faults.clear();
});
afterAll(async () => {
  expect(seen.join('\n')).not.toContain(SENTINEL);
  expect(seen.join('\n')).not.toContain('SENTINEL');
  await hub.close();
  await gcs.close();
  cleanup(root);
});

interface World {
  cache: string;
  stores: PublishStores;
  repo: FakeRepoId;
  bucket: string;
}

async function world(options: { requestTimeoutMs?: number } = {}): Promise<World> {
  const id = randomBytes(4).toString('hex');
  const repo: FakeRepoId = { type: 'model', name: `org/us-data-${id}` };
  const bucket = `bucket-${id}`;
  hub.createRepo(repo);
  gcs.createBucket(bucket);
  const cache = join(root, id);
  const env = { HF_TOKEN: SENTINEL, HF_ENDPOINT: hub.url, GCS_ENDPOINT: gcs.url };
  const stores = await openPublishStores(publishConfig({ HF_REPO: repo.name, GCS_BUCKET: bucket }, env, cache), { action: 'test', write: true }, { env, retry: noWaitRetry(3), requestTimeoutMs: options.requestTimeoutMs ?? 5_000 });
  return { cache, stores, repo, bucket };
}

function promoteInput(w: World, runId: string, extra: Partial<PromoteInput> = {}): PromoteInput & { events: ReturnType<typeof recorder> } {
  const events = recorder([SENTINEL]);
  return { cacheDir: w.cache, runId, stores: w.stores, emit: events.emit, dryRun: false, confirm: async () => true, events, ...extra };
}

async function run(input: PromoteInput & { events: ReturnType<typeof recorder> }) {
  const result = await promote(input);
  seen.push(input.events.text(), JSON.stringify(result));
  return result;
}

async function registry(store: Store): Promise<Registry> {
  const read = await readRegistry(store);
  if (!read.ok) throw new Error(read.failure.message);
  return read.value.registry;
}

const registryText = (w: World, where: 'hf' | 'gcs'): string | undefined =>
  where === 'hf' ? hub.fileAt(w.repo, 'main', REGISTRY_PATH)?.toString() : gcs.live(w.bucket, REGISTRY_PATH)?.content.toString();

async function stagedRun(w: World, options: Parameters<typeof syntheticRun>[1] = {}): Promise<SyntheticRun> {
  const r = await syntheticRun(w.cache, options);
  await stage(w.cache, r, w.stores);
  return r;
}

/** Production paths of a run (from its staged manifest) plus the release manifest. */
async function releasePaths(w: World, r: SyntheticRun, version: string): Promise<string[]> {
  const bytes = hub.fileAt(w.repo, 'main', `${stagingPrefix(r.runId)}${MANIFEST_NAME}`)!;
  const parsed = parseManifest(new Uint8Array(bytes));
  if (!parsed.ok) throw new Error(parsed.failure.message);
  return [...Object.keys(parsed.value.files).map((rel) => rel.replace(/^datasets\//, '')), releaseManifestPath(version)];
}

describe('promote against the HF and GCS fakes', () => {
  it('stages in one commit, promotes with one copy commit, records the real commit and upload generations, rolls back', async () => {
    const w = await world();
    const before = hub.history(w.repo).length;
    const a = await stagedRun(w, { version: '5.0.0', at: minutesAgo(10) });
    // Diagnostics: one commit; staging: one commit.
    expect(hub.history(w.repo).length - before).toBe(2);
    expect(hub.isLfs(w.repo, `${stagingPrefix(a.runId)}states/S000.h5`)).toBe(true);

    const commitsBefore = hub.history(w.repo).length;
    const result = await run(promoteInput(w, a.runId));
    expect(result.ok, result.ok ? '' : result.failure.message).toBe(true);
    if (!result.ok || result.value.status !== 'promoted') return;
    const entry = result.value.entry;
    // One copy commit + one registry-mirror commit on HF (the lease lives on GCS, the registry's home).
    const history = hub.history(w.repo);
    expect(history.length - commitsBefore).toBe(2);
    const copyCommit = history[1]!;
    expect(entry.hf).toEqual({ repo: w.repo.name, commit: copyCommit.oid });
    expect(copyCommit.oid).toMatch(/^[0-9a-f]{40}$/);
    expect(copyCommit.changed).toHaveLength(499); // 489 areas, 8 calibration files, 1 dataset, the release manifest
    expect(hub.fileAt(w.repo, copyCommit.oid, 'states/S000.h5')).toEqual(await readFile(join(a.dir, 'h5s/states/S000.h5')));
    // GCS: every release file, one generation each, and the registry records exactly those generations.
    const paths = await releasePaths(w, a, '5.0.0');
    expect(Object.keys(entry.gcs!.generations).sort()).toEqual([...paths].sort());
    for (const path of paths) {
      const generations = gcs.generations(w.bucket, path);
      expect(generations).toHaveLength(1);
      expect(entry.gcs!.generations[path]).toBe(Number(generations[0]!.generation));
    }
    // The registry: authoritative on GCS, mirrored byte for byte to HF.
    expect(registryText(w, 'gcs')).toBe(registryText(w, 'hf'));
    const reg = await registry(w.stores.registryHome);
    expect(reg).toMatchObject({ current: '5.0.0', versions: [{ version: '5.0.0', pipeline_run_id: a.runId, diagnostics_path: `calibration/runs/${a.runId}/diagnostics/` }] });
    // Nothing reached production before promote: staging commits touched only staging/ and calibration/runs/.
    for (const commit of history.slice(2)) expect(commit.changed.every((p) => /^(staging|calibration\/runs)\/|^\.gitattributes$/.test(p))).toBe(true);

    // A rerun writes nothing.
    const commits = hub.history(w.repo).length;
    const bytes = gcs.bytesUploaded;
    expect(await run(promoteInput(w, a.runId))).toMatchObject({ ok: true, value: { status: 'already-promoted' } });
    expect(hub.history(w.repo).length).toBe(commits);
    expect(gcs.bytesUploaded).toBe(bytes);

    // v2 from another run, then roll back to v1 as v3.
    const b = await stagedRun(w, { version: '5.0.0', at: minutesAgo(5) });
    expect(await run(promoteInput(w, b.runId, { version: '5.0.1' }))).toMatchObject({ ok: true });
    expect(gcs.live(w.bucket, 'states/S000.h5')!.content).toEqual(await readFile(join(b.dir, 'h5s/states/S000.h5')));
    const events = recorder([SENTINEL]);
    const back = await rollback({ target: '5.0.0', newVersion: '5.0.2', stores: w.stores, emit: events.emit, dryRun: false, confirm: async () => true });
    seen.push(events.text(), JSON.stringify(back));
    expect(back.ok, back.ok ? '' : back.failure.message).toBe(true);
    if (!back.ok || back.value.status !== 'rolled-back') return;
    const v3 = back.value.entry;
    expect(v3).toMatchObject({ version: '5.0.2', special_operation: 'roll-back', roll_back_version: '5.0.0', pipeline_run_id: a.runId });
    expect(v3.hf!.commit).toBe(hub.history(w.repo)[1]!.oid);
    expect(hub.fileAt(w.repo, v3.hf!.commit, 'states/S000.h5')).toEqual(await readFile(join(a.dir, 'h5s/states/S000.h5')));
    expect(gcs.live(w.bucket, 'states/S000.h5')!.content).toEqual(await readFile(join(a.dir, 'h5s/states/S000.h5')));
    expect(v3.gcs!.generations['states/S000.h5']).toBe(Number(gcs.live(w.bucket, 'states/S000.h5')!.generation));
    expect(v3.gcs!.generations[releaseManifestPath('5.0.2')]).toBeDefined();
    const after = await registry(w.stores.registryHome);
    expect(after.versions.map((v) => v.version)).toEqual(['5.0.2', '5.0.1', '5.0.0']);
    expect(registryText(w, 'gcs')).toBe(registryText(w, 'hf'));
  });

  it('GCS failing after N files: stops, reports what landed, registry untouched; the rerun uploads only the rest', async () => {
    const w = await world();
    const a = await stagedRun(w, { version: '6.0.0' });
    gcs.faults.add({ match: { method: 'POST', url: `/upload/storage/v1/b/${w.bucket}/o` }, skip: 120, times: 10_000, status: 503 });
    // GCS is down, so the lease (on GCS) cannot be released either: it must expire for the rerun
    // in this same process (a new CLI process breaks a dead process's lease at once).
    const input = promoteInput(w, a.runId, { leaseTtlMs: 1 });
    const failed = await run(input);
    expect(failed.ok).toBe(false);
    if (failed.ok) return;
    expect(failed.failure.step).toBe('gcs');
    expect(failed.failure.steps!.map((s) => [s.step, s.status])).toEqual([
      ['production', 'done'],
      ['gcs', 'failed'],
      ['registry', 'not-done'],
      ['registry-mirror', 'not-done'],
      ['mark-promoted', 'not-done'],
    ]);
    const landed = Number(/(\d+) of 499 files in place/.exec(failed.failure.message)?.[1]);
    expect(landed).toBeGreaterThanOrEqual(100); // 120 uploads passed, the lease document among them
    expect(registryText(w, 'gcs')).toBeUndefined();
    expect(registryText(w, 'hf')).toBeUndefined();
    const meta = await readMeta(w.cache, a.runId);
    expect(meta.ok && meta.value.status).toBe('completed');
    expect(meta.ok && publishSection(meta.value).promote).toMatchObject({ ok: false, failedStep: 'gcs' });

    gcs.faults.clear();
    const commits = hub.history(w.repo).length;
    const logStart = gcs.faults.log.length;
    const paths = await releasePaths(w, a, '6.0.0');
    const missing = paths.filter((p) => !gcs.live(w.bucket, p));
    expect(paths.length - missing.length).toBe(landed);
    const rerun = await run(promoteInput(w, a.runId));
    expect(rerun.ok, rerun.ok ? '' : rerun.failure.message).toBe(true);
    // HF: no second copy commit (everything already there), only the registry mirror.
    expect(hub.history(w.repo).length - commits).toBe(1);
    // GCS: exactly the files that had not landed were uploaded (plus the registry and the lease);
    // nothing has two generations.
    const uploaded = gcs.faults.log
      .slice(logStart)
      .filter((r) => r.method === 'POST' && r.url.includes(`/upload/storage/v1/b/${w.bucket}/o`) && r.status === 200)
      .map((r) => new URL(r.url, 'http://x').searchParams.get('name'));
    expect(new Set(uploaded)).toEqual(new Set([...missing, REGISTRY_PATH, 'promote.lock.json']));
    expect(uploaded.filter((n) => n !== 'promote.lock.json')).toHaveLength(missing.length + 1);
    for (const path of paths) expect(gcs.generations(w.bucket, path)).toHaveLength(1);
    expect(await registry(w.stores.registryHome)).toMatchObject({ current: '6.0.0', versions: [{ version: '6.0.0' }] });
    expect((await readMeta(w.cache, a.runId)).ok).toBe(true);
  });

  it('a 412 on the registry write is retried on fresh state; a concurrent registry writer is not lost', async () => {
    const w = await world();
    const a = await stagedRun(w, { version: '7.0.0' });
    gcs.faults.add({ match: { method: 'POST', url: `name=${REGISTRY_PATH}` }, status: 412, times: 1 });
    const input = promoteInput(w, a.runId);
    expect(await run(input)).toMatchObject({ ok: true, value: { status: 'promoted' } });
    expect(input.events.text()).toMatch(/registry changed under us/);

    // Another writer slips in between our read and our write: our write gets a real 412, re-reads, keeps both.
    const b = await stagedRun(w, { version: '7.0.1', at: minutesAgo(1) });
    const home = w.stores.registryHome;
    let interfered = false;
    const racing = new Proxy(home, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== 'writeIfVersion' || typeof value !== 'function') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        return async (...args: unknown[]) => {
          if (args[0] === REGISTRY_PATH && !interfered) {
            interfered = true;
            const other: VersionEntry = { version: 'other-1', created_at: '2026-01-01T00:00:00Z', hf: null, gcs: null, pipeline_run_id: 'elsewhere' };
            const done = await updateRegistry(addEntry(other), { home: target, message: 'other writer' });
            expect(done.ok).toBe(true);
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as Store;
    expect(await run(promoteInput(w, b.runId, { stores: { ...w.stores, registryHome: racing } }))).toMatchObject({ ok: true });
    const reg = await registry(home);
    expect(reg.versions.map((v) => v.version)).toEqual(['7.0.1', 'other-1', '7.0.0']);
    expect(reg.current).toBe('7.0.1');
    expect(registryText(w, 'gcs')).toBe(registryText(w, 'hf'));
  });

  it('timeouts: a hung commit fails honestly with nothing done; a lost answer after the write landed still completes once', async () => {
    const w = await world({ requestTimeoutMs: 200 });
    const a = await stagedRun(w, { version: '8.0.0' });
    // Hangs past the client's time limit, then drops: the commit never lands.
    hub.faults.add({ match: { method: 'POST', url: `/${w.repo.name}/commit/` }, delayMs: 3_000, drop: true, times: 10 });
    const hung = await run(promoteInput(w, a.runId));
    expect(hung).toMatchObject({ ok: false, failure: { step: 'production', reason: 'timeout' } });
    expect(!hung.ok && hung.failure.steps!.filter((s) => s.status === 'done')).toEqual([]);
    expect(registryText(w, 'gcs')).toBeUndefined();
    expect(gcs.live(w.bucket, 'states/S000.h5')).toBeUndefined();
    hub.faults.clear();
    await new Promise((resolve) => setTimeout(resolve, 3_100)); // let the hung requests drain

    // The copy commit lands but its answer is lost; the GCS registry write lands but its answer is late.
    hub.faults.add({ match: { method: 'POST', url: `/${w.repo.name}/commit/` }, afterServe: true, drop: true, times: 1 });
    gcs.faults.add({ match: { method: 'POST', url: `name=${REGISTRY_PATH}` }, afterServe: true, delayMs: 1_000, times: 1 });
    const commits = hub.history(w.repo).length;
    const landed = await run(promoteInput(w, a.runId));
    expect(landed.ok, landed.ok ? '' : landed.failure.message).toBe(true);
    // One copy commit (not two), one mirror commit; one registry entry.
    expect(hub.history(w.repo).length - commits).toBe(2);
    const reg = await registry(w.stores.registryHome);
    expect(reg.versions).toHaveLength(1);
    expect(registryText(w, 'gcs')).toBe(registryText(w, 'hf'));
    const meta = await readMeta(w.cache, a.runId);
    expect(meta.ok && meta.value.status).toBe('promoted');
  });

  it('two promotes racing leave exactly one consistent registry; the loser stops before writing and its rerun completes', async () => {
    const w = await world();
    const a = await stagedRun(w, { version: '9.0.0', at: minutesAgo(2) });
    const b = await stagedRun(w, { version: '9.0.1', at: minutesAgo(1) });
    const results = await Promise.all([run(promoteInput(w, a.runId)), run(promoteInput(w, b.runId))]);
    const winners = results.filter((r) => r.ok);
    expect(winners.length).toBeGreaterThanOrEqual(1);
    for (const r of results) if (!r.ok) expect(r.failure.reason).toBe('publish-in-progress');
    let reg = await registry(w.stores.registryHome);
    expect(reg.versions).toHaveLength(winners.length);
    expect(registryText(w, 'gcs')).toBe(registryText(w, 'hf'));
    for (const [i, r] of results.entries()) if (!r.ok) expect(await run(promoteInput(w, [a, b][i]!.runId))).toMatchObject({ ok: true });
    reg = await registry(w.stores.registryHome);
    expect(reg.versions.map((v) => v.version).sort()).toEqual(['9.0.0', '9.0.1']);
    // Each entry's generations still name that release's bytes (pinned reads stay valid).
    for (const entry of reg.versions) {
      const runDir = entry.version === '9.0.0' ? a.dir : b.dir;
      const gen = String(entry.gcs!.generations['states/S000.h5']);
      expect(gcs.generations(w.bucket, 'states/S000.h5').find((o) => o.generation === gen)!.content).toEqual(await readFile(join(runDir, 'h5s/states/S000.h5')));
    }

    // The same run promoted twice at once: exactly one entry.
    const c = await stagedRun(w, { version: '9.0.2' });
    const same = await Promise.all([run(promoteInput(w, c.runId)), run(promoteInput(w, c.runId))]);
    expect(same.filter((r) => r.ok).length).toBeGreaterThanOrEqual(1);
    reg = await registry(w.stores.registryHome);
    expect(reg.versions.filter((v) => v.version === '9.0.2')).toHaveLength(1);
  });

  it('racing registry writers (no lease) lose no update, and the mirror converges', async () => {
    const w = await world();
    const entries = Array.from({ length: 6 }, (_, i): VersionEntry => ({ version: `10.0.${i}`, created_at: '2026-01-01T00:00:00Z', hf: null, gcs: null, pipeline_run_id: `run-${i}` }));
    const results = await Promise.all(entries.map((e) => updateRegistry(addEntry(e), { home: w.stores.registryHome, mirror: w.stores.registryMirror!, message: 'race', attempts: 20 })));
    for (const r of results) expect(r.ok, r.ok ? '' : r.failure.message).toBe(true);
    const reg = await registry(w.stores.registryHome);
    expect(reg.versions.map((v) => v.version).sort()).toEqual(entries.map((e) => e.version).sort());
    expect(registryText(w, 'hf')).toBe(registryText(w, 'gcs'));
  });

  it('a missing token fails before any work, naming the action and the variable', async () => {
    const cache = join(root, 'no-token');
    const env = { HF_ENDPOINT: hub.url, GCS_ENDPOINT: gcs.url };
    const config = publishConfig({ HF_REPO: 'org/anything' }, env, cache);
    await expect(openPublishStores(config, { action: 'promote of run X', write: true }, { env })).rejects.toThrow(/promote of run X writes to Hugging Face repo org\/anything and needs a token: set HF_TOKEN/);
    // STORAGE_EMULATOR_HOST without /storage/v1 would make the SDK read the wrong paths: refused, not trusted.
    expect(() => publishConfig({ GCS_BUCKET: 'some-bucket' }, { STORAGE_EMULATOR_HOST: 'localhost:9023' }, cache)).toThrow(/pass GCS_ENDPOINT/);
    expect(publishConfig({ GCS_BUCKET: 'some-bucket' }, { STORAGE_EMULATOR_HOST: 'http://localhost:9023/storage/v1' }, cache).gcs).toMatchObject({ apiEndpoint: 'http://localhost:9023' });
    const gcsOnly = publishConfig({ GCS_BUCKET: 'some-bucket' }, {}, cache);
    await expect(openPublishStores(gcsOnly, { action: 'promote of run X', write: true }, { env: { GOOGLE_APPLICATION_CREDENTIALS: join(root, 'missing.json') } })).rejects.toThrow(/needs Google credentials: set GOOGLE_APPLICATION_CREDENTIALS/);
  });
});
