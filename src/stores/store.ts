/**
 * The Store interface: the one way the build moves bytes to and from a place that outlives a run
 * (a local directory, a Hugging Face repo, a GCS bucket). Publishing, promote and the version
 * registry are written against this interface only, and one contract suite
 * (`test/stores.contract.test.ts`) holds every implementation to the same semantics.
 *
 * Design choices that every implementation honours:
 * - Expected failures are values (`StoreResult`), discriminated by a `StoreReason` (report/failures.ts); only bugs
 *   throw. Failure messages never contain a credential (see {@link scrubSecrets}).
 * - Every write reports the version the backend assigned (HF commit OID, GCS generation, local
 *   counter), taken from the write's own response, so callers can pin later reads to it.
 * - Writes skip content the destination already has (same sha256), so a rerun writes 0 bytes.
 * - Transient failures (429, 5xx, timeouts, dropped connections) are retried with bounded
 *   exponential backoff; 409/412 and other 4xx are never retried blindly.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { NotRegularFile, xxh128Hasher, type Digest } from '../caching/hash.ts';
import { dirname } from 'node:path';
import type { Failure, Result, StoreReason } from '../report/failures.ts';

/** Which backend a store talks to; also the `kind` of its config. */
export type StoreKind = 'local' | 'hf' | 'gcs';

/**
 * A backend-assigned version: an HF commit OID (40 hex), a GCS generation (decimal string), or the
 * local store's monotonic counter (decimal string). Opaque to callers: only ever handed back to the
 * store that produced it (pinned reads, conditional writes) or recorded in the registry.
 */
export type StoreVersion = string & { readonly __brand: 'StoreVersion' };

/** Brands a string read from a backend (or from a validated record) as a {@link StoreVersion}. */
export const asStoreVersion = (value: string): StoreVersion => value as StoreVersion;

/** Hex sha256 of a file's bytes; the identity used to skip uploads and to verify downloads. */
export type Sha256Hex = string & { readonly __brand: 'Sha256Hex' };

/** Orders entries by path, bytewise (as every store lists them, whatever the backend's order). */
export const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** One file as a store lists it. Crosses the network/disk boundary, hence the schema below. */
export interface StoreEntry {
  /** Relative POSIX path inside the store, e.g. `staging/RUN/national/US.h5`. */
  path: string;
  /** Size in bytes of the file's content (not of an LFS pointer). */
  size: number;
  /**
   * sha256 of the content when the backend knows it without reading the bytes: HF LFS oid, GCS
   * custom metadata `sha256` written by this store, local sidecar. Absent otherwise (e.g. a small
   * HF file stored as a plain git blob, or a GCS object written by another tool).
   */
  sha256?: Sha256Hex;
  /**
   * A version at which this content can be read back: HF commit OID of the snapshot listed, GCS
   * generation of the object, local version of the path's last write.
   */
  version: StoreVersion;
}

/** A local file to upload and the store path it goes to. */
export interface PutFile {
  /** Absolute or cwd-relative path of the local file to read. */
  localPath: string;
  /** Destination path inside the store. */
  path: string;
}

/** A server-side copy inside one store (staging -> production on promote). */
export interface CopyPair {
  from: string;
  to: string;
}

/**
 * `overwrite`: a destination with different content is replaced (production paths on promote).
 * `append-only`: a destination with different content is an `append-only-violation` and nothing
 * in the batch is written (diagnostics, staging). Identical content is skipped in both modes.
 */
export type WriteMode = 'overwrite' | 'append-only';

/** Progress of one large transfer; `bytesDone` only grows. */
export interface TransferProgress {
  path: string;
  bytesDone: number;
  bytesTotal: number;
}

/** Options shared by batch writes. */
export interface WriteOptions {
  /** Commit title on HF; kept in the local log; ignored by GCS (no commits). */
  message: string;
  mode: WriteMode;
  /** Called as large files upload; never called for skipped files. */
  onProgress?: (progress: TransferProgress) => void;
}

/** What happened to one destination path in a batch write. */
export interface FileWrite {
  path: string;
  size: number;
  sha256: Sha256Hex;
  /** `written` when bytes (or a server-side copy) reached the destination, `skipped` if it already had them. */
  action: 'written' | 'skipped';
  /** Version at which the destination now holds this content (for skipped files: the observed one). */
  version: StoreVersion;
}

/** Outcome of a batch write (putFiles or copy). */
export interface WriteReport {
  /**
   * The version covering the whole batch: the HF commit OID of its one commit, or the local
   * counter. `null` on GCS (no multi-object version; see each file's generation) and when nothing
   * needed writing on HF.
   */
  batchVersion: StoreVersion | null;
  files: FileWrite[];
  written: { files: number; bytes: number };
  skipped: { files: number; bytes: number };
}

/** Outcome of a download. */
export interface Downloaded {
  path: string;
  size: number;
  /** sha256 of the bytes written to the local file (computed while writing). */
  sha256: Sha256Hex;
  /** The version that was read (the pinned one if given, else the current one). */
  version: StoreVersion;
}

/** Outcome of a delete batch; paths that did not exist are listed as `missing`, not an error. */
export interface DeleteReport {
  batchVersion: StoreVersion | null;
  deleted: string[];
  missing: string[];
}

/** A small document read together with the version it was read at (for a later conditional write). */
export interface VersionedBytes {
  bytes: Uint8Array;
  version: StoreVersion;
}

/** A store failure. `completed` lists what a non-atomic batch (GCS, local) did before failing. */
export interface StoreFailure extends Failure<StoreReason> {
  /** The store path concerned, when there is one. */
  path?: string;
  /** HTTP status from the backend, when there was one. */
  status?: number;
  /** Writes that did land before the failure, so a caller can report exactly what was done. */
  completed?: FileWrite[];
}

/** Result of every store operation. */
export type StoreResult<T> = Result<T, StoreFailure>;

/** Builds a success value. */
export const storeOk = <T>(value: T): StoreResult<T> => ({ ok: true, value });

/** Builds a failure value. */
export const storeFail = <T = never>(
  reason: StoreReason,
  message: string,
  extra: Omit<StoreFailure, 'reason' | 'message'> = {},
): StoreResult<T> => ({ ok: false, failure: { reason, message, ...extra } });

/**
 * The storage backends' common contract. Paths are relative POSIX paths; prefixes are plain string
 * prefixes (`list('staging/RUN/')`), as in GCS.
 */
export interface Store {
  readonly kind: StoreKind;
  /** Where the store points, for messages (`hf:datasets/org/repo`, `gs://bucket`, `file:/dir`); never holds a secret. */
  readonly location: string;
  /** Every file whose path starts with `prefix`, sorted by path. */
  list(prefix: string): Promise<StoreResult<StoreEntry[]>>;
  /** One file's entry, or `null` if it does not exist. */
  stat(path: string): Promise<StoreResult<StoreEntry | null>>;
  /** Writes the file (at `version` if given) to `localFile` atomically; `not-found` if absent. */
  download(path: string, localFile: string, options?: { version?: StoreVersion }): Promise<StoreResult<Downloaded>>;
  /** Uploads many files as one batch (HF: one commit), skipping identical content. */
  putFiles(files: readonly PutFile[], options: WriteOptions): Promise<StoreResult<WriteReport>>;
  /** Copies inside the store as one batch (HF: one commit, LFS files by oid), skipping identical content. */
  copy(pairs: readonly CopyPair[], options: Omit<WriteOptions, 'onProgress'>): Promise<StoreResult<WriteReport>>;
  /** Deletes paths as one batch (HF: one commit); missing paths are reported, not an error. */
  delete(paths: readonly string[], options: { message: string }): Promise<StoreResult<DeleteReport>>;
  /** Reads a small document with the version to pass to {@link writeIfVersion}; `null` if absent. */
  readVersioned(path: string): Promise<StoreResult<VersionedBytes | null>>;
  /**
   * Writes `bytes` only if the document is still at `expected` (`null`: only if it does not exist).
   * A lost race is `{ok:false, failure:{reason:'conflict'}}`; the caller re-reads and decides.
   * HF versions are repo-wide commits, so any commit on the branch since the read is a conflict.
   */
  writeIfVersion(
    path: string,
    bytes: Uint8Array,
    expected: StoreVersion | null,
    options: { message: string },
  ): Promise<StoreResult<{ version: StoreVersion }>>;
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the implementations.

/** Refuses paths that could escape a prefix or mean different things on different backends. */
export function checkStorePath(path: string): StoreResult<string> {
  const bad =
    path.length === 0 ||
    path.startsWith('/') ||
    path.endsWith('/') ||
    path.includes('\\') ||
    /[\u0000-\u001f]/.test(path) ||
    path.split('/').some((segment) => segment === '' || segment === '.' || segment === '..');
  return bad
    ? storeFail('invalid-path', `invalid store path ${JSON.stringify(path)}: use a relative POSIX path without '.', '..' or empty segments`, { path })
    : storeOk(path);
}

/** Checks a list prefix: empty, or a path prefix without `..`/`.` segments. */
export function checkStorePrefix(prefix: string): StoreResult<string> {
  if (prefix === '') return storeOk(prefix);
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  const checked = checkStorePath(trimmed);
  return checked.ok ? storeOk(prefix) : storeFail('invalid-path', `invalid store prefix ${JSON.stringify(prefix)}`, { path: prefix });
}

/** Replaces every occurrence of each secret in `text` by `***`, so no message can leak a token. */
export function scrubSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('***');
  }
  return out;
}

/** Digests of a local file, computed in one pass. */
export interface FileDigests {
  size: number;
  sha256: Sha256Hex;
  /** base64 md5, as GCS reports `md5Hash` (only if requested). */
  md5Base64?: string;
  /** git blob sha1 (`blob {size}\0` + bytes), as HF reports `oid` for non-LFS files (only if requested). */
  gitBlobSha1?: string;
  /** XXH3-128, the digest the build records for outputs (only if requested). */
  xxh128?: Digest;
}

/**
 * Streams a file once through the requested hashes, reading into one reused 8 MiB buffer (several
 * times faster than `createReadStream`, which allocates per chunk).
 */
export async function digestFile(
  localPath: string,
  options: { md5?: boolean; gitBlobSha1?: boolean; xxh128?: boolean } = {},
): Promise<FileDigests> {
  // O_NONBLOCK: the open of a FIFO returns at once (and is refused below) instead of hanging.
  const handle = await open(localPath, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new NotRegularFile(localPath);
    const { size } = st;
    const sha256 = createHash('sha256');
    const md5 = options.md5 ? createHash('md5') : undefined;
    const sha1 = options.gitBlobSha1 ? createHash('sha1').update(`blob ${size}\0`) : undefined;
    const xxh = options.xxh128 ? xxh128Hasher() : undefined;
    const buffer = Buffer.allocUnsafe(Math.min(8 * 1024 * 1024, Math.max(size, 1)));
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      sha256.update(chunk);
      md5?.update(chunk);
      sha1?.update(chunk);
      xxh?.update(chunk);
    }
    return {
      size,
      sha256: sha256.digest('hex') as Sha256Hex,
      ...(xxh && { xxh128: xxh.digest() }),
      ...(md5 && { md5Base64: md5.digest('base64') }),
      ...(sha1 && { gitBlobSha1: sha1.digest('hex') }),
    };
  } finally {
    await handle.close();
  }
}

/** sha256 of bytes in memory. */
export const sha256Hex = (bytes: Uint8Array): Sha256Hex => createHash('sha256').update(bytes).digest('hex') as Sha256Hex;

/** How hard to retry transient failures. Injectable so tests run without real waiting. */
export interface RetryPolicy {
  /** Attempts in total, including the first (>= 1). */
  attempts: number;
  /** Delay before the first retry; doubles each retry. */
  baseDelayMs: number;
  /** Cap on one delay. */
  maxDelayMs: number;
  /** Waits; tests pass a recorder that resolves at once. */
  sleep: (ms: number) => Promise<void>;
}

/** Five attempts over ~15 s at most: enough for a Hub/GCS hiccup, short enough to fail honestly. */
export const defaultRetryPolicy: RetryPolicy = {
  attempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Failures worth another attempt: the backend may answer differently in a moment. */
export const isRetryable = (failure: StoreFailure): boolean =>
  failure.reason === 'transient' || failure.reason === 'timeout';

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable reason, or the policy is spent.
 * `attempt` gets the 0-based attempt number so it can resolve ambiguous outcomes (a write that
 * timed out but landed) on later attempts.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  attempt: (attemptNumber: number) => Promise<StoreResult<T>>,
): Promise<StoreResult<T>> {
  let last: StoreResult<T> | undefined;
  for (let n = 0; n < Math.max(1, policy.attempts); n++) {
    if (n > 0) await policy.sleep(Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 1)));
    last = await attempt(n);
    if (last.ok || !isRetryable(last.failure)) return last;
  }
  if (last === undefined || last.ok) throw new Error('withRetry: unreachable');
  return storeFail(last.failure.reason, `${last.failure.message} (gave up after ${policy.attempts} attempts)`, {
    ...(last.failure.path !== undefined && { path: last.failure.path }),
    ...(last.failure.status !== undefined && { status: last.failure.status }),
    ...(last.failure.completed !== undefined && { completed: last.failure.completed }),
  });
}

/** Maps an HTTP status to the failure reason every store uses for it. */
export function reasonForStatus(status: number): StoreReason {
  if (status === 401 || status === 403) return 'auth-rejected';
  if (status === 404) return 'not-found';
  if (status === 409 || status === 412) return 'conflict';
  if (status === 408) return 'timeout';
  if (status === 429 || status >= 500) return 'transient';
  return 'remote-error';
}

/** Network-level error codes that mean "try again", as raised by undici, gaxios and node:net. */
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'ECONNABORTED']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** Classifies an error without an HTTP status (network drop, abort, timeout) by walking its causes. */
export function reasonForNetworkError(error: unknown): StoreReason | undefined {
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const { name, code, message } = e as { name?: unknown; code?: unknown; message?: unknown };
    if (name === 'TimeoutError' || (typeof code === 'string' && TIMEOUT_CODES.has(code))) return 'timeout';
    if (typeof message === 'string' && /timed? ?out/i.test(message)) return 'timeout';
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return 'transient';
    if (typeof message === 'string' && /fetch failed|socket hang up|other side closed|network/i.test(message)) return 'transient';
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The message of anything thrown (with its network cause code, e.g. `fetch failed (ECONNREFUSED)`). */
export function errorMessage(error: unknown): string {
  if (!(error instanceof Error)) return typeof error === 'string' ? error : JSON.stringify(error);
  const cause = (error as { cause?: { code?: unknown } }).cause;
  const code = cause && typeof cause.code === 'string' ? cause.code : undefined;
  return code && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
}

/**
 * Iterates `source`, failing with a `TimeoutError` if no chunk arrives for `idleMs` (a stalled
 * download must not hang a build; a slow but moving one is fine). `abort` releases the source.
 */
export async function* withIdleTimeout<T>(source: AsyncIterable<T>, idleMs: number, abort: () => void): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DOMException(`no data for ${idleMs} ms`, 'TimeoutError')), idleMs);
    });
    let step: IteratorResult<T>;
    try {
      step = await Promise.race([iterator.next(), stalled]);
    } catch (error) {
      abort();
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    if (step.done) return;
    yield step.value;
  }
}

/** Sums a batch's per-file outcomes into a {@link WriteReport}. */
/**
 * Writes chunks to `localFile` through a temporary name and a rename (a failed or stalled
 * download never leaves a partial file), calling `onChunk` for each chunk (hashing on the way).
 */
export async function chunksToFile(chunks: AsyncIterable<Uint8Array>, localFile: string, onChunk: (chunk: Uint8Array) => void): Promise<number> {
  await mkdir(dirname(localFile), { recursive: true });
  const tmp = `${localFile}.tmp-${randomBytes(6).toString('hex')}`;
  let size = 0;
  const handle = await open(tmp, 'w');
  try {
    for await (const chunk of chunks) {
      onChunk(chunk);
      size += chunk.byteLength;
      await handle.write(chunk);
    }
    await handle.close();
    await rename(tmp, localFile);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
  return size;
}

export function writeReport(batchVersion: StoreVersion | null, files: FileWrite[]): WriteReport {
  const sum = (action: FileWrite['action']) => {
    const chosen = files.filter((f) => f.action === action);
    return { files: chosen.length, bytes: chosen.reduce((total, f) => total + f.size, 0) };
  };
  return { batchVersion, files, written: sum('written'), skipped: sum('skipped') };
}

/** Checks every path of a batch and that no destination appears twice. */
export function checkBatchPaths(paths: readonly string[]): StoreResult<void> {
  const seen = new Set<string>();
  for (const path of paths) {
    const checked = checkStorePath(path);
    if (!checked.ok) return checked;
    if (seen.has(path)) return storeFail('invalid-path', `path ${path} appears twice in one batch`, { path });
    seen.add(path);
  }
  return storeOk(undefined);
}
