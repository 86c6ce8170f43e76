import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv } from './argv.ts';
import { parseEntry, type ActionEntry } from '../caching/cache.ts';
import { cacheDir } from './settings.ts';
import { UsageError } from '../report/failures.ts';
import { digestFile } from '../caching/hash.ts';
import { listRunIds, readMeta } from '../run.ts';

/** `./build.ts cache ls|du|verify|gc`: inspect, check and trim the local content-addressed cache. */
export async function cacheCommand(words: string[], argv: Argv): Promise<number> {
  const [sub, ...extra] = words;
  if (extra.length) throw new UsageError('unexpected-argument', `cache ${sub} takes no argument '${extra[0]}'`);
  const dir = cacheDir();
  switch (sub) {
    case 'ls':
      return ls(dir, argv.flags.json);
    case 'du':
      return du(dir, argv.flags.json);
    case 'verify':
      return verify(dir, argv.flags.json, argv.flags.dryRun);
    case 'gc':
      return gc(dir, argv.flags.json, argv.flags.dryRun);
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
    const result = await readFile(path, 'utf8')
      .then(parseEntry)
      .catch(() => null);
    out.push({ path, result });
  }
  return out;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const print = (json: boolean, obj: object, text: string) => process.stdout.write(json ? `${JSON.stringify(obj)}\n` : `${text}\n`);

async function ls(dir: string, json: boolean): Promise<number> {
  const all = (await entries(dir)).sort((a, b) => (a.result?.target ?? '').localeCompare(b.result?.target ?? ''));
  for (const { path, result } of all) {
    if (!result) {
      print(json, { path, corrupt: true }, `corrupt   ${path}`);
      continue;
    }
    const size = Object.values(result.outputs).reduce((s, o) => s + o.size, 0);
    print(json, { target: result.target, key: result.key, createdAt: result.createdAt, outputs: Object.keys(result.outputs).length, size, executor: result.executor },
      `${result.target.padEnd(28)} ${result.key.slice(0, 12)}  ${result.createdAt.slice(0, 19)}  ${String(Object.keys(result.outputs).length).padStart(3)} outputs  ${mb(size).padStart(10)}  ${result.executor}`);
  }
  return 0;
}

async function du(dir: string, json: boolean): Promise<number> {
  let blobs = 0;
  let bytes = 0;
  for await (const path of files(join(dir, 'cas'))) {
    blobs++;
    bytes += (await stat(path)).size;
  }
  const actions = (await entries(dir)).length;
  print(json, { blobs, bytes, actions }, `${blobs} blobs, ${mb(bytes)} in ${join(dir, 'cas')}; ${actions} action entries`);
  return 0;
}

/** Re-reads every blob (bypassing the stat memo) and removes those that do not match their name; `-n` only reports them. */
async function verify(dir: string, json: boolean, dryRun: boolean): Promise<number> {
  let checked = 0;
  const corrupt: string[] = [];
  for await (const path of files(join(dir, 'cas'))) {
    if (path.includes('.tmp-')) continue;
    checked++;
    const { digest } = await digestFile(path);
    if (!path.endsWith(digest)) {
      corrupt.push(path);
      if (!dryRun) await rm(path, { force: true });
    }
  }
  const bad = (await entries(dir)).filter((e) => !e.result);
  if (!dryRun) for (const e of bad) await rm(e.path, { force: true });
  const removed = dryRun ? 'would remove' : 'removed';
  print(json, { checked, corrupt, corruptEntries: bad.map((e) => e.path), dryRun },
    `${checked} blobs checked, ${corrupt.length} corrupt${corrupt.length ? ` (${removed}: ${corrupt.join(', ')})` : ''}; ${bad.length} corrupt action entries ${dryRun ? 'found (-n: nothing removed)' : 'removed'}`);
  return corrupt.length || bad.length ? 1 : 0;
}

/**
 * Keeps every action entry that some run on disk used (so the newest of each target that a run
 * built or restored); removes the other entries, then every blob no kept entry references.
 */
async function gc(dir: string, json: boolean, dryRun: boolean): Promise<number> {
  // -n: every removal below is skipped, and each entry that would go is named.
  const remove = (path: string) => (dryRun ? Promise.resolve() : rm(path, { force: true }));
  const keepKeys = new Set<string>();
  for (const id of await listRunIds(dir)) {
    const read = await readMeta(dir, id);
    if (read.ok) for (const t of Object.values(read.meta.targets)) if (t.key) keepKeys.add(t.key);
  }
  const keepBlobs = new Set<string>();
  let removedEntries = 0;
  for (const { path, result } of await entries(dir)) {
    if (result && keepKeys.has(result.key)) {
      for (const o of Object.values(result.outputs)) keepBlobs.add(o.digest);
    } else {
      await remove(path);
      await remove(path.replace(/\.json$/, '.fp.json'));
      if (dryRun && !json) process.stdout.write(`would remove entry ${result ? `${result.target} ${result.key.slice(0, 12)}` : `${path} (corrupt)`}\n`);
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
  print(json, { removedEntries, removedBlobs, freedBytes: freed, dryRun },
    dryRun
      ? `would remove ${removedEntries} action entries and ${removedBlobs} blobs, freeing ${mb(freed)} (-n: nothing removed)`
      : `removed ${removedEntries} action entries and ${removedBlobs} blobs, freed ${mb(freed)}`);
  return 0;
}
