/**
 * GcsStore: a GCS bucket as a Store, through `@google-cloud/storage` (imported lazily: it costs
 * ~250 ms at import time, which commands that never publish should not pay).
 *
 * How the Store contract maps onto GCS:
 * - A version is an object generation. Every write carries `ifGenerationMatch` (0 = "must not
 *   exist", else the generation the write was planned against), and the generation written is
 *   taken from the upload/rewrite response itself, never read back afterwards.
 * - Pinned reads use `?generation=`. They only work for generations the bucket still keeps: with
 *   Object Versioning off, an overwritten generation is gone. Buckets whose registry points at old
 *   generations (rollback) need Object Versioning enabled.
 * - Uploads are one request per object (GCS has no multi-object transaction). Files from
 *   `resumableThreshold` bytes use a resumable session. The SDK validates the crc32c the server
 *   reports against what it sent; the store writes the content's sha256 as custom metadata
 *   (`metadata.sha256`) so later runs detect identical content without downloading it (objects
 *   written by other tools fall back to comparing md5).
 * - The SDK's own retries are switched off: this store retries 429/5xx/timeouts itself with the
 *   injected policy, and resolves ambiguous outcomes (a write that landed but whose answer was
 *   lost shows up as a 412 on retry; if the object then holds our sha256, the write succeeded).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import {
  asStoreVersion,
  byPath,
  checkBatchPaths,
  checkStorePath,
  checkStorePrefix,
  defaultRetryPolicy,
  digestFile,
  errorMessage,
  reasonForNetworkError,
  reasonForStatus,
  sha256Hex,
  storeFail,
  storeOk,
  withIdleTimeout,
  chunksToFile,
  withRetry,
  writeReport,
  type CopyPair,
  type DeleteReport,
  type Downloaded,
  type FileDigests,
  type FileWrite,
  type PutFile,
  type RetryPolicy,
  type Sha256Hex,
  type Store,
  type StoreEntry,
  type StoreFailure,
  type StoreResult,
  type StoreVersion,
  type TransferProgress,
  type VersionedBytes,
  type WriteMode,
  type WriteOptions,
  type WriteReport,
} from './store.ts';
import { importModule } from '../util/dynamic-import.ts';

type GcsSdk = typeof import('@google-cloud/storage');
type Bucket = import('@google-cloud/storage').Bucket;

/** Options of {@link GcsStore}. */
export interface GcsStoreOptions {
  bucket: string;
  /** JSON API endpoint of an emulator or test server; unset for the real service. */
  apiEndpoint?: string;
  projectId?: string;
  /** Service-account key file; unset: GOOGLE_APPLICATION_CREDENTIALS / application default credentials. */
  keyFilename?: string;
  retry?: RetryPolicy;
  /** Per-request time limit passed to the SDK (default 60 s). */
  requestTimeoutMs?: number;
  /** Files from this size use a resumable upload session (default 8 MiB). */
  resumableThreshold?: number;
  /** Uploads in flight at once (default 4). */
  concurrency?: number;
}

/** The object fields this store relies on, validated as they come back from the API. */
const ObjectMetadataSchema = z.object({
  name: z.string(),
  generation: z.union([z.string(), z.number()]).transform(String),
  size: z.union([z.string(), z.number()]).transform(Number),
  md5Hash: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
});
type ObjectMetadata = z.infer<typeof ObjectMetadataSchema>;

/** The sha256 this store records as custom metadata, if present and well-formed. */
const recordedSha256 = (object: ObjectMetadata): Sha256Hex | undefined => {
  const value = object.metadata?.sha256;
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value) ? (value as Sha256Hex) : undefined;
};

/** Same content? By recorded sha256 when both are known, else by md5. */
function sameContent(object: ObjectMetadata, digest: { sha256: string; md5Base64?: string; size: number }): boolean {
  if (object.size !== digest.size) return false;
  const sha = recordedSha256(object);
  if (sha) return sha === digest.sha256;
  return digest.md5Base64 !== undefined && object.md5Hash === digest.md5Base64;
}

export class GcsStore implements Store {
  readonly kind = 'gcs' as const;
  readonly location: string;
  readonly #options: GcsStoreOptions;
  readonly #retry: RetryPolicy;
  #bucketPromise: Promise<Bucket> | undefined;

  constructor(options: GcsStoreOptions) {
    this.#options = options;
    this.#retry = options.retry ?? defaultRetryPolicy;
    this.location = `gs://${options.bucket}`;
  }

  async list(prefix: string): Promise<StoreResult<StoreEntry[]>> {
    const checked = checkStorePrefix(prefix);
    if (!checked.ok) return checked;
    return withRetry(this.#retry, () =>
      this.#guard(async (bucket) => {
        const [files] = await bucket.getFiles({ prefix, autoPaginate: true });
        const entries = files.map((file) => toEntry(ObjectMetadataSchema.parse(file.metadata)));
        return storeOk(entries.sort(byPath));
      }),
    );
  }

  async stat(path: string): Promise<StoreResult<StoreEntry | null>> {
    const checked = checkStorePath(path);
    if (!checked.ok) return checked;
    return withRetry(this.#retry, () =>
      this.#guard(async (bucket) => {
        const object = await this.#metadata(bucket, path);
        return storeOk(object ? toEntry(object) : null);
      }),
    );
  }

  async download(path: string, localFile: string, options: { version?: StoreVersion } = {}): Promise<StoreResult<Downloaded>> {
    const checked = checkStorePath(path);
    if (!checked.ok) return checked;
    return withRetry(this.#retry, () =>
      this.#guard(async (bucket) => {
        const object = await this.#metadata(bucket, path, options.version);
        if (!object) {
          const what = options.version ? `${path} at generation ${options.version}` : path;
          return storeFail('not-found', `${what} does not exist in ${this.location}`, { path });
        }
        // Read exactly the generation just described, even if the object is replaced meanwhile.
        const file = bucket.file(path, { generation: object.generation });
        const written = await streamToFile(file.createReadStream({ validation: 'crc32c' }), localFile, this.#options.requestTimeoutMs ?? 60_000);
        const expected = recordedSha256(object);
        if (expected && expected !== written.sha256) {
          await rm(localFile, { force: true });
          return storeFail('checksum-mismatch', `${path}: downloaded sha256 ${written.sha256} differs from the recorded ${expected}`, { path });
        }
        return storeOk({ path, size: written.size, sha256: written.sha256, version: asStoreVersion(object.generation) });
      }),
    );
  }

  async putFiles(files: readonly PutFile[], options: WriteOptions): Promise<StoreResult<WriteReport>> {
    const checked = checkBatchPaths(files.map((f) => f.path));
    if (!checked.ok) return checked;
    const digests = new Map<string, FileDigests>();
    for (const file of files) {
      try {
        digests.set(file.path, await digestFile(file.localPath, { md5: true }));
      } catch (error) {
        return storeFail('io-error', `cannot read ${file.localPath}: ${errorMessage(error)}`, { path: file.path });
      }
    }
    return this.#writeBatch(
      files.map((file) => {
        const digest = digests.get(file.path) as FileDigests;
        return {
          path: file.path,
          digest,
          write: (bucket: Bucket, ifGenerationMatch: number | string) =>
            this.#upload(bucket, file, digest, ifGenerationMatch, options.onProgress),
        };
      }),
      options.mode,
    );
  }

  async copy(pairs: readonly CopyPair[], options: Omit<WriteOptions, 'onProgress'>): Promise<StoreResult<WriteReport>> {
    const checked = checkBatchPaths(pairs.map((p) => p.to));
    if (!checked.ok) return checked;
    const sources = new Map<string, ObjectMetadata>();
    for (const pair of pairs) {
      const from = checkStorePath(pair.from);
      if (!from.ok) return from;
      const source = await withRetry(this.#retry, () => this.#guard(async (bucket) => storeOk(await this.#metadata(bucket, pair.from))));
      if (!source.ok) return source;
      if (!source.value) return storeFail('not-found', `copy source ${pair.from} does not exist in ${this.location}`, { path: pair.from });
      if (!recordedSha256(source.value)) {
        return storeFail('remote-error', `copy source ${pair.from} has no recorded sha256 (not written by this store); upload it with putFiles first`, { path: pair.from });
      }
      sources.set(pair.from, source.value);
    }
    return this.#writeBatch(
      pairs.map((pair) => {
        const source = sources.get(pair.from) as ObjectMetadata;
        const digest = { size: source.size, sha256: recordedSha256(source) as Sha256Hex, ...(source.md5Hash && { md5Base64: source.md5Hash }) };
        return {
          path: pair.to,
          digest,
          write: async (bucket: Bucket, ifGenerationMatch: number | string) => {
            // Server-side rewrite of the exact source generation planned; metadata (sha256) is copied along.
            const [, response] = await bucket
              .file(pair.from, { generation: source.generation })
              .copy(bucket.file(pair.to), { preconditionOpts: { ifGenerationMatch } });
            return ObjectMetadataSchema.parse((response as { resource?: unknown }).resource).generation;
          },
        };
      }),
      options.mode,
    );
  }

  async delete(paths: readonly string[]): Promise<StoreResult<DeleteReport>> {
    const checked = checkBatchPaths(paths);
    if (!checked.ok) return checked;
    const deleted: string[] = [];
    const missing: string[] = [];
    for (const path of paths) {
      const result = await withRetry(this.#retry, () =>
        this.#guard(async (bucket) => {
          try {
            await bucket.file(path).delete();
            return storeOk(true);
          } catch (error) {
            if (statusOf(error) === 404) return storeOk(false);
            throw error;
          }
        }),
      );
      if (!result.ok) {
        const done = deleted.length > 0 ? ` (already deleted: ${deleted.join(', ')})` : '';
        return { ok: false, failure: { ...result.failure, message: `${result.failure.message}${done}` } };
      }
      (result.value ? deleted : missing).push(path);
    }
    return storeOk({ batchVersion: null, deleted, missing });
  }

  async readVersioned(path: string): Promise<StoreResult<VersionedBytes | null>> {
    const checked = checkStorePath(path);
    if (!checked.ok) return checked;
    return withRetry(this.#retry, () =>
      this.#guard(async (bucket) => {
        // Describe, then read that generation: the pair is consistent. If the generation vanished
        // in between (replaced, no versioning), describe again.
        for (let tries = 0; tries < 5; tries++) {
          const object = await this.#metadata(bucket, path);
          if (!object) return storeOk(null);
          try {
            const [bytes] = await bucket.file(path, { generation: object.generation }).download();
            return storeOk({ bytes: new Uint8Array(bytes), version: asStoreVersion(object.generation) });
          } catch (error) {
            if (statusOf(error) !== 404) throw error;
          }
        }
        return storeFail('transient', `${path} in ${this.location} keeps changing while being read`, { path });
      }),
    );
  }

  /** GCS has no commit messages, so the message is not stored. */
  async writeIfVersion(path: string, bytes: Uint8Array, expected: StoreVersion | null): Promise<StoreResult<{ version: StoreVersion }>> {
    const checked = checkStorePath(path);
    if (!checked.ok) return checked;
    const sha256 = sha256Hex(bytes);
    let ambiguous = false;
    return withRetry(this.#retry, async () => {
      const result = await this.#guard(async (bucket): Promise<StoreResult<{ version: StoreVersion }>> => {
        const file = bucket.file(path);
        try {
          await file.save(Buffer.from(bytes), {
            resumable: false,
            validation: 'crc32c',
            metadata: { metadata: { sha256 } },
            preconditionOpts: { ifGenerationMatch: expected ?? 0 },
          });
          return storeOk({ version: asStoreVersion(ObjectMetadataSchema.parse(file.metadata).generation) });
        } catch (error) {
          if (statusOf(error) !== 412) throw error;
          const now = ambiguous ? await this.#metadata(bucket, path) : undefined;
          if (now && recordedSha256(now) === sha256) return storeOk({ version: asStoreVersion(now.generation) });
          return storeFail('conflict', `${path} in ${this.location} is no longer at ${expected === null ? '"absent"' : `generation ${expected}`}; re-read it and retry`, { path, status: 412 });
        }
      });
      if (!result.ok && (result.failure.reason === 'timeout' || result.failure.reason === 'transient')) ambiguous = true;
      return result;
    });
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Plans every destination (skip / append-only violation / write with which precondition), then
   * writes with bounded parallelism. A 412 means someone wrote the destination since it was
   * planned: re-describe it and decide again (bounded). The failure lists what was completed.
   */
  async #writeBatch(
    items: Array<{
      path: string;
      digest: { size: number; sha256: Sha256Hex; md5Base64?: string };
      write: (bucket: Bucket, ifGenerationMatch: number | string) => Promise<string>;
    }>,
    mode: WriteMode,
  ): Promise<StoreResult<WriteReport>> {
    // 1. Plan against the current state; refuse an append-only violation before writing anything.
    const current = new Map<string, ObjectMetadata | null>();
    for (const item of items) {
      const described = await withRetry(this.#retry, () => this.#guard(async (bucket) => storeOk(await this.#metadata(bucket, item.path))));
      if (!described.ok) return described;
      current.set(item.path, described.value);
      if (described.value && mode === 'append-only' && !sameContent(described.value, item.digest)) {
        return storeFail('append-only-violation', `${item.path} already exists in ${this.location} with different content; append-only paths are never overwritten`, { path: item.path });
      }
    }
    // 2. Write, a few at a time.
    const outcomes = new Map<string, FileWrite>();
    let failure: StoreFailure | undefined;
    const queue = [...items];
    const worker = async () => {
      for (let item = queue.shift(); item && !failure; item = queue.shift()) {
        const result = await this.#writeOne(item, current.get(item.path) ?? null, mode);
        if (result.ok) outcomes.set(item.path, result.value);
        else failure ??= result.failure;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.#options.concurrency ?? 4) }, worker));
    const done = items.flatMap((item) => outcomes.get(item.path) ?? []);
    if (failure) return { ok: false, failure: { ...failure, completed: done.filter((f) => f.action === 'written') } };
    return storeOk(writeReport(null, done));
  }

  async #writeOne(
    item: { path: string; digest: { size: number; sha256: Sha256Hex; md5Base64?: string }; write: (bucket: Bucket, ifGenerationMatch: number | string) => Promise<string> },
    planned: ObjectMetadata | null,
    mode: WriteMode,
  ): Promise<StoreResult<FileWrite>> {
    const base = { path: item.path, size: item.digest.size, sha256: item.digest.sha256 };
    let state = planned;
    let ambiguous = false;
    for (let replan = 0; replan < 4; replan++) {
      if (state && sameContent(state, item.digest)) return storeOk({ ...base, action: ambiguous ? 'written' : 'skipped', version: asStoreVersion(state.generation) });
      if (state && mode === 'append-only') {
        return storeFail('append-only-violation', `${item.path} was written by someone else meanwhile with different content; append-only paths are never overwritten`, { path: item.path });
      }
      const precondition = state ? state.generation : 0;
      const result = await withRetry(this.#retry, async () => {
        const attempt = await this.#guard(async (bucket) => storeOk(await item.write(bucket, precondition)));
        if (!attempt.ok && (attempt.failure.reason === 'timeout' || attempt.failure.reason === 'transient')) ambiguous = true;
        return attempt;
      });
      if (result.ok) return storeOk({ ...base, action: 'written', version: asStoreVersion(result.value) });
      if (result.failure.reason !== 'conflict') return result;
      const described = await withRetry(this.#retry, () => this.#guard(async (bucket) => storeOk(await this.#metadata(bucket, item.path))));
      if (!described.ok) return described;
      state = described.value;
    }
    return storeFail('conflict', `${item.path} in ${this.location} keeps changing under concurrent writers`, { path: item.path, status: 412 });
  }

  /**
   * Uploads one file with a precondition; returns the generation from the upload response. A
   * watchdog fails the upload with a timeout when no bytes move for `requestTimeoutMs` (the SDK
   * puts no time limit on resumable-session requests).
   */
  async #upload(
    bucket: Bucket,
    file: PutFile,
    digest: FileDigests,
    ifGenerationMatch: number | string,
    onProgress: ((p: TransferProgress) => void) | undefined,
  ): Promise<string> {
    const target = bucket.file(file.path);
    const writable = target.createWriteStream({
      resumable: digest.size >= (this.#options.resumableThreshold ?? 8 * 1024 * 1024),
      validation: 'crc32c',
      metadata: { metadata: { sha256: digest.sha256 } },
      preconditionOpts: { ifGenerationMatch },
    });
    const stallMs = this.#options.requestTimeoutMs ?? 60_000;
    let lastActivity = Date.now();
    writable.on('progress', (event: { bytesWritten?: number }) => {
      lastActivity = Date.now();
      onProgress?.({ path: file.path, bytesDone: Math.min(event.bytesWritten ?? 0, digest.size), bytesTotal: digest.size });
    });
    const watchdog = setInterval(() => {
      if (Date.now() - lastActivity > stallMs) writable.destroy(new DOMException(`upload of ${file.path} stalled for ${stallMs} ms`, 'TimeoutError'));
    }, Math.max(10, stallMs / 4));
    try {
      await pipeline(createReadStream(file.localPath), writable);
    } finally {
      clearInterval(watchdog);
    }
    // `target.metadata` now holds the object resource from the upload's own response.
    const written = ObjectMetadataSchema.parse(target.metadata);
    if (written.size !== digest.size || (recordedSha256(written) ?? digest.sha256) !== digest.sha256) {
      throw Object.assign(new Error(`${file.path}: the object written does not describe the file sent`), { code: 'FILE_NO_UPLOAD' });
    }
    return written.generation;
  }

  /** The object's metadata (at `generation` if given), or null if it does not exist. */
  async #metadata(bucket: Bucket, path: string, generation?: string): Promise<ObjectMetadata | null> {
    try {
      const [metadata] = await bucket.file(path, generation ? { generation } : {}).getMetadata();
      return ObjectMetadataSchema.parse(metadata);
    } catch (error) {
      // 404 means "no such object" unless the bucket itself is missing: that is a failure.
      if (statusOf(error) === 404 && !/bucket does not exist/i.test(errorMessage(error))) return null;
      throw error;
    }
  }

  /** The SDK client, created once per store on first use, with its own retries off. */
  #bucket(): Promise<Bucket> {
    this.#bucketPromise ??= importModule<GcsSdk>('@google-cloud/storage').then((sdk: GcsSdk) => {
      const { apiEndpoint, projectId, keyFilename } = this.#options;
      const storage = new sdk.Storage({
        ...(apiEndpoint && { apiEndpoint }),
        ...(projectId ? { projectId } : apiEndpoint ? { projectId: 'emulator' } : {}),
        ...(keyFilename && { keyFilename }),
        timeout: this.#options.requestTimeoutMs ?? 60_000,
        retryOptions: { autoRetry: false, maxRetries: 0 },
      });
      return storage.bucket(this.#options.bucket);
    });
    return this.#bucketPromise;
  }

  /** Runs `body`, turning anything the SDK throws into a failure value. */
  async #guard<T>(body: (bucket: Bucket) => Promise<StoreResult<T>>): Promise<StoreResult<T>> {
    try {
      return await body(await this.#bucket());
    } catch (error) {
      return storeFail(...this.#classify(error));
    }
  }

  #classify(error: unknown): [StoreFailure['reason'], string, Omit<StoreFailure, 'reason' | 'message'>] {
    const message = `${this.location}: ${errorMessage(error)}`;
    const status = statusOf(error);
    if (status !== undefined) {
      const reason = reasonForStatus(status);
      const hint = reason === 'auth-rejected' ? ' (check GOOGLE_APPLICATION_CREDENTIALS and the account\'s access to the bucket)' : '';
      return [reason, `${message}${hint}`, { status }];
    }
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'FILE_NO_UPLOAD' || code === 'FILE_NO_UPLOAD_DELETE' || code === 'CONTENT_DOWNLOAD_MISMATCH') {
      return ['transient', `${message} (checksum mismatch in transfer)`, {}];
    }
    const network = reasonForNetworkError(error);
    if (network) return [network, message, {}];
    if (error instanceof z.ZodError) return ['remote-error', `${this.location}: unexpected answer from GCS: ${errorMessage(error)}`, {}];
    if (/Could not load the default credentials|Could not refresh access token/i.test(message)) return ['auth-missing', `${message} (set GOOGLE_APPLICATION_CREDENTIALS)`, {}];
    return ['remote-error', message, {}];
  }
}

/** The HTTP status carried by an SDK error (ApiError.code, or a resumable upload's `code`). */
function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'number' && code >= 100 && code < 600) return code;
  const status = (error as { response?: { status?: unknown } } | null)?.response?.status;
  return typeof status === 'number' ? status : undefined;
}

const toEntry = (object: ObjectMetadata): StoreEntry => {
  const sha256 = recordedSha256(object);
  return { path: object.name, size: object.size, ...(sha256 && { sha256 }), version: asStoreVersion(object.generation) };
};

/** Pipes a readable stream into `localFile` (temp + rename), hashing it on the way. */
async function streamToFile(stream: Readable, localFile: string, idleMs: number): Promise<{ size: number; sha256: Sha256Hex }> {
  const hash = createHash('sha256');
  const size = await chunksToFile(withIdleTimeout<Buffer>(stream, idleMs, () => stream.destroy()), localFile, (chunk) => hash.update(chunk));
  return { size, sha256: hash.digest('hex') as Sha256Hex };
}
