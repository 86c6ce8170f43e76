import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { digestBytes } from '../src/caching/hash.ts';
import type { PublishStores } from '../src/publish/config.ts';
import type { Event } from '../src/report/events.ts';
import { publishEmitter, type PublishEmit } from '../src/publish/result.ts';
import { makeRunId, runDir, writeMeta, type RunMeta } from '../src/run.ts';
import { stageAndRecord } from '../src/publish/stage.ts';
import type { RetryPolicy } from '../src/stores/store.ts';

/**
 * Synthetic runs for the publishing tests: a completed run directory laid out like the
 * pipeline's (489 area files, calibration artifacts, a base dataset, diagnostics, meta.json), made
 * in milliseconds, so promote's fault-injection tests need no Python. Area files contain NUL
 * bytes, so the fake Hub stores them as LFS, as the real Hub stores H5s.
 */
export interface SyntheticRun {
  runId: string;
  dir: string;
}

/** Area counts of a complete release; tests pass fewer to check promote refuses them. */
export const FULL_AREAS = { national: 1, states: 51, districts: 436, cities: 1 };

export async function syntheticRun(
  cacheDir: string,
  options: { version?: string; seed?: string; at?: Date; areas?: Partial<typeof FULL_AREAS>; status?: RunMeta['status'] } = {},
): Promise<SyntheticRun> {
  const at = options.at ?? new Date();
  const runId = makeRunId(options.version ?? '1.0.0', 'abcdef0123456789', at);
  const dir = runDir(cacheDir, runId);
  const seed = options.seed ?? runId;
  const content = (name: string, size = 160) => {
    const head = createHash('sha256').update(`${seed}:${name}`).digest();
    return Buffer.concat([Buffer.from([0, 1, 2]), head, Buffer.alloc(size, name.length % 251)]);
  };
  const areas = { ...FULL_AREAS, ...options.areas };
  for (const [kind, count] of Object.entries(areas)) {
    await mkdir(join(dir, 'h5s', kind), { recursive: true });
    for (let i = 0; i < count; i++) {
      const name = kind === 'national' ? 'US' : kind === 'cities' ? (i === 0 ? 'NYC' : `C${i}`) : `${kind[0]!.toUpperCase()}${String(i).padStart(3, '0')}`;
      await writeFile(join(dir, 'h5s', kind, `${name}.h5`), content(`${kind}/${name}`));
    }
  }
  await mkdir(join(dir, 'artifacts'), { recursive: true });
  const artifacts = ['policy_data.db', 'source_imputed_stratified_extended_cps_2024.h5', 'cps_2024.h5'];
  for (const prefix of ['', 'national_']) artifacts.push(`${prefix}calibration_weights.npy`, `${prefix}geography_assignment.npz`);
  for (const name of artifacts) await writeFile(join(dir, 'artifacts', name), content(name, 400));
  for (const prefix of ['', 'national_']) await writeFile(join(dir, 'artifacts', `${prefix}unified_run_config.json`), `{"seed": "${seed}", "epochs": 30}\n`);
  await mkdir(join(dir, 'diagnostics'), { recursive: true });
  await writeFile(join(dir, 'diagnostics', 'unified_diagnostics.csv'), `target,error\n${seed},0.1\n`);
  await writeFile(join(dir, 'diagnostics', 'calibration_log.csv'), `epoch,loss\n1,${seed.length}\n`);
  // What the build records for each output (meta.json), which staging and promote check the bytes against.
  const outputs: Record<string, { digest: string; size: number }> = {};
  for (const sub of ['h5s', 'artifacts', 'diagnostics']) {
    for (const entry of await readdir(join(dir, sub), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const rel = relative(dir, join(entry.parentPath, entry.name));
      const bytes = await readFile(join(dir, rel));
      outputs[rel] = { digest: digestBytes(bytes), size: bytes.length };
    }
  }
  const meta: RunMeta = {
    runId,
    status: options.status ?? 'completed',
    version: options.version ?? '1.0.0',
    sha: 'abcdef0123456789abcdef0123456789abcdef01',
    branch: 'main',
    repo: '/synthetic',
    dirty: false,
    goals: ['manifest', 'diagnostics'],
    variables: {},
    pid: process.pid,
    startedAt: at.toISOString(),
    finishedAt: at.toISOString(),
    durationMs: 1,
    counts: { built: 1, cached: 0, failed: 0, skipped: 0 },
    targets: { 'synthetic-run': { outcome: 'built', outputs } },
  };
  await writeMeta(dir, meta);
  return { runId, dir };
}

/** Collects publish events as text, and an emitter for the library calls. */
export function recorder(secrets: string[] = []): { emit: PublishEmit; events: Event[]; text: () => string } {
  const events: Event[] = [];
  return { emit: publishEmitter((e) => events.push(e), secrets), events, text: () => events.map((e) => JSON.stringify(e)).join('\n') };
}

/** Stages a synthetic run on the stores' release store; throws if that fails. */
export async function stage(cacheDir: string, run: SyntheticRun, stores: PublishStores): Promise<void> {
  const staged = await stageAndRecord({ cacheDir, runId: run.runId, release: stores.release, emit: recorder().emit });
  if (!staged.ok) throw new Error(`staging failed: ${staged.failure.message}`);
}

/** Retries without waiting. */
export const noWaitRetry = (attempts = 3): RetryPolicy => ({ attempts, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => undefined });

/** Seconds between synthetic runs, so their ids sort by age. */
export const minutesAgo = (minutes: number): Date => new Date(Date.now() - minutes * 60_000);
