/**
 * HfStore: a Hugging Face repo as a Store, through `@huggingface/hub` (imported lazily, so commands
 * that never publish do not pay for it).
 *
 * How the Store contract maps onto the Hub:
 * - A version is a commit OID. Every read first resolves the branch head to an OID and then reads
 *   at that OID, so a listing, a stat or a download is one consistent snapshot.
 * - Every batch (putFiles, copy, delete) is ONE commit with `parentCommit` = the head the batch was
 *   planned against. If the branch moved meanwhile the Hub answers 412 ("A commit has happened
 *   since"); the batch is then re-planned on the new head (bounded), so nothing is overwritten on
 *   stale information.
 * - Identical content is detected without downloading: LFS files by sha256 (the LFS oid), plain
 *   git files by their git blob sha1 (the tree `oid`).
 * - copy: `commit()` in @huggingface/hub 2.17.5 only accepts `copy` operations when the destination
 *   is a *bucket* (xet hashes). For model/dataset repos this store does what huggingface_hub's
 *   (Python) CommitOperationCopy does: one NDJSON commit where each LFS source becomes an `lfsFile`
 *   line naming the existing sha256 oid (no bytes move), and each small plain-git source is
 *   downloaded and re-committed inline.
 * - writeIfVersion uses `parentCommit` = the expected OID. HF versions are repo-wide: any commit
 *   on the branch since the read is a conflict, even one that did not touch the document.
 *
 * `hubUrl` is passed on every call (the SDK ignores HF_ENDPOINT). All requests go through a fetch
 * wrapper that enforces a time limit, so a hung Hub becomes a `timeout` failure, retried with
 * backoff like 429/5xx.
 */
import { createHash } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { rm } from 'node:fs/promises';
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
  scrubSecrets,
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
  type FileWrite,
  type PutFile,
  type RetryPolicy,
  type Sha256Hex,
  type Store,
  type StoreEntry,
  type StoreFailure,
  type StoreResult,
  type StoreVersion,
  type VersionedBytes,
  type WriteOptions,
  type WriteReport,
} from './store.ts';
import { importModule } from '../util/dynamic-import.ts';

type HubSdk = typeof import('@huggingface/hub');

/** The repo, as the SDK designates it. */
export interface HfRepo {
  type: 'model' | 'dataset' | 'space';
  /** `namespace/name`. */
  name: string;
}

/** Options of {@link HfStore}. */
export interface HfStoreOptions {
  repo: HfRepo;
  /** Write token (`hf_...`); optional for reading public repos. */
  token?: string;
  /** Hub base URL; a test server's URL in tests (default https://huggingface.co). */
  hubUrl?: string;
  /** Branch to read and commit to (default `main`). */
  branch?: string;
  retry?: RetryPolicy;
  /** Time allowed until response headers, plus 10 ms per KB of request body (default 60 s). */
  requestTimeoutMs?: number;
  /** How many times a batch is re-planned after losing a commit race (default 3). */
  conflictReplans?: number;
}

/** What the Hub says about a path (tree / paths-info entry). */
const PathInfoSchema = z.object({
  path: z.string(),
  type: z.string(),
  oid: z.string().optional(),
  size: z.number(),
  lfs: z.object({ oid: z.string(), size: z.number() }).optional(),
});
type PathInfo = z.infer<typeof PathInfoSchema>;

/** The commit endpoint's answer. */
const CommitResponseSchema = z.object({ commitOid: z.string().regex(/^[0-9a-f]{40}$/) });

/** An error the SDK raised from an HTTP answer (HubApiError). */
interface HttpishError {
  statusCode: number;
  message: string;
}

const isHttpish = (error: unknown): error is HttpishError =>
  typeof error === 'object' && error !== null && typeof (error as { statusCode?: unknown }).statusCode === 'number';

export class HfStore implements Store {
  readonly kind = 'hf' as const;
  readonly location: string;
  readonly #repo: HfRepo;
  readonly #token: string | undefined;
  readonly #hubUrl: string;
  readonly #branch: string;
  readonly #retry: RetryPolicy;
  readonly #timeoutMs: number;
  readonly #replans: number;
  #sdkPromise: Promise<HubSdk> | undefined;

  constructor(options: HfStoreOptions) {
    this.#repo = options.repo;
    this.#token = options.token;
    this.#hubUrl = (options.hubUrl ?? 'https://huggingface.co').replace(/\/+$/, '');
    this.#branch = options.branch ?? 'main';
    this.#retry = options.retry ?? defaultRetryPolicy;
    this.#timeoutMs = options.requestTimeoutMs ?? 60_000;
    this.#replans = options.conflictReplans ?? 3;
    const prefix = this.#repo.type === 'model' ? '' : `${this.#repo.type}s/`;
    this.location = `hf:${prefix}${this.#repo.name}@${this.#branch}`;
  }

  async list(prefix: string): Promise<StoreResult<StoreEntry[]>> {
    const checked = checkStorePrefix(prefix);
    if (!checked.ok) return checked;
    return withRetry(this.#retry, async () =>
      this.#guard(async (sdk) => {
        const head = await this.#head(sdk);
        const dir = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
        const entries: StoreEntry[] = [];
        try {
          for await (const item of sdk.listFiles({ ...this.#common(), recursive: true, revision: head, ...(dir && { path: dir }) })) {
            if (item.type !== 'file' || !item.path.startsWith(prefix)) continue;
            entries.push(this.#entry(PathInfoSchema.parse(item), head));
          }
        } catch (error) {
          if (isHttpish(error) && error.statusCode === 404) return storeOk([]); // the folder does not exist
          throw error;
        }
        return storeOk(entries.sort(byPath));
      }),
    );
  }

  async stat(path: string): Promise<StoreResult<StoreEntry | null>> {
    const checked = checkStorePath(path);
    if (!checked.ok) return checked;
    return withRetry(this.#retry, async () =>
      this.#guard(async (sdk) => {
        const head = await this.#head(sdk);
        const info = (await this.#pathsInfo(sdk, [path], head)).get(path);
        return storeOk(info ? this.#entry(info, head) : null);
      }),
    );
  }

  async download(path: string, localFile: string, options: { version?: StoreVersion } = {}): Promise<StoreResult<Downloaded>> {
    const checked = checkStorePath(path);
    if (!checked.ok) return checked;
    return withRetry(this.#retry, async () =>
      this.#guard(async (sdk) => {
        const revision = options.version ?? (await this.#head(sdk));
        const info = (await this.#pathsInfo(sdk, [path], revision)).get(path);
        const blob = info ? await sdk.downloadFile({ ...this.#common(), path, revision }) : null;
        if (!info || !blob) return storeFail('not-found', `${path} does not exist in ${this.location} at ${revision}`, { path });
        const written = await writeBlob(blob, localFile, this.#timeoutMs);
        const expected = info.lfs ? written.sha256 === info.lfs.oid : written.gitBlobSha1 === info.oid;
        if (!expected || written.size !== (info.lfs?.size ?? info.size)) {
          await rm(localFile, { force: true });
          // Retried as transient: a truncated or corrupted transfer usually succeeds the next time.
          return storeFail('transient', `${path}: downloaded bytes do not match the digest the Hub lists for ${revision}`, { path });
        }
        return storeOk({ path, size: written.size, sha256: written.sha256, version: asStoreVersion(revision) });
      }),
    );
  }

  async putFiles(files: readonly PutFile[], options: WriteOptions): Promise<StoreResult<WriteReport>> {
    const checked = checkBatchPaths(files.map((f) => f.path));
    if (!checked.ok) return checked;
    const digests = new Map<string, { size: number; sha256: Sha256Hex }>();
    for (const file of files) {
      try {
        digests.set(file.path, await digestFile(file.localPath));
      } catch (error) {
        return storeFail('io-error', `cannot read ${file.localPath}: ${errorMessage(error)}`, { path: file.path });
      }
    }
    return this.#batch(async (sdk, head) => {
      const remote = await this.#pathsInfo(sdk, files.map((f) => f.path), head);
      const plan: Array<{ file: PutFile; write: FileWrite }> = [];
      for (const file of files) {
        const digest = digests.get(file.path) as { size: number; sha256: Sha256Hex };
        const existing = remote.get(file.path);
        const same = existing ? await this.#sameAsLocal(existing, file.localPath, digest) : false;
        if (existing && !same && options.mode === 'append-only') {
          return storeFail('append-only-violation', `${file.path} already exists in ${this.location} with different content; append-only paths are never overwritten`, { path: file.path });
        }
        plan.push({ file, write: { path: file.path, size: digest.size, sha256: digest.sha256, action: same ? 'skipped' : 'written', version: asStoreVersion(head) } });
      }
      const toWrite = plan.filter((p) => p.write.action === 'written');
      if (toWrite.length === 0) return storeOk({ commit: null, files: plan.map((p) => p.write) });
      const operations = await Promise.all(
        toWrite.map(async ({ file }) => ({ operation: 'addOrUpdate' as const, path: file.path, content: await openAsBlob(file.localPath) })),
      );
      const sizes = new Map(toWrite.map(({ write }) => [write.path, write.size]));
      const commit = await this.#runCommit(sdk, { title: options.message, operations, parentCommit: head }, (path, fraction) =>
        options.onProgress?.({ path, bytesDone: Math.round(fraction * (sizes.get(path) ?? 0)), bytesTotal: sizes.get(path) ?? 0 }),
      );
      return storeOk({ commit, files: plan.map((p) => p.write) });
    });
  }

  async copy(pairs: readonly CopyPair[], options: Omit<WriteOptions, 'onProgress'>): Promise<StoreResult<WriteReport>> {
    const checked = checkBatchPaths(pairs.map((p) => p.to));
    if (!checked.ok) return checked;
    for (const pair of pairs) {
      const from = checkStorePath(pair.from);
      if (!from.ok) return from;
    }
    return this.#batch(async (sdk, head) => {
      const infos = await this.#pathsInfo(sdk, [...new Set(pairs.flatMap((p) => [p.from, p.to]))], head);
      const lines: object[] = [];
      const writes: FileWrite[] = [];
      for (const pair of pairs) {
        const source = infos.get(pair.from);
        if (!source) return storeFail('not-found', `copy source ${pair.from} does not exist in ${this.location} at ${head}`, { path: pair.from });
        const target = infos.get(pair.to);
        const same = target !== undefined && target.oid !== undefined && target.oid === source.oid;
        if (target && !same && options.mode === 'append-only') {
          return storeFail('append-only-violation', `${pair.to} already exists in ${this.location} with different content; append-only paths are never overwritten`, { path: pair.to });
        }
        let sha256: Sha256Hex;
        if (source.lfs) {
          sha256 = source.lfs.oid as Sha256Hex;
          if (!same) lines.push({ key: 'lfsFile', value: { path: pair.to, algo: 'sha256', oid: source.lfs.oid, size: source.lfs.size } });
        } else {
          // A plain git file is small: read it at the planned head and commit it inline.
          const blob = await sdk.downloadFile({ ...this.#common(), path: pair.from, revision: head });
          if (!blob) return storeFail('not-found', `copy source ${pair.from} vanished from ${this.location}`, { path: pair.from });
          const bytes = new Uint8Array(await blob.arrayBuffer());
          sha256 = sha256Hex(bytes);
          if (!same) lines.push({ key: 'file', value: { path: pair.to, content: Buffer.from(bytes).toString('base64'), encoding: 'base64' } });
        }
        writes.push({ path: pair.to, size: source.lfs?.size ?? source.size, sha256, action: same ? 'skipped' : 'written', version: asStoreVersion(head) });
      }
      if (lines.length === 0) return storeOk({ commit: null, files: writes });
      const commit = await this.#rawCommit(options.message, head, lines);
      return storeOk({ commit, files: writes });
    });
  }

  async delete(paths: readonly string[], options: { message: string }): Promise<StoreResult<DeleteReport>> {
    const checked = checkBatchPaths(paths);
    if (!checked.ok) return checked;
    let outcome: { deleted: string[]; missing: string[] } = { deleted: [], missing: [] };
    const result = await this.#batch(async (sdk, head) => {
      const present = await this.#pathsInfo(sdk, [...paths], head);
      outcome = { deleted: paths.filter((p) => present.has(p)), missing: paths.filter((p) => !present.has(p)) };
      if (outcome.deleted.length === 0) return storeOk({ commit: null, files: [] });
      const operations = outcome.deleted.map((path) => ({ operation: 'delete' as const, path }));
      return storeOk({ commit: await this.#runCommit(sdk, { title: options.message, operations, parentCommit: head }), files: [] });
    });
    return result.ok ? storeOk({ batchVersion: result.value.batchVersion, ...outcome }) : result;
  }

  async readVersioned(path: string): Promise<StoreResult<VersionedBytes | null>> {
    const checked = checkStorePath(path);
    if (!checked.ok) return checked;
    return withRetry(this.#retry, async () =>
      this.#guard(async (sdk) => {
        const head = await this.#head(sdk);
        const blob = await sdk.downloadFile({ ...this.#common(), path, revision: head });
        if (!blob) return storeOk(null);
        return storeOk({ bytes: new Uint8Array(await blob.arrayBuffer()), version: asStoreVersion(head) });
      }),
    );
  }

  async writeIfVersion(
    path: string,
    bytes: Uint8Array,
    expected: StoreVersion | null,
    options: { message: string },
  ): Promise<StoreResult<{ version: StoreVersion }>> {
    const checked = checkStorePath(path);
    if (!checked.ok) return checked;
    let ambiguous = false;
    return withRetry(this.#retry, async () => {
      const result = await this.#guard(async (sdk): Promise<StoreResult<{ version: StoreVersion }>> => {
        let parent: string = expected ?? '';
        if (expected === null) {
          parent = await this.#head(sdk);
          if ((await this.#pathsInfo(sdk, [path], parent)).has(path)) {
            return this.#resolveConflict(sdk, path, bytes, ambiguous, `${path} already exists in ${this.location}`);
          }
        }
        try {
          const commit = await this.#runCommit(sdk, {
            title: options.message,
            operations: [{ operation: 'addOrUpdate', path, content: new Blob([new Uint8Array(bytes)]) }],
            parentCommit: parent,
          });
          return storeOk({ version: asStoreVersion(commit) });
        } catch (error) {
          if (isHttpish(error) && (error.statusCode === 412 || error.statusCode === 409)) {
            return this.#resolveConflict(sdk, path, bytes, ambiguous, `${this.location} has moved past ${parent}`);
          }
          throw error;
        }
      });
      // A timeout may hide a commit that landed: let the next attempt recognise its own write.
      if (!result.ok && (result.failure.reason === 'timeout' || result.failure.reason === 'transient')) ambiguous = true;
      return result;
    });
  }

  // -------------------------------------------------------------------------------------------

  /** After a 412: if an earlier attempt may have landed and the content is ours, that is success. */
  async #resolveConflict(
    sdk: HubSdk,
    path: string,
    bytes: Uint8Array,
    ambiguous: boolean,
    why: string,
  ): Promise<StoreResult<{ version: StoreVersion }>> {
    if (ambiguous) {
      const head = await this.#head(sdk);
      const blob = await sdk.downloadFile({ ...this.#common(), path, revision: head });
      if (blob && sha256Hex(new Uint8Array(await blob.arrayBuffer())) === sha256Hex(bytes)) return storeOk({ version: asStoreVersion(head) });
    }
    return storeFail('conflict', `${path}: ${why}; re-read it and retry`, { path, status: 412 });
  }

  /**
   * Runs a batch planned against the current head; on a lost commit race (412) re-plans on the new
   * head, up to `conflictReplans` times. Transient failures are retried with backoff.
   */
  async #batch(
    plan: (sdk: HubSdk, head: string) => Promise<StoreResult<{ commit: string | null; files: FileWrite[] }>>,
  ): Promise<StoreResult<WriteReport>> {
    for (let replan = 0; ; replan++) {
      const result = await withRetry(this.#retry, () => this.#guard(async (sdk) => plan(sdk, await this.#head(sdk))));
      if (result.ok) {
        const commit = result.value.commit ? asStoreVersion(result.value.commit) : null;
        const files = result.value.files.map((f) => (commit && f.action === 'written' ? { ...f, version: commit } : f));
        return storeOk(writeReport(commit, files));
      }
      if (result.failure.reason !== 'conflict' || replan >= this.#replans) return result;
    }
  }

  /** Runs the SDK's commit, reporting upload progress; returns the new commit OID. */
  async #runCommit(
    sdk: HubSdk,
    params: { title: string; operations: Parameters<HubSdk['commit']>[0]['operations']; parentCommit: string },
    onProgress?: (path: string, fraction: number) => void,
  ): Promise<string> {
    const iterator = sdk.commitIter({ ...this.#common(), branch: this.#branch, ...params });
    for (;;) {
      const step = await iterator.next();
      if (step.done) {
        if (!step.value) throw new Error('commit returned no commit OID');
        return CommitResponseSchema.parse({ commitOid: step.value.commit.oid }).commitOid;
      }
      const event = step.value;
      if (event.event === 'fileProgress' && event.state === 'uploading') onProgress?.(event.path, event.progress);
    }
  }

  /** One NDJSON commit built by hand (for copies, which the SDK's commit() cannot express). */
  async #rawCommit(message: string, parentCommit: string, lines: object[]): Promise<string> {
    const url = `${this.#hubUrl}/api/${this.#repo.type}s/${this.#repo.name}/commit/${encodeURIComponent(this.#branch)}`;
    const body = [{ key: 'header', value: { summary: message, description: '', parentCommit } }, ...lines].map((l) => JSON.stringify(l)).join('\n');
    const response = await this.#fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-ndjson', ...(this.#token && { Authorization: `Bearer ${this.#token}` }) },
      body,
    });
    const text = await response.text();
    if (!response.ok) {
      let detail = text;
      try {
        detail = String((JSON.parse(text) as { error?: unknown }).error ?? text);
      } catch {
        /* not JSON */
      }
      throw Object.assign(new Error(`commit failed with HTTP ${response.status}: ${detail}`), { statusCode: response.status });
    }
    return CommitResponseSchema.parse(JSON.parse(text)).commitOid;
  }

  /** Whether the remote file holds exactly the local file's bytes, without downloading it. */
  async #sameAsLocal(remote: PathInfo, localPath: string, digest: { size: number; sha256: string }): Promise<boolean> {
    if (remote.lfs) return remote.lfs.oid === digest.sha256;
    if (remote.size !== digest.size) return false;
    return (await digestFile(localPath, { gitBlobSha1: true })).gitBlobSha1 === remote.oid;
  }

  async #head(sdk: HubSdk): Promise<string> {
    for await (const commit of sdk.listCommits({ ...this.#common(), revision: this.#branch, batchSize: 1 })) return commit.oid;
    throw Object.assign(new Error(`${this.location} has no commits`), { statusCode: 404 });
  }

  async #pathsInfo(sdk: HubSdk, paths: string[], revision: string): Promise<Map<string, PathInfo>> {
    const out = new Map<string, PathInfo>();
    for (let i = 0; i < paths.length; i += 500) {
      const infos = await sdk.pathsInfo({ ...this.#common(), paths: paths.slice(i, i + 500), revision });
      for (const info of infos) {
        const parsed = PathInfoSchema.parse(info);
        if (parsed.type === 'file') out.set(parsed.path, parsed);
      }
    }
    return out;
  }

  #entry(info: PathInfo, head: string): StoreEntry {
    return {
      path: info.path,
      size: info.lfs?.size ?? info.size,
      ...(info.lfs && { sha256: info.lfs.oid as Sha256Hex }),
      version: asStoreVersion(head),
    };
  }

  /** Parameters every SDK call takes. */
  #common() {
    return {
      repo: this.#repo,
      hubUrl: this.#hubUrl,
      fetch: this.#fetch,
      ...(this.#token && { accessToken: this.#token }),
    };
  }

  /** fetch with a time limit on reaching the response headers, scaled with the request body size. */
  readonly #fetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const bodySize = init.body instanceof Blob ? init.body.size : typeof init.body === 'string' ? init.body.length : 0;
    const limit = this.#timeoutMs + Math.ceil(bodySize / 100);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException(`no answer from ${this.#hubUrl} within ${limit} ms`, 'TimeoutError')), limit);
    const signal = init.signal ? AbortSignal.any([init.signal, controller.signal]) : controller.signal;
    try {
      return await fetch(input, { ...init, signal });
    } finally {
      clearTimeout(timer);
    }
  };

  /** Loads the SDK once per store, on first use. */
  #sdk(): Promise<HubSdk> {
    this.#sdkPromise ??= importModule<HubSdk>('@huggingface/hub');
    return this.#sdkPromise;
  }

  /** Runs `body`, turning anything the SDK throws into a failure value with the token scrubbed. */
  async #guard<T>(body: (sdk: HubSdk) => Promise<StoreResult<T>>): Promise<StoreResult<T>> {
    let result: StoreResult<T>;
    try {
      result = await body(await this.#sdk());
    } catch (error) {
      result = storeFail(...this.#classify(error));
    }
    if (result.ok) return result;
    return { ok: false, failure: { ...result.failure, message: scrubSecrets(result.failure.message, [this.#token]) } };
  }

  #classify(error: unknown): [StoreFailure['reason'], string, Omit<StoreFailure, 'reason' | 'message'>] {
    const message = scrubSecrets(errorMessage(error), [this.#token]);
    if (isHttpish(error)) {
      const reason = reasonForStatus(error.statusCode);
      const hint = reason === 'auth-rejected' ? ' (check that HF_TOKEN has write access to the repo)' : '';
      return [reason, `${this.location}: HTTP ${error.statusCode}: ${message}${hint}`, { status: error.statusCode }];
    }
    const network = reasonForNetworkError(error);
    if (network) return [network, `${this.location}: ${message}`, {}];
    if (error instanceof TypeError && /access token/i.test(message)) return ['config-invalid', `${this.location}: ${message}`, {}];
    if (error instanceof z.ZodError) return ['remote-error', `${this.location}: unexpected answer from the Hub: ${message}`, {}];
    return ['remote-error', `${this.location}: ${message}`, {}];
  }
}

/** Streams a Blob to `localFile` through a temp file + rename, hashing it on the way. */
async function writeBlob(blob: Blob, localFile: string, idleMs: number): Promise<{ size: number; sha256: Sha256Hex; gitBlobSha1: string }> {
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1').update(`blob ${blob.size}\0`);
  const stream = blob.stream();
  const chunks = withIdleTimeout(stream as unknown as AsyncIterable<Uint8Array>, idleMs, () => void stream.cancel().catch(() => undefined));
  const size = await chunksToFile(chunks, localFile, (chunk) => {
    sha256.update(chunk);
    sha1.update(chunk);
  });
  return { size, sha256: sha256.digest('hex') as Sha256Hex, gitBlobSha1: sha1.digest('hex') };
}
