import { appendFile, chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { digestBytes, digestFile } from '../../caching/hash.ts';
import { volumePaths } from './protocol.ts';
import { statePaths } from './remote-state.ts';
import type { ModalTransport } from './transport.ts';
import { exists } from '../../util/fs-atomic.ts';
import { git } from '../../git.ts';

/**
 * Keeps the volume and the local cache in step, moving only what is missing:
 * - blobs: an input is uploaded only if the volume lacks its digest (a rerun uploads 0 bytes);
 *   digests known to be on the volume (uploaded, or produced there) are remembered in
 *   `cache/modal/known-<transport>.txt`, so a rerun does not even list the volume;
 * - commits: the pinned SHA travels as a git bundle, incremental against the commits the volume's
 *   mirror already has (`git/shas/`), made from a throw-away repository that borrows the local
 *   objects (alternates), so the user's refs are never touched; a dirty-run snapshot works too;
 * - downloads: remote-resident outputs come back into `cache/cas` only when asked, verified
 *   against their digest before they are linked anywhere.
 */
export interface VolumeSyncOptions {
  transport: ModalTransport;
  cacheDir: string;
  /** The local repository holding the pinned commit. */
  repo: string;
  blobPath: (digest: string) => string;
  /** Told of each blob fetched and verified here, so the digest memo need not read it again. */
  stored?: (digest: string) => void;
  /** Whether downloads may be verified in hashing worker threads (default true; BUILD_HASH_WORKERS=0 says no). */
  hashWorkers?: boolean;
}

export class VolumeSync {
  private readonly o: VolumeSyncOptions;
  private readonly knownFile: string;
  private known: Promise<Set<string>> | undefined;
  private readonly uploads = new Map<string, Promise<number>>();
  private readonly commits = new Map<string, Promise<number>>();
  private readonly downloads = new Map<string, Promise<unknown>>();

  constructor(o: VolumeSyncOptions) {
    this.o = o;
    this.knownFile = join(o.cacheDir, 'modal', `known-${digestBytes(o.transport.id).slice(0, 16)}.txt`);
  }

  private knownSet(): Promise<Set<string>> {
    this.known ??= readFile(this.knownFile, 'utf8')
      .then((text) => new Set(text.split('\n').filter((l) => /^[0-9a-f]{32}$/.test(l))))
      .catch(() => new Set<string>());
    return this.known;
  }

  /** Records digests now on the volume (uploaded, or outputs of a remote action). */
  async markKnown(digests: string[]): Promise<void> {
    const known = await this.knownSet();
    const fresh = [...new Set(digests)].filter((d) => !known.has(d));
    if (fresh.length === 0) return;
    for (const d of fresh) known.add(d);
    await mkdir(dirname(this.knownFile), { recursive: true });
    await appendFile(this.knownFile, fresh.map((d) => `${d}\n`).join(''));
  }

  /** Forgets digests the volume turned out not to have (it was cleaned): the next run uploads them. */
  async forget(digests: string[]): Promise<void> {
    const known = await this.knownSet();
    for (const d of digests) known.delete(d);
    await writeFile(this.knownFile, [...known].map((d) => `${d}\n`).join(''));
  }

  /**
   * Uploads whichever of these local blobs the volume lacks; resolves to the bytes this call sent.
   * Concurrent callers share one upload per digest.
   */
  async ensureBlobs(digests: string[]): Promise<number> {
    const known = await this.knownSet();
    const mine = [...new Set(digests)].filter((d) => !known.has(d) && !this.uploads.has(d));
    const shared = [...new Set(digests)].filter((d) => this.uploads.has(d)).map((d) => this.uploads.get(d)!);
    let sent = 0;
    if (mine.length) {
      const job = this.upload(mine);
      for (const d of mine) this.uploads.set(d, job.then(() => 0));
      try {
        sent = await job;
      } finally {
        for (const d of mine) this.uploads.delete(d);
      }
    }
    await Promise.all(shared);
    return sent;
  }

  private async upload(digests: string[]): Promise<number> {
    const present = new Set<string>();
    for (const prefix of new Set(digests.map((d) => d.slice(0, 2)))) {
      for (const name of await this.o.transport.list(volumePaths.shard(prefix))) present.add(name);
    }
    const missing = digests.filter((d) => !present.has(d));
    const sent = await this.o.transport.put(missing.map((d) => ({ local: this.o.blobPath(d), remote: volumePaths.blob(d) })));
    await this.markKnown(digests);
    return sent;
  }

  /**
   * Makes sure the volume can check out `sha`: uploads a bundle unless the mirror has it. Resolves
   * to the bytes sent for the caller that did the upload, 0 for the others sharing it.
   */
  ensureCommit(sha: string): Promise<number> {
    const running = this.commits.get(sha);
    if (running) return running.then(() => 0);
    const job = this.uploadCommit(sha);
    this.commits.set(sha, job);
    job.catch(() => this.commits.delete(sha));
    return job;
  }

  private async uploadCommit(sha: string): Promise<number> {
    const inMirror = await this.o.transport.list(volumePaths.shas);
    if (inMirror.includes(sha)) return 0;
    if ((await this.o.transport.list(volumePaths.bundles)).includes(`${sha}.bundle`)) return 0;
    const work = await mkdtemp(join(tmpdir(), 'modal-bundle-'));
    try {
      const objects = join((await gitPinned(this.o.repo, ['rev-parse', '--path-format=absolute', '--git-common-dir'])).trim(), 'objects');
      const scratch = join(work, 'repo.git');
      await gitPinned(work, ['init', '--quiet', '--bare', scratch]);
      await writeFile(join(scratch, 'objects', 'info', 'alternates'), `${objects}\n`);
      await gitPinned(scratch, ['update-ref', 'refs/build/pinned', sha]);
      // Only prerequisites the local repository has can be excluded; the mirror has them all.
      const exclude: string[] = [];
      for (const other of inMirror.filter((s) => /^[0-9a-f]{40}$/.test(s) && s !== sha)) {
        if (await gitPinned(scratch, ['merge-base', '--is-ancestor', other, sha]).then(() => true, () => false)) exclude.push(`^${other}`);
      }
      const bundle = join(work, `${sha}.bundle`);
      await gitPinned(scratch, ['bundle', 'create', '--quiet', bundle, 'refs/build/pinned', ...exclude]);
      return await this.o.transport.put([{ local: bundle, remote: volumePaths.bundle(sha) }]);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /**
   * Brings blobs into the local store (cache/cas): downloaded to a temporary name, checked
   * against the digest, made read-only, renamed into place. Blobs already there are skipped;
   * resolves to the number downloaded.
   */
  async fetchBlobs(digests: string[]): Promise<number> {
    // Two local actions needing one blob at once share its download (one temporary name per process).
    const absent = new Set<string>();
    for (const d of new Set(digests)) if (!this.downloads.has(d) && !(await exists(this.o.blobPath(d)))) absent.add(d);
    // Decided without awaiting in between, so no other caller can start the same download meanwhile.
    const wanted: string[] = [];
    const shared: Promise<unknown>[] = [];
    for (const d of new Set(digests)) {
      const running = this.downloads.get(d);
      if (running) shared.push(running);
      else if (absent.has(d)) wanted.push(d);
    }
    if (wanted.length) {
      const job = this.download(wanted);
      for (const d of wanted) this.downloads.set(d, job.catch(() => undefined));
      try {
        await job;
      } finally {
        for (const d of wanted) this.downloads.delete(d);
      }
    }
    await Promise.all(shared);
    for (const d of new Set(digests)) if (!wanted.includes(d) && !(await exists(this.o.blobPath(d)))) throw new Error(`downloading ${volumePaths.blob(d)} failed in a concurrent fetch`);
    return wanted.length;
  }

  private async download(wanted: string[]): Promise<void> {
    // Per call: another process (or a concurrent call here) may fetch the same blob, each into its own file.
    const suffix = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    const tmp = (d: string) => `${this.o.blobPath(d)}.download-${suffix}`;
    try {
      await downloadBlobs(this.o.transport, wanted, tmp, this.o.hashWorkers ?? true);
      for (const d of wanted) {
        await chmod(tmp(d), 0o444);
        await rename(tmp(d), this.o.blobPath(d));
        this.o.stored?.(d);
      }
    } finally {
      for (const d of wanted) await rm(tmp(d), { force: true });
    }
  }
}

/**
 * Downloads blobs from the volume into `local(d)`, each checked against its digest (a corrupt
 * volume copy throws): from `build/cas` in one batch, and a blob it lacks from `state/cas`, where
 * an entry a remote coordinator committed keeps its own outputs (its cache dir's store, remote-state.ts).
 */
export async function downloadBlobs(transport: ModalTransport, digests: string[], local: (digest: string) => string, workers: boolean): Promise<void> {
  await transport.get(digests.map((d) => ({ remote: volumePaths.blob(d), local: local(d) }))).catch(async (error: unknown) => {
    for (const d of digests) {
      if (await exists(local(d))) continue;
      await transport.get([{ remote: volumePaths.blob(d), local: local(d) }]).catch(() => transport.get([{ remote: statePaths.blob(d), local: local(d) }]).catch(() => Promise.reject(error)));
    }
  });
  for (const d of digests) {
    const got = await digestFile(local(d), { workers });
    if (got.digest !== d) throw new Error(`downloaded ${volumePaths.blob(d)} hashes to ${got.digest}: the volume copy is corrupt`);
  }
}

/** Replace refs would let objects differ from the pinned SHA's: the mirror is built without them. */
const gitPinned = (cwd: string, args: string[]) => git(cwd, args, ['--no-replace-objects']);
