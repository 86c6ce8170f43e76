import { lstat, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Argv } from './argv.ts';
import { fileKind, parseEntry, type ActionEntry } from '../caching/cache.ts';
import { writeFileAtomicSync } from '../util/fs-atomic.ts';
import type { CommandContext } from './command.ts';
import type { Settings } from './settings.ts';
import type { Emit, Event } from '../report/events.ts';
import { UsageError } from '../report/failures.ts';
import { digestFile } from '../caching/hash.ts';
import { listRunIds, readMeta } from '../run.ts';
import { measureAreas, type UsageArea } from '../caching/cache-usage.ts';
import { targetGlob } from '../util/target-glob.ts';

/** `./build.ts cache ls|du|verify|gc`: inspect, check and trim the local content-addressed cache. */
export async function cacheCommand({ words, argv, settings, logger }: CommandContext): Promise<number> {
  const [sub, ...extra] = words;
  const out: Out = { json: argv.flags.json, emit: (e) => logger.emit(e) };
  // Only `ls` takes a word: the target glob it lists.
  const allowed = sub === 'ls' ? 1 : 0;
  if (extra.length > allowed) throw new UsageError('unexpected-argument', `cache ${sub} takes ${allowed ? 'one target glob' : 'no argument'}, not '${extra[allowed]}'`);
  if (argv.flags.dryRun && sub !== 'verify' && sub !== 'gc') throw new UsageError('flag-not-taken', `cache ${sub ?? ''} does not take -n (only cache verify and gc do)`);
  const dir = settings.cacheDir;
  switch (sub) {
    case 'ls':
      return ls(dir, out, extra[0]);
    case 'du':
      return du(settings, out);
    case 'verify':
      return verify(dir, argv, { out, hashWorkers: settings.hashWorkers });
    case 'gc':
      return gc(dir, out, argv.flags.dryRun);
    default:
      throw new UsageError('bad-cache-command', `unknown cache command '${sub ?? ''}'; use ls, du, verify or gc`);
  }
}

async function* files(dir: string): AsyncGenerator<string> {
  for (const shard of await readdir(dir).catch(() => [] as string[])) {
    for (const name of await readdir(join(dir, shard)).catch(() => [] as string[])) yield join(dir, shard, name);
  }
}

async function entries(dir: string): Promise<{ path: string; result: ActionEntry | null }[]> {
  const out = [];
  for await (const path of files(join(dir, 'actions'))) {
    // `.fp.json`: fingerprints of an older cache layout, removed with their entry by gc.
    if (!path.endsWith('.json') || path.endsWith('.fp.json')) continue;
    // A FIFO would block the read: anything but a regular file is a corrupt entry.
    const regular = (await lstat(path).catch(() => null))?.isFile();
    const result = regular
      ? await readFile(path, 'utf8')
          .then(parseEntry)
          .catch(() => null)
      : null;
    out.push({ path, result });
  }
  return out;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
/** Where a cache command reports: with --json, its events (the logger writes them); else lines of text. */
interface Out {
  json: boolean;
  emit: Emit;
}
const print = (out: Out, event: Event, text: string) => (out.json ? out.emit(event) : void process.stdout.write(`${text}\n`));

/**
 * `cache ls [<target glob>]`: one line per action entry under a header (--json: one object per
 * entry, no header). With a glob, only the entries of matching targets; a corrupt entry names no
 * target, so it is listed only without one.
 */
async function ls(dir: string, out: Out, glob: string | undefined): Promise<number> {
  const match = glob ? targetGlob(glob) : null;
  const all = (await entries(dir))
    .filter(({ result }) => !match || (result !== null && match.test(result.target)))
    .sort((a, b) => (a.result?.target ?? '').localeCompare(b.result?.target ?? ''));
  if (!out.json) {
    if (all.length === 0) {
      process.stdout.write(`no cache entries${glob ? ` for targets matching '${glob}'` : ''} in ${join(dir, 'actions')}\n`);
      return 0;
    }
    process.stdout.write(`${'target'.padEnd(28)} ${'key'.padEnd(12)}  ${'created'.padEnd(19)}  outputs  ${'size'.padStart(10)}  executor\n`);
  }
  for (const { path, result } of all) {
    if (!result) {
      print(out, { event: 'cache-entry', path, corrupt: true }, `corrupt   ${path}`);
      continue;
    }
    const size = Object.values(result.outputs).reduce((s, o) => s + o.size, 0);
    print(out, { event: 'cache-entry', path, corrupt: false, target: result.target, key: result.key, createdAt: result.createdAt, outputs: Object.keys(result.outputs).length, size, executor: result.executor },
      `${result.target.padEnd(28)} ${result.key.slice(0, 12)}  ${result.createdAt.slice(0, 19)}  ${String(Object.keys(result.outputs).length).padStart(7)}  ${mb(size).padStart(10)}  ${result.executor}`);
  }
  return 0;
}

/**
 * `cache du`: one line per area of the cache (and the Python environments and local store where
 * they live elsewhere) with its bytes and what it holds, then the total; --json: one `cache-area`
 * event per area, then `cache-total`. Hard links are counted once (caching/cache-usage.ts).
 */
async function du(settings: Settings, out: Out): Promise<number> {
  const dir = settings.cacheDir;
  const areas: UsageArea[] = [
    { area: 'blobs', path: join(dir, 'cas'), counts: 'files' },
    { area: 'actions', path: join(dir, 'actions'), counts: 'entries' },
    { area: 'runs', path: join(dir, 'runs'), counts: 'dirs' },
    { area: 'trees', path: join(dir, 'trees'), counts: 'dirs' },
    { area: 'envs', path: resolve(settings.envsDir), counts: 'dirs' },
    { area: 'checkpoints', path: join(dir, 'checkpoints'), counts: 'dirs' },
    // The release store, when it is a local directory (no HF_REPO).
    ...(settings.publish.HF_REPO ? [] : [{ area: 'store', path: resolve(settings.publish.STORE_DIR ?? join(dir, 'store')), counts: 'files' as const }]),
    { area: 'other', path: dir, counts: 'files' },
  ];
  const unit: Record<string, [string, string]> = {
    blobs: ['blob', 'blobs'], actions: ['entry', 'entries'], runs: ['run', 'runs'], trees: ['tree', 'trees'], envs: ['environment', 'environments'],
    checkpoints: ['checkpoint', 'checkpoints'], store: ['file', 'files'], other: ['file', 'files'],
  };
  const usage = measureAreas(areas);
  let bytes = 0;
  let files = 0;
  for (const u of usage) {
    bytes += u.bytes;
    files += u.files;
    const linked = u.linkedBytes ? `  (+${mb(u.linkedBytes)} hard-linked to files counted already)` : '';
    const [one, many] = unit[u.area]!;
    print(out, { event: 'cache-area', area: u.area, path: u.path, bytes: u.bytes, linkedBytes: u.linkedBytes, files: u.files, count: u.count },
      `${u.area.padEnd(12)} ${mb(u.bytes).padStart(10)}  ${`${u.count} ${u.count === 1 ? one : many}`.padEnd(18)} ${u.path}${linked}`);
  }
  print(out, { event: 'cache-total', bytes, files }, `${'total'.padEnd(12)} ${mb(bytes).padStart(10)}  ${`${files} files`.padEnd(18)} (each hard-linked file once)`);
  return 0;
}

/** How far an unfinished `cache verify` got, so the next one continues there. */
interface VerifyProgress {
  /** When this round (one pass over every blob) started. */
  round: string;
  /** The last blob checked, `<shard>/<digest>`; blobs sort by that. */
  after: string;
  checked: number;
  bytes: number;
}

const progressFile = (dir: string) => join(dir, 'verify-progress.json');

async function readProgress(dir: string): Promise<VerifyProgress | null> {
  try {
    const p = JSON.parse(await readFile(progressFile(dir), 'utf8')) as VerifyProgress;
    return typeof p.after === 'string' && typeof p.round === 'string' ? p : null;
  } catch {
    return null;
  }
}

/**
 * Re-reads blobs (bypassing the stat memo, which a restore trusts: bit rot keeps size and times)
 * and removes those that do not match their name or are not regular files. Cheap to run on a
 * schedule: it is resumable (progress is saved as it goes, so a killed verify continues where it
 * stopped) and incremental (`MAX_GB=<n>` checks at most n GB this time, the next run continuing
 * from there, so a nightly job re-reads the whole cache over several nights). With -n it only
 * reports: nothing is removed (the progress is still recorded).
 */
async function verify(dir: string, argv: Argv, { out, hashWorkers }: { out: Out; hashWorkers: boolean }): Promise<number> {
  const reportOnly = argv.flags.dryRun;
  let maxBytes = Infinity;
  for (const assignment of argv.assignments) {
    const [name, value = ''] = assignment.split(/=(.*)/s);
    if (name !== 'MAX_GB' || !/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0) {
      throw new UsageError('bad-assignment', `cache verify takes only MAX_GB=<gigabytes> (a positive number), not '${assignment}'`);
    }
    maxBytes = Number(value) * 1e9;
  }
  const previous = await readProgress(dir);
  const progress: VerifyProgress = previous ?? { round: new Date().toISOString(), after: '', checked: 0, bytes: 0 };
  const save = () => writeFileAtomicSync(progressFile(dir), `${JSON.stringify(progress)}\n`);
  const cas = join(dir, 'cas');
  let checked = 0;
  let bytes = 0;
  let savedAt = Date.now();
  let finished = true;
  const corrupt: string[] = [];
  for (const shard of (await readdir(cas).catch(() => [] as string[])).sort()) {
    for (const name of (await readdir(join(cas, shard)).catch(() => [] as string[])).sort()) {
      const id = `${shard}/${name}`;
      if (id <= progress.after || name.includes('.tmp-')) continue;
      if (bytes >= maxBytes) {
        finished = false;
        break;
      }
      const path = join(cas, shard, name);
      const st = await lstat(path).catch(() => null);
      if (!st) continue; // removed meanwhile
      checked++;
      // The type first: a FIFO would block the read forever, a directory cannot be read.
      const bad = !st.isFile() ? `${path} (${fileKind(st)})` : (await digestFile(path, { size: st.size, workers: hashWorkers })).digest !== name ? path : null;
      if (st.isFile()) bytes += st.size;
      if (bad) {
        corrupt.push(bad);
        if (!reportOnly) await rm(path, { recursive: true, force: true });
      }
      progress.after = id;
      progress.checked++;
      progress.bytes += st.isFile() ? st.size : 0;
      if (Date.now() - savedAt > 1000) {
        save();
        savedAt = Date.now();
      }
    }
    if (!finished) break;
  }
  if (finished) await rm(progressFile(dir), { force: true });
  else save();
  const bad = (await entries(dir)).filter((e) => !e.result);
  if (!reportOnly) for (const e of bad) await rm(e.path, { recursive: true, force: true });
  const removed = reportOnly ? 'would remove' : 'removed';
  const round = finished
    ? `every blob checked since ${progress.round}${previous ? ' (resumed)' : ''}`
    : `${progress.checked} blobs checked since ${progress.round}; run again to continue`;
  print(out, { event: 'cache-verify', checked, bytes, corrupt, corruptEntries: bad.map((e) => e.path), complete: finished, round: progress.round, dryRun: reportOnly },
    `${checked} blobs checked (${mb(bytes)}), ${corrupt.length} corrupt${corrupt.length ? ` (${removed}: ${corrupt.join(', ')})` : ''}; ${bad.length} corrupt action entries ${reportOnly ? 'found (-n: nothing removed)' : 'removed'}; ${round}`);
  return corrupt.length || bad.length ? 1 : 0;
}

/**
 * Keeps every action entry that some run on disk used (so the newest of each target that a run
 * built or restored); removes the other entries, then every blob no kept entry references.
 */
async function gc(dir: string, out: Out, dryRun: boolean): Promise<number> {
  // -n: every removal below is skipped, and each entry that would go is named.
  const remove = (path: string) => (dryRun ? Promise.resolve() : rm(path, { force: true }));
  const keepKeys = new Set<string>();
  for (const id of await listRunIds(dir)) {
    const read = await readMeta(dir, id);
    if (read.ok) for (const t of Object.values(read.value.targets)) if (t.key) keepKeys.add(t.key);
  }
  const keepBlobs = new Set<string>();
  let removedEntries = 0;
  for (const { path, result } of await entries(dir)) {
    if (result && keepKeys.has(result.key)) {
      for (const o of Object.values(result.outputs)) keepBlobs.add(o.digest);
    } else {
      await remove(path);
      await remove(path.replace(/\.json$/, '.fp.json'));
      if (dryRun) print(out, { event: 'cache-remove', path, ...(result && { target: result.target, key: result.key }), dryRun }, `would remove entry ${result ? `${result.target} ${result.key.slice(0, 12)}` : `${path} (corrupt)`}`);
      removedEntries++;
    }
  }
  let removedBlobs = 0;
  let freed = 0;
  for await (const path of files(join(dir, 'cas'))) {
    const name = path.slice(path.lastIndexOf('/') + 1);
    if (keepBlobs.has(name)) continue;
    freed += (await stat(path)).size;
    await remove(path);
    removedBlobs++;
  }
  print(out, { event: 'cache-gc', removedEntries, removedBlobs, freedBytes: freed, dryRun },
    dryRun
      ? `would remove ${removedEntries} action entries and ${removedBlobs} blobs, freeing ${mb(freed)} (-n: nothing removed)`
      : `removed ${removedEntries} action entries and ${removedBlobs} blobs, freed ${mb(freed)}`);
  return 0;
}
