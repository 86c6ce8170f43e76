/**
 * LocalStore: a directory that behaves like the remote stores, so the whole publish/promote flow
 * works on a laptop with no account. It is the default store.
 *
 * Layout under `root`:
 * - `{path}`                      the current content, browsable as plain files (read-only hard
 *                                 links to the blobs below; a copy where links are not possible);
 * - `.store/blobs/ab/abcd…`       content-addressed bytes, never modified, so old versions stay
 *                                 readable (pinned reads) and identical content is stored once;
 * - `.store/meta/{path}.json`     sidecar per path: current version + history (schema below);
 * - `.store/counter`              the last version number handed out (store-wide, monotonic);
 * - `.store/lock`                 writer lock, created with O_EXCL, so conditional writes are safe
 *                                 between processes (stale locks of dead processes are broken).
 *
 * Every file is written to a temporary name and renamed, so readers never see a torn file. Readers
 * take no lock: a sidecar names an immutable blob, so any sidecar they read is consistent.
 */
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, link, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { exists } from '../util/fs-atomic.ts';
import { isAlive } from '../caching/action-lock.ts';
import {
  asStoreVersion,
  byPath,
  checkBatchPaths,
  checkStorePath,
  checkStorePrefix,
  digestFile,
  errorMessage,
  sha256Hex,
  storeFail,
  storeOk,
  writeReport,
  type CopyPair,
  type DeleteReport,
  type Downloaded,
  type FileWrite,
  type PutFile,
  type Sha256Hex,
  type Store,
  type StoreEntry,
  type StoreResult,
  type StoreVersion,
  type TransferProgress,
  type VersionedBytes,
  type WriteMode,
  type WriteOptions,
  type WriteReport,
} from './store.ts';

/** One version of one path in the sidecar. */
const RevisionSchema = z.object({
  version: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  message: z.string(),
});
type Revision = z.infer<typeof RevisionSchema>;

/** The per-path sidecar: `current` is null once deleted; `history` keeps every version, oldest first. */
const SidecarSchema = z.object({
  current: RevisionSchema.nullable(),
  history: z.array(RevisionSchema),
});
type Sidecar = z.infer<typeof SidecarSchema>;

/** The lock file's content: who holds it, to break locks left by dead processes. */
const LockSchema = z.object({ pid: z.number().int(), host: z.string(), at: z.number() });

/** Options of {@link LocalStore}. */
export interface LocalStoreOptions {
  root: string;
  /** Longest wait for the writer lock before failing with `transient` (default 60 s). */
  lockTimeoutMs?: number;
  /** A lock older than this is considered abandoned even if its pid looks alive (default 10 min). */
  staleLockMs?: number;
}

const INTERNAL = '.store';
/** How old an unreadable lock file must be to be taken for abandoned (its write takes microseconds). */
const UNREADABLE_LOCK_GRACE_MS = 10_000;

/** One destination of a batch after planning: where its bytes are and what it will do. */
interface Planned {
  path: string;
  sha256: Sha256Hex;
  size: number;
}

export class LocalStore implements Store {
  readonly kind = 'local' as const;
  readonly location: string;
  readonly #root: string;
  readonly #lockTimeoutMs: number;
  readonly #staleLockMs: number;

  constructor(options: LocalStoreOptions) {
    this.#root = options.root;
    this.location = `file:${options.root}`;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 60_000;
    this.#staleLockMs = options.staleLockMs ?? 10 * 60_000;
  }

  async list(prefix: string): Promise<StoreResult<StoreEntry[]>> {
    const checked = checkStorePrefix(prefix);
    if (!checked.ok) return checked;
    const metaRoot = join(this.#root, INTERNAL, 'meta');
    let names: string[];
    try {
      names = (await readdir(metaRoot, { recursive: true })).map(String);
    } catch (error) {
      if (isCode(error, 'ENOENT')) return storeOk([]);
      return storeFail('io-error', `cannot list ${metaRoot}: ${errorMessage(error)}`);
    }
    const entries: StoreEntry[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const path = name.slice(0, -'.json'.length).split('\\').join('/');
      if (!path.startsWith(prefix)) continue;
      const sidecar = await this.#readSidecar(path);
      if (!sidecar.ok) return sidecar;
      const current = sidecar.value.current;
      if (current) entries.push(toEntry(path, current));
    }
    return storeOk(entries.sort(byPath));
  }

  async stat(path: string): Promise<StoreResult<StoreEntry | null>> {
    const checked = this.#checkPath(path);
    if (!checked.ok) return checked;
    const sidecar = await this.#readSidecar(path);
    if (!sidecar.ok) return sidecar;
    return storeOk(sidecar.value.current ? toEntry(path, sidecar.value.current) : null);
  }

  async download(path: string, localFile: string, options: { version?: StoreVersion } = {}): Promise<StoreResult<Downloaded>> {
    const checked = this.#checkPath(path);
    if (!checked.ok) return checked;
    const sidecar = await this.#readSidecar(path);
    if (!sidecar.ok) return sidecar;
    const wanted =
      options.version === undefined
        ? sidecar.value.current
        : sidecar.value.history.find((r) => String(r.version) === options.version);
    if (!wanted) {
      const what = options.version === undefined ? path : `${path} at version ${options.version}`;
      return storeFail('not-found', `${what} does not exist in ${this.location}`, { path });
    }
    const copied = await copyVerified(this.#blobPath(wanted.sha256), localFile, {});
    if (!copied.ok) return copied;
    if (copied.value.sha256 !== wanted.sha256) {
      return storeFail('checksum-mismatch', `${path}: stored blob is corrupt (sha256 ${copied.value.sha256}, expected ${wanted.sha256})`, { path });
    }
    return storeOk({ path, size: wanted.size, sha256: wanted.sha256 as Sha256Hex, version: asStoreVersion(String(wanted.version)) });
  }

  async putFiles(files: readonly PutFile[], options: WriteOptions): Promise<StoreResult<WriteReport>> {
    const checked = this.#checkBatch(files.map((f) => f.path));
    if (!checked.ok) return checked;
    const planned: Planned[] = [];
    for (const file of files) {
      // Stage the blob first (outside the lock: blobs are content-addressed, so this is idempotent).
      const staged = await this.#stageBlobFromFile(file, options.onProgress);
      if (!staged.ok) return staged;
      planned.push({ path: file.path, ...staged.value });
    }
    return this.#commit(planned, options.mode, options.message);
  }

  async copy(pairs: readonly CopyPair[], options: Omit<WriteOptions, 'onProgress'>): Promise<StoreResult<WriteReport>> {
    const checked = this.#checkBatch(pairs.map((p) => p.to));
    if (!checked.ok) return checked;
    const planned: Planned[] = [];
    for (const pair of pairs) {
      const from = this.#checkPath(pair.from);
      if (!from.ok) return from;
      const source = await this.#readSidecar(pair.from);
      if (!source.ok) return source;
      if (!source.value.current) return storeFail('not-found', `copy source ${pair.from} does not exist in ${this.location}`, { path: pair.from });
      planned.push({ path: pair.to, sha256: source.value.current.sha256 as Sha256Hex, size: source.value.current.size });
    }
    return this.#commit(planned, options.mode, options.message);
  }

  async delete(paths: readonly string[]): Promise<StoreResult<DeleteReport>> {
    const checked = this.#checkBatch(paths);
    if (!checked.ok) return checked;
    return this.#locked(async (): Promise<StoreResult<DeleteReport>> => {
      const present: string[] = [];
      const missing: string[] = [];
      const sidecars = new Map<string, Sidecar>();
      for (const path of paths) {
        const sidecar = await this.#readSidecar(path);
        if (!sidecar.ok) return sidecar;
        if (sidecar.value.current) {
          present.push(path);
          sidecars.set(path, sidecar.value);
        } else missing.push(path);
      }
      if (present.length === 0) return storeOk({ batchVersion: null, deleted: [], missing });
      const version = await this.#nextVersion();
      for (const path of present) {
        await rm(join(this.#root, path), { force: true });
        const sidecar = sidecars.get(path) as Sidecar;
        await this.#writeSidecar(path, { current: null, history: sidecar.history });
      }
      return storeOk({ batchVersion: asStoreVersion(String(version)), deleted: present, missing });
    });
  }

  async readVersioned(path: string): Promise<StoreResult<VersionedBytes | null>> {
    const checked = this.#checkPath(path);
    if (!checked.ok) return checked;
    const sidecar = await this.#readSidecar(path);
    if (!sidecar.ok) return sidecar;
    const current = sidecar.value.current;
    if (!current) return storeOk(null);
    try {
      const bytes = new Uint8Array(await readFile(this.#blobPath(current.sha256)));
      if (sha256Hex(bytes) !== current.sha256) return storeFail('checksum-mismatch', `${path}: stored blob is corrupt`, { path });
      return storeOk({ bytes, version: asStoreVersion(String(current.version)) });
    } catch (error) {
      return storeFail('io-error', `cannot read ${path}: ${errorMessage(error)}`, { path });
    }
  }

  async writeIfVersion(
    path: string,
    bytes: Uint8Array,
    expected: StoreVersion | null,
    options: { message: string },
  ): Promise<StoreResult<{ version: StoreVersion }>> {
    const checked = this.#checkPath(path);
    if (!checked.ok) return checked;
    const sha256 = sha256Hex(bytes);
    const blob = this.#blobPath(sha256);
    try {
      if (!(await exists(blob))) await writeAtomic(blob, bytes, 0o444);
    } catch (error) {
      return storeFail('io-error', `cannot stage ${path}: ${errorMessage(error)}`, { path });
    }
    return this.#locked(async () => {
      const sidecar = await this.#readSidecar(path);
      if (!sidecar.ok) return sidecar;
      const current = sidecar.value.current;
      const currentVersion = current ? String(current.version) : null;
      if (currentVersion !== expected) {
        return storeFail('conflict', `${path} changed since it was read (now at ${currentVersion ?? 'absent'}, expected ${expected ?? 'absent'}); re-read and retry`, { path });
      }
      const version = await this.#nextVersion();
      await this.#place({ path, sha256, size: bytes.byteLength }, version, sidecar.value, options.message);
      return storeOk({ version: asStoreVersion(String(version)) });
    });
  }

  // -------------------------------------------------------------------------------------------

  /** Under the lock: re-check every destination, refuse append-only violations, then place all. */
  async #commit(planned: Planned[], mode: WriteMode, message: string): Promise<StoreResult<WriteReport>> {
    return this.#locked(async () => {
      const sidecars = new Map<string, Sidecar>();
      const toWrite: Planned[] = [];
      const skipped: FileWrite[] = [];
      for (const item of planned) {
        const sidecar = await this.#readSidecar(item.path);
        if (!sidecar.ok) return sidecar;
        sidecars.set(item.path, sidecar.value);
        const current = sidecar.value.current;
        if (current && current.sha256 === item.sha256) {
          skipped.push({ ...item, action: 'skipped', version: asStoreVersion(String(current.version)) });
        } else if (current && mode === 'append-only') {
          return storeFail('append-only-violation', `${item.path} already exists in ${this.location} with different content (sha256 ${current.sha256}, new ${item.sha256}); append-only paths are never overwritten`, { path: item.path });
        } else toWrite.push(item);
      }
      if (toWrite.length === 0) return storeOk(writeReport(null, orderLike(planned, skipped)));
      const version = await this.#nextVersion();
      const written: FileWrite[] = [];
      for (const item of toWrite) {
        await this.#place(item, version, sidecars.get(item.path) as Sidecar, message);
        written.push({ ...item, action: 'written', version: asStoreVersion(String(version)) });
      }
      return storeOk(writeReport(asStoreVersion(String(version)), orderLike(planned, [...written, ...skipped])));
    });
  }

  /** Points `path` at an already-staged blob and records the new revision. */
  async #place(item: Planned, version: number, sidecar: Sidecar, message: string): Promise<void> {
    const target = join(this.#root, item.path);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await link(this.#blobPath(item.sha256), tmp);
    } catch {
      await copyFile(this.#blobPath(item.sha256), tmp);
    }
    await rename(tmp, target);
    const revision: Revision = { version, sha256: item.sha256, size: item.size, message };
    await this.#writeSidecar(item.path, { current: revision, history: [...sidecar.history, revision] });
  }

  /** Copies a local file into the blob area, hashing while copying so what is stored is what is named. */
  async #stageBlobFromFile(
    file: PutFile,
    onProgress: ((p: TransferProgress) => void) | undefined,
  ): Promise<StoreResult<{ sha256: Sha256Hex; size: number }>> {
    let digests;
    try {
      digests = await digestFile(file.localPath);
    } catch (error) {
      return storeFail('io-error', `cannot read ${file.localPath}: ${errorMessage(error)}`, { path: file.path });
    }
    const blob = this.#blobPath(digests.sha256);
    if (await exists(blob)) return storeOk({ sha256: digests.sha256, size: digests.size });
    const copied = await copyVerified(file.localPath, blob, {
      mode: 0o444,
      ...(onProgress && { onProgress: (done: number) => onProgress({ path: file.path, bytesDone: done, bytesTotal: digests.size }) }),
    });
    if (!copied.ok) return copied;
    if (copied.value.sha256 !== digests.sha256) {
      await rm(blob, { force: true });
      return storeFail('checksum-mismatch', `${file.localPath} changed while it was being stored; retry once it is complete`, { path: file.path });
    }
    return storeOk({ sha256: digests.sha256, size: digests.size });
  }

  async #readSidecar(path: string): Promise<StoreResult<Sidecar>> {
    const file = join(this.#root, INTERNAL, 'meta', `${path}.json`);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if (isCode(error, 'ENOENT') || isCode(error, 'ENOTDIR')) return storeOk({ current: null, history: [] });
      return storeFail('io-error', `cannot read ${file}: ${errorMessage(error)}`, { path });
    }
    const parsed = SidecarSchema.safeParse(safeJson(text));
    return parsed.success ? storeOk(parsed.data) : storeFail('io-error', `corrupt sidecar ${file}: ${parsed.error.message}`, { path });
  }

  async #writeSidecar(path: string, sidecar: Sidecar): Promise<void> {
    await writeAtomic(join(this.#root, INTERNAL, 'meta', `${path}.json`), JSON.stringify(sidecar));
  }

  /** Reserves the next version number. Written before any file, so a crash never reuses a number. */
  async #nextVersion(): Promise<number> {
    const file = join(this.#root, INTERNAL, 'counter');
    let last = 0;
    try {
      last = Number.parseInt((await readFile(file, 'utf8')).trim(), 10) || 0;
    } catch (error) {
      if (!isCode(error, 'ENOENT')) throw error;
    }
    await writeAtomic(file, String(last + 1));
    return last + 1;
  }

  /** Runs `body` holding the store-wide writer lock (O_EXCL lock file; dead holders are evicted). */
  async #locked<T>(body: () => Promise<StoreResult<T>>): Promise<StoreResult<T>> {
    const lockFile = join(this.#root, INTERNAL, 'lock');
    await mkdir(dirname(lockFile), { recursive: true });
    const deadline = Date.now() + this.#lockTimeoutMs;
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      // Written whole beside it, then linked into place (link fails if the lock exists): a holder
      // killed at any moment leaves either no lock or a complete one that names a dead pid.
      const draft = `${lockFile}.${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        await writeFile(draft, JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now() }));
        await link(draft, lockFile);
        break;
      } catch (error) {
        if (!isCode(error, 'EEXIST')) return storeFail('io-error', `cannot create lock ${lockFile}: ${errorMessage(error)}`);
      } finally {
        await unlink(draft).catch(() => undefined);
      }
      if (await this.#breakIfStale(lockFile)) continue;
      if (Date.now() > deadline) return storeFail('transient', `${this.location} is locked by another writer (${lockFile}); retry later or remove the lock if no build is running`);
      await new Promise((resolve) => setTimeout(resolve, wait + Math.random() * wait));
    }
    try {
      return await body();
    } catch (error) {
      return storeFail('io-error', `write to ${this.location} failed: ${errorMessage(error)}`);
    } finally {
      await unlink(lockFile).catch(() => undefined);
    }
  }

  /** Evicts a lock whose holder is dead (same host) or that is older than the stale limit. */
  async #breakIfStale(lockFile: string): Promise<boolean> {
    let holder;
    try {
      holder = LockSchema.safeParse(safeJson(await readFile(lockFile, 'utf8')));
    } catch {
      return false; // vanished meanwhile: just retry
    }
    // Unreadable: a lock an older version began and never finished writing; only its age can tell.
    if (!holder.success) return this.#breakUnreadable(lockFile);
    const dead = holder.data.host === hostname() && !isAlive(holder.data.pid);
    if (!dead && Date.now() - holder.data.at < this.#staleLockMs) return false;
    // Rename first so that two breakers cannot both delete a fresh lock taken in between.
    const moved = `${lockFile}.stale-${randomBytes(6).toString('hex')}`;
    try {
      await rename(lockFile, moved);
      await rm(moved, { force: true });
    } catch {
      /* someone else broke it */
    }
    return true;
  }

  /** Evicts an unreadable lock file once it is older than any write of it could take. */
  async #breakUnreadable(lockFile: string): Promise<boolean> {
    const mtime = await stat(lockFile).then((st) => st.mtimeMs, () => null);
    if (mtime === null || Date.now() - mtime < UNREADABLE_LOCK_GRACE_MS) return false;
    // Moved aside first, as #breakIfStale does, so two breakers remove it once.
    const moved = `${lockFile}.stale-${randomBytes(6).toString('hex')}`;
    await rename(lockFile, moved).then(() => rm(moved, { force: true }), () => undefined);
    return true;
  }

  #blobPath(sha256: string): string {
    return join(this.#root, INTERNAL, 'blobs', sha256.slice(0, 2), sha256);
  }

  #checkPath(path: string): StoreResult<string> {
    const checked = checkStorePath(path);
    if (!checked.ok) return checked;
    if (path === INTERNAL || path.startsWith(`${INTERNAL}/`)) return storeFail('invalid-path', `${path}: '${INTERNAL}/' is reserved by the local store`, { path });
    return checked;
  }

  #checkBatch(paths: readonly string[]): StoreResult<void> {
    for (const path of paths) {
      const checked = this.#checkPath(path);
      if (!checked.ok) return checked;
    }
    return checkBatchPaths(paths);
  }
}

const toEntry = (path: string, revision: Revision): StoreEntry => ({
  path,
  size: revision.size,
  sha256: revision.sha256 as Sha256Hex,
  version: asStoreVersion(String(revision.version)),
});

/** Reorders per-file outcomes to the caller's order. */
function orderLike(planned: Planned[], outcomes: FileWrite[]): FileWrite[] {
  const outcomeByPath = new Map(outcomes.map((o) => [o.path, o]));
  return planned.map((p) => outcomeByPath.get(p.path) as FileWrite);
}

/** Copies `from` to `to` via a temp file + rename, hashing the bytes as they are written. */
async function copyVerified(
  from: string,
  to: string,
  options: { mode?: number; onProgress?: (bytesDone: number) => void },
): Promise<StoreResult<{ sha256: Sha256Hex; size: number }>> {
  const tmp = `${to}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await mkdir(dirname(to), { recursive: true });
    const input = await open(from, 'r');
    const output = await open(tmp, 'w');
    const hash = createHash('sha256');
    let size = 0;
    try {
      const buffer = Buffer.allocUnsafe(8 * 1024 * 1024);
      for (;;) {
        const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        hash.update(chunk);
        await output.write(chunk);
        size += bytesRead;
        options.onProgress?.(size);
      }
    } finally {
      await input.close();
      await output.close();
    }
    if (options.mode !== undefined) await chmod(tmp, options.mode);
    await rename(tmp, to);
    return storeOk({ sha256: hash.digest('hex') as Sha256Hex, size });
  } catch (error) {
    await rm(tmp, { force: true });
    return storeFail('io-error', `cannot copy ${from} to ${to}: ${errorMessage(error)}`);
  }
}

async function writeAtomic(path: string, data: string | Uint8Array, mode?: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(tmp, data);
    if (mode !== undefined) await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

const isCode = (error: unknown, code: string): boolean =>
  typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
