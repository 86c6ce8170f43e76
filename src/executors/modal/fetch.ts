import { join } from 'node:path';
import type { Argv } from '../../cli/argv.ts';
import { Cache, type OutputRecord } from '../../caching/cache.ts';
import { cacheDir } from '../../cli/settings.ts';
import { DigestMemo } from '../../caching/digest-memo.ts';
import { UsageError } from '../../report/failures.ts';
import type { ActionKey } from '../../fingerprint.ts';
import type { Digest } from '../../caching/hash.ts';
import { pipelineFactory } from '../../prepare.ts';
import { checkRunId, listRunIds, readMeta, runDir, type RunMeta } from '../../run.ts';
import { parseVariables } from '../../variables.ts';
import { VARIABLES } from '../../../tasks/index.ts';
import { transportForRecord } from './config.ts';
import { VolumeSync } from './sync.ts';

/**
 * `./build.ts fetch <target|group>... [RUN_ID=...]`: downloads the remote-resident outputs of
 * those targets (left on the Modal volume by EXECUTOR=modal) into the local cache, verified by
 * digest, and links them into the run directory (default: the newest run that built them), e.g.
 * `./build.ts fetch h5:states/CA` or `./build.ts fetch areas` for every area file. Outputs that
 * are already local are just linked. Each output's record names the transport it lives on
 * (`modal:<volume>` or `standin:<dir>`), so no EXECUTOR setting is needed.
 */
export async function fetchCommand(words: string[], argv: Argv): Promise<number> {
  const vars = parseVariables(argv.assignments, VARIABLES);
  if (words.length === 0) throw new UsageError('missing-target', 'fetch needs a target, e.g. ./build.ts fetch h5:states/CA (or a group: areas)');
  const dir = cacheDir();
  const meta = await pickRun(dir, vars.RUN_ID, words);
  const got = await fetchRunOutputs({ cacheDir: dir, runId: meta.runId, targets: await expandNames(words, meta) });
  if (argv.flags.json) process.stdout.write(`${JSON.stringify({ event: 'fetched', runId: meta.runId, files: got.files.length, bytes: got.bytes, downloaded: got.downloaded })}\n`);
  else {
    for (const f of got.files) process.stdout.write(`${f}\n`);
    process.stderr.write(`fetched ${got.files.length} file(s), ${got.bytes} bytes (${got.downloaded} downloaded), into ${runDir(dir, meta.runId)}\n`);
  }
  return 0;
}

export interface FetchedOutputs {
  /** Absolute paths of the files now in the run directory. */
  files: string[];
  bytes: number;
  /** Blobs that had to be downloaded (the others were in the local cache already). */
  downloaded: number;
}

/**
 * Puts the outputs of a run's targets (default: every built or cached target of the run) into
 * its run directory, downloading the remote-resident ones into the local cache first (verified by
 * digest). For `fetch`, and for anything that reads a finished run's files, e.g. staging: a run
 * whose remote targets were cache hits holds only their records, not their bytes.
 */
export async function fetchRunOutputs(o: { cacheDir: string; runId: string; targets?: string[] }): Promise<FetchedOutputs> {
  const read = await readMeta(o.cacheDir, o.runId);
  if (!read.ok) throw new UsageError('bad-run', read.message);
  const meta = read.meta;
  const names = o.targets ?? Object.keys(meta.targets).filter((n) => ['built', 'cached'].includes(meta.targets[n]!.outcome));
  const memo = new DigestMemo(join(o.cacheDir, 'digests.json'));
  await memo.load();
  const cache = new Cache(o.cacheDir, memo);
  const wanted: { path: string; record: OutputRecord }[] = [];
  for (const name of names) {
    const key = meta.targets[name]?.key;
    const found = key ? await cache.lookup(key as ActionKey) : { kind: 'miss' as const };
    if (found.kind !== 'hit') {
      // The Python environment has no entry (it lives in cache/envs); asked for by name, a miss is an error.
      if (!o.targets) continue;
      throw new UsageError('not-built', `${name} has no cache entry from run ${meta.runId}; build it first`);
    }
    for (const [path, record] of Object.entries(found.result.outputs)) if (path !== 'env') wanted.push({ path, record });
  }
  const byTransport = new Map<string, string[]>();
  let downloaded = 0;
  for (const { record } of wanted) if (record.remote) byTransport.set(record.remote, [...(byTransport.get(record.remote) ?? []), record.digest]);
  for (const [remote, digests] of byTransport) {
    const transport = transportForRecord(remote);
    if (!transport) throw new UsageError('unknown-remote', `outputs live on ${remote}, which this build does not know how to reach`);
    downloaded += await new VolumeSync({ transport, cacheDir: o.cacheDir, repo: '', blobPath: (d) => cache.blobPath(d), stored: (d) => cache.adopt(d as Digest) }).fetchBlobs(digests);
  }
  const run = runDir(o.cacheDir, meta.runId);
  const files: string[] = [];
  let bytes = 0;
  for (const { path, record } of wanted) {
    const problem = await cache.verifyBlob(record.digest as Digest);
    if (problem) throw new UsageError('fetch-failed', `${path} ${problem}`);
    await cache.placeBlob(record.digest as Digest, join(run, path));
    bytes += record.size;
    files.push(join(run, path));
  }
  await memo.save();
  return { files, bytes, downloaded };
}

/** RUN_ID, else the newest run whose meta records any of the wanted targets (or their group's items). */
async function pickRun(dir: string, runId: string | undefined, words: string[]): Promise<RunMeta> {
  if (runId) {
    const read = await readMeta(dir, checkRunId(runId));
    if (!read.ok) throw new UsageError('bad-run', read.message);
    return read.meta;
  }
  const prefixes = await groupPrefixes();
  for (const id of await listRunIds(dir)) {
    const read = await readMeta(dir, id);
    if (!read.ok) continue;
    const names = Object.keys(read.meta.targets);
    if (words.some((w) => names.includes(w) || (prefixes.has(w) && names.some((n) => n.startsWith(prefixes.get(w)!))))) return read.meta;
  }
  throw new UsageError('not-built', `no run has built ${words.join(', ')}; build it first (list runs with ./build.ts status)`);
}

async function expandNames(words: string[], meta: RunMeta): Promise<string[]> {
  const prefixes = await groupPrefixes();
  const names: string[] = [];
  for (const w of words) {
    const prefix = prefixes.get(w);
    const matched = prefix ? Object.keys(meta.targets).filter((n) => n.startsWith(prefix)).sort() : meta.targets[w] ? [w] : [];
    if (matched.length === 0) throw new UsageError('unknown-target', `run ${meta.runId} has no target ${w}`);
    names.push(...matched);
  }
  return names;
}

/** Fan-out group name -> its children's prefix (`areas` -> `h5:`). */
async function groupPrefixes(): Promise<Map<string, string>> {
  const make = await pipelineFactory();
  const out = new Map<string, string>();
  for (const node of make('example').nodes) if (node.kind === 'fanout') out.set(node.fanout.name, node.fanout.childPrefix);
  return out;
}
