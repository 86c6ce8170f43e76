import { join } from 'node:path';
import { Cache, type OutputRecord } from '../../caching/cache.ts';
import { DigestMemo } from '../../caching/digest-memo.ts';
import { UsageError } from '../../report/failures.ts';
import type { ActionKey } from '../../fingerprint.ts';
import type { Digest } from '../../caching/hash.ts';
import { readMeta, runDir, type RunMeta } from '../../run.ts';
import type { ModalTransport } from './transport.ts';
import { transportForRecord, type ModalSettings } from './config.ts';
import { VolumeSync } from './sync.ts';

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
export interface FetchOptions {
  cacheDir: string;
  runId: string;
  /** Default: every built or cached target of the run. */
  targets?: string[];
  /** How to reach the transports the records name (app, Python, the client's environment). */
  modal: ModalSettings;
  /** Whether downloads may be verified in hashing worker threads (not BUILD_HASH_WORKERS=0). */
  hashWorkers: boolean;
  /**
   * A run another machine made, on the volume (remote-state.ts): its meta.json (already mirrored),
   * the directory its files are linked into (its mirror), and the transport of its volume, where
   * outputs it recorded as local live (in its cache dir's store, `state/cas`).
   */
  remoteRun?: { meta: RunMeta; dir: string; transport: ModalTransport };
}

export async function fetchRunOutputs(o: FetchOptions): Promise<FetchedOutputs> {
  const read = o.remoteRun ? { ok: true as const, value: o.remoteRun.meta } : await readMeta(o.cacheDir, o.runId);
  if (!read.ok) throw new UsageError('bad-run', read.failure.message);
  const meta = read.value;
  const names = o.targets ?? Object.keys(meta.targets).filter((n) => ['built', 'cached'].includes(meta.targets[n]!.outcome));
  const memo = new DigestMemo(join(o.cacheDir, 'digests.json'), { workers: o.hashWorkers });
  await memo.load();
  const cache = new Cache(o.cacheDir, memo);
  const wanted: { path: string; record: OutputRecord }[] = [];
  for (const name of names) {
    const key = meta.targets[name]?.key;
    const found = key ? await cache.lookup(key as ActionKey) : { kind: 'miss' as const };
    // A remote run's targets: the outputs its meta.json records (this cache may hold no entry).
    const recorded = o.remoteRun && meta.targets[name]?.outputs;
    if (found.kind !== 'hit' && recorded) {
      for (const [path, record] of Object.entries(recorded)) if (path !== 'env') wanted.push({ path, record: record.remote ? record : { ...record, remote: o.remoteRun!.transport.id } });
      continue;
    }
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
    const transport = o.remoteRun?.transport.id === remote ? o.remoteRun.transport : transportForRecord(remote, o.modal);
    if (!transport) throw new UsageError('unknown-remote', `outputs live on ${remote}, which this build does not know how to reach`);
    downloaded += await new VolumeSync({ transport, cacheDir: o.cacheDir, repo: '', blobPath: (d) => cache.blobPath(d), stored: (d) => cache.adopt(d as Digest), hashWorkers: o.hashWorkers }).fetchBlobs(digests);
  }
  const run = o.remoteRun?.dir ?? runDir(o.cacheDir, meta.runId);
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
