/**
 * FakeGcs: a TEST DOUBLE, a stand-in for Google Cloud Storage that speaks its JSON API, so
 * `@google-cloud/storage` 7.22.0 runs unmodified against it (`new Storage({apiEndpoint: fake.url})`).
 *
 * Why a fake of our own: no usable GCS emulator honours preconditions.
 * - gcp-storage-emulator 2026.7.19 (PyPI, tried here on 2026-11-28 with @google-cloud/storage
 *   7.22.0): uploads, downloads and listing work, but it IGNORES `ifGenerationMatch` (0 on an
 *   existing object, a stale generation, multipart and resumable: all accepted and overwritten; its
 *   source has no precondition code at all) and IGNORES `?generation=` on reads (returns the latest
 *   bytes). Useless for testing optimistic concurrency or pinned reads, so not used.
 * - firebase-tools' storage emulator needs Java 21 + a jar download and also ignores preconditions;
 *   fake-gcs-server (Go) needs the Go proxy or Docker, neither available.
 *
 * Endpoints served, as the SDK sends them:
 * - POST /upload/storage/v1/b/{b}/o?uploadType=multipart   multipart/related (JSON metadata + data)
 * - POST /upload/storage/v1/b/{b}/o?uploadType=resumable   -> 200 + Location session URL
 * - PUT  {session URL}  `Content-Range: bytes a-*\/N|*` (single shot) or `bytes a-b/N|*` (chunks;
 *                       308 + `Range` until complete) -> 200 + object JSON
 * - GET  /storage/v1/b/{b}/o/{name}[?generation=]         metadata JSON
 * - GET  /storage/v1/b/{b}/o/{name}?alt=media[&generation=]  bytes, with `x-goog-hash`,
 *                       `x-goog-generation`, `x-goog-stored-content-encoding: identity` (so the SDK
 *                       validates crc32c), Range -> 206
 * - GET  /storage/v1/b/{b}/o?prefix&delimiter&maxResults&pageToken  {items, prefixes, nextPageToken}
 * - DELETE /storage/v1/b/{b}/o/{name}[?generation=]       204
 * - POST /storage/v1/b/{b}/o/{src}/rewriteTo/b/{b2}/o/{dst}[?sourceGeneration]  rewrite response
 *
 * Semantics kept real: generations are increasing integers (microsecond-like), every object JSON
 * carries `crc32c` (computed with the SDK's exported CRC32C) and `md5Hash`, so the SDK's upload
 * validation runs; `X-Goog-Hash` sent by the client is checked (400 on mismatch);
 * `ifGenerationMatch` / `ifGenerationNotMatch` are enforced on every write (at session creation and
 * again at finalisation for resumable uploads), answering 412 with GCS's real error JSON
 * (`reason: conditionNotMet`); custom `metadata` round-trips and is copied by rewrite. With
 * `versioning: true` (the default here) older generations stay readable, as on a bucket with
 * Object Versioning; with `false` they vanish on overwrite, as on a default bucket.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CRC32C } from '@google-cloud/storage';
import { LoopbackServer } from './loopback-server.ts';

/** One generation of one object. */
export interface FakeObject {
  name: string;
  bucket: string;
  generation: string;
  metageneration: string;
  content: Buffer;
  contentType: string;
  metadata: Record<string, string> | undefined;
  timeCreated: string;
  /** False once replaced or deleted (kept only with versioning). */
  live: boolean;
}

/** Options of {@link FakeGcs}. */
export interface FakeGcsOptions {
  /** Buckets that exist from the start. */
  buckets?: string[];
  /** Keep noncurrent generations readable (Object Versioning). Default true. */
  versioning?: boolean;
  /** Page size cap for listings (default 1000, as GCS). */
  pageSize?: number;
}

interface Session {
  bucket: string;
  name: string;
  metadata: Record<string, unknown>;
  ifGenerationMatch: string | null;
  ifGenerationNotMatch: string | null;
  received: Buffer[];
  size: number;
}

const PRECONDITION_MESSAGE = 'At least one of the pre-conditions you specified did not hold.';

export class FakeGcs extends LoopbackServer {
  /** Object bytes received by uploads (multipart bodies and resumable chunks). */
  bytesUploaded = 0;
  readonly #buckets = new Map<string, Map<string, FakeObject[]>>();
  readonly #sessions = new Map<string, Session>();
  readonly #versioning: boolean;
  readonly #pageSize: number;
  #lastGeneration = 0;

  constructor(options: FakeGcsOptions = {}) {
    super();
    for (const bucket of options.buckets ?? []) this.#buckets.set(bucket, new Map());
    this.#versioning = options.versioning ?? true;
    this.#pageSize = options.pageSize ?? 1000;
  }




  createBucket(name: string): void {
    this.#buckets.set(name, new Map());
  }

  /** Every generation of an object, oldest first. */
  generations(bucket: string, name: string): FakeObject[] {
    return [...(this.#buckets.get(bucket)?.get(name) ?? [])];
  }

  /** The live generation of an object, if any. */
  live(bucket: string, name: string): FakeObject | undefined {
    return this.generations(bucket, name).find((o) => o.live);
  }

  // -------------------------------------------------------------------------------------------

  protected override writeError(_req: IncomingMessage, res: ServerResponse, status: number, message: string, _cause: 'fault' | 'bug', headers?: Record<string, string>): void {
    gcsError(res, status, message, status === 429 ? 'rateLimitExceeded' : 'backendError', headers);
  }

  protected override route(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const s = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const q = url.searchParams;
    const method = req.method ?? 'GET';

    // /upload/storage/v1/b/{bucket}/o
    if (s[0] === 'upload' && s[1] === 'storage' && s[3] === 'b' && s[5] === 'o' && s.length === 6) {
      const bucket = s[4] as string;
      if (!this.#buckets.has(bucket)) return gcsError(res, 404, 'The specified bucket does not exist.', 'notFound');
      if (method === 'POST' && q.get('uploadType') === 'multipart') return this.#multipart(req, res, bucket, body, q);
      if (method === 'POST' && q.get('uploadType') === 'resumable') return this.#startResumable(req, res, bucket, body, q);
      if (method === 'PUT' && q.get('upload_id')) return this.#resumableChunk(req, res, q.get('upload_id') as string, body);
      return gcsError(res, 400, `fake gcs: unsupported upload ${method} ${url.search}`, 'invalid');
    }
    // /storage/v1/b/{bucket}/o[/{object}[/rewriteTo/b/{bucket}/o/{object}]]  (also /download/storage/v1/...)
    const base = s[0] === 'download' ? s.slice(1) : s;
    if (base[0] === 'storage' && base[2] === 'b' && base[4] === 'o') {
      const bucket = base[3] as string;
      const objects = this.#buckets.get(bucket);
      if (!objects) return gcsError(res, 404, 'The specified bucket does not exist.', 'notFound');
      if (base.length === 5 && method === 'GET') return this.#list(res, bucket, objects, q);
      const name = base[5] as string;
      if (base.length === 6) {
        if (method === 'GET') return this.#get(req, res, bucket, name, q);
        if (method === 'DELETE') return this.#delete(res, bucket, name, q);
      }
      if (base[6] === 'rewriteTo' && base[7] === 'b' && base[9] === 'o' && method === 'POST') {
        return this.#rewrite(res, bucket, name, base[8] as string, base[10] as string, body, q);
      }
    }
    return gcsError(res, 404, `fake gcs: unsupported ${method} ${url.pathname}`, 'notFound');
  }

  #multipart(req: IncomingMessage, res: ServerResponse, bucket: string, body: Buffer, q: URLSearchParams): void {
    const boundary = /boundary="?([^";]+)"?/.exec(String(req.headers['content-type']))?.[1];
    if (!boundary) return gcsError(res, 400, 'multipart upload without boundary', 'invalid');
    const parts = splitMultipart(body, boundary);
    const [metaPart, dataPart] = parts;
    if (!metaPart || !dataPart) return gcsError(res, 400, 'multipart upload needs a metadata part and a data part', 'invalid');
    const metadata = JSON.parse(metaPart.body.toString('utf8')) as Record<string, unknown>;
    const name = q.get('name') ?? (metadata.name as string | undefined);
    if (!name) return gcsError(res, 400, 'Required: object name', 'required');
    this.bytesUploaded += dataPart.body.length;
    const hashError = checkClientHashes(dataPart.body, String(req.headers['x-goog-hash'] ?? ''), metadata);
    if (hashError) return gcsError(res, 400, hashError, 'invalid');
    const contentType = String(metadata.contentType ?? dataPart.headers['content-type'] ?? 'application/octet-stream');
    this.#finalize(res, bucket, name, dataPart.body, { ...metadata, contentType }, q.get('ifGenerationMatch'), q.get('ifGenerationNotMatch'));
  }

  #startResumable(req: IncomingMessage, res: ServerResponse, bucket: string, body: Buffer, q: URLSearchParams): void {
    const metadata = body.length > 0 ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
    const name = q.get('name') ?? (metadata.name as string | undefined);
    if (!name) return gcsError(res, 400, 'Required: object name', 'required');
    const failed = this.#preconditionFails(bucket, name, q.get('ifGenerationMatch'), q.get('ifGenerationNotMatch'));
    if (failed) return gcsError(res, 412, PRECONDITION_MESSAGE, 'conditionNotMet', {}, { locationType: 'header', location: 'If-Match' });
    const id = randomBytes(12).toString('hex');
    this.#sessions.set(id, {
      bucket,
      name,
      metadata: { ...metadata, contentType: metadata.contentType ?? req.headers['x-upload-content-type'] ?? 'application/octet-stream' },
      ifGenerationMatch: q.get('ifGenerationMatch'),
      ifGenerationNotMatch: q.get('ifGenerationNotMatch'),
      received: [],
      size: 0,
    });
    res.writeHead(200, { Location: `${this.url}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&upload_id=${id}` });
    res.end();
  }

  #resumableChunk(req: IncomingMessage, res: ServerResponse, id: string, body: Buffer): void {
    const session = this.#sessions.get(id);
    if (!session) return gcsError(res, 404, 'No such upload session', 'notFound');
    const range = String(req.headers['content-range'] ?? '');
    // `bytes */N` or `bytes */*`: a status query.
    const query = /^bytes \*\/(\d+|\*)$/.exec(range);
    if (query) {
      res.writeHead(308, session.size > 0 ? { Range: `bytes=0-${session.size - 1}` } : {});
      res.end();
      return;
    }
    const m = /^bytes (\d+)-(\d+|\*)\/(\d+|\*)$/.exec(range);
    if (!m) return gcsError(res, 400, `bad Content-Range ${JSON.stringify(range)}`, 'invalid');
    const start = Number(m[1]);
    if (start !== session.size) {
      res.writeHead(308, session.size > 0 ? { Range: `bytes=0-${session.size - 1}` } : {});
      res.end();
      return;
    }
    session.received.push(body);
    session.size += body.length;
    this.bytesUploaded += body.length;
    const total = m[3] === '*' ? undefined : Number(m[3]);
    // `a-*` means "the rest of the object is in this request"; a known total says when it is complete.
    const complete = m[2] === '*' || (total !== undefined && session.size >= total);
    if (!complete) {
      res.writeHead(308, { Range: `bytes=0-${session.size - 1}` });
      res.end();
      return;
    }
    this.#sessions.delete(id);
    const content = Buffer.concat(session.received);
    const hashError = checkClientHashes(content, String(req.headers['x-goog-hash'] ?? ''), {});
    if (hashError) return gcsError(res, 400, hashError, 'invalid');
    this.#finalize(res, session.bucket, session.name, content, session.metadata, session.ifGenerationMatch, session.ifGenerationNotMatch);
  }

  #finalize(
    res: ServerResponse,
    bucket: string,
    name: string,
    content: Buffer,
    metadata: Record<string, unknown>,
    ifGenerationMatch: string | null,
    ifGenerationNotMatch: string | null,
  ): void {
    if (this.#preconditionFails(bucket, name, ifGenerationMatch, ifGenerationNotMatch)) {
      return gcsError(res, 412, PRECONDITION_MESSAGE, 'conditionNotMet', {}, { locationType: 'header', location: 'If-Match' });
    }
    const object = this.#store(bucket, name, content, String(metadata.contentType ?? 'application/octet-stream'), stringRecord(metadata.metadata));
    json(res, 200, this.#resource(object));
  }

  #store(bucket: string, name: string, content: Buffer, contentType: string, metadata: Record<string, string> | undefined): FakeObject {
    const objects = this.#buckets.get(bucket) as Map<string, FakeObject[]>;
    const previous = (objects.get(name) ?? []).map((o) => ({ ...o, live: false }));
    this.#lastGeneration = Math.max(this.#lastGeneration + 1, Date.now() * 1000);
    const object: FakeObject = {
      name,
      bucket,
      generation: String(this.#lastGeneration),
      metageneration: '1',
      content,
      contentType,
      metadata,
      timeCreated: new Date().toISOString(),
      live: true,
    };
    objects.set(name, [...(this.#versioning ? previous : []), object]);
    return object;
  }

  #preconditionFails(bucket: string, name: string, ifGenerationMatch: string | null, ifGenerationNotMatch: string | null): boolean {
    const current = this.live(bucket, name);
    const generation = current ? current.generation : '0';
    if (ifGenerationMatch !== null && ifGenerationMatch !== generation) return true;
    if (ifGenerationNotMatch !== null && ifGenerationNotMatch === generation) return true;
    return false;
  }

  #find(bucket: string, name: string, generation: string | null): FakeObject | undefined {
    const all = this.generations(bucket, name);
    return generation ? all.find((o) => o.generation === generation) : all.find((o) => o.live);
  }

  #get(req: IncomingMessage, res: ServerResponse, bucket: string, name: string, q: URLSearchParams): void {
    const object = this.#find(bucket, name, q.get('generation'));
    if (!object) return gcsError(res, 404, `No such object: ${bucket}/${name}`, 'notFound');
    if (q.get('alt') !== 'media') return json(res, 200, this.#resource(object));
    const hashes = digests(object.content);
    const headers: Record<string, string> = {
      'Content-Type': object.contentType,
      'x-goog-hash': `crc32c=${hashes.crc32c},md5=${hashes.md5}`,
      'x-goog-generation': object.generation,
      'x-goog-metageneration': object.metageneration,
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-stored-content-length': String(object.content.length),
      ETag: `"${hashes.md5Hex}"`,
      'Accept-Ranges': 'bytes',
    };
    const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
    if (range && object.content.length > 0) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), object.content.length - 1) : object.content.length - 1;
      const slice = object.content.subarray(start, end + 1);
      res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${object.content.length}`, 'Content-Length': String(slice.length) });
      res.end(slice);
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': String(object.content.length) });
    res.end(object.content);
  }

  #list(res: ServerResponse, bucket: string, objects: Map<string, FakeObject[]>, q: URLSearchParams): void {
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter');
    const maxResults = Math.min(Number(q.get('maxResults') ?? this.#pageSize), this.#pageSize);
    const after = q.get('pageToken') ? Buffer.from(q.get('pageToken') as string, 'base64url').toString('utf8') : '';
    const names = [...objects.keys()].filter((n) => n.startsWith(prefix) && this.live(bucket, n)).sort();
    const items: object[] = [];
    const prefixes = new Set<string>();
    let next: string | undefined;
    for (const name of names) {
      if (after && name <= after) continue;
      if (items.length + prefixes.size >= maxResults) {
        next = Buffer.from(items.length > 0 ? ((items[items.length - 1] as { name: string }).name) : after, 'utf8').toString('base64url');
        break;
      }
      const rest = name.slice(prefix.length);
      if (delimiter && rest.includes(delimiter)) {
        prefixes.add(prefix + rest.slice(0, rest.indexOf(delimiter) + delimiter.length));
        continue;
      }
      items.push(this.#resource(this.live(bucket, name) as FakeObject));
    }
    json(res, 200, {
      kind: 'storage#objects',
      ...(items.length > 0 && { items }),
      ...(prefixes.size > 0 && { prefixes: [...prefixes] }),
      ...(next && { nextPageToken: next }),
    });
  }

  #delete(res: ServerResponse, bucket: string, name: string, q: URLSearchParams): void {
    const generation = q.get('generation');
    const object = this.#find(bucket, name, generation);
    if (!object) return gcsError(res, 404, `No such object: ${bucket}/${name}`, 'notFound');
    if (this.#preconditionFails(bucket, name, q.get('ifGenerationMatch'), q.get('ifGenerationNotMatch'))) {
      return gcsError(res, 412, PRECONDITION_MESSAGE, 'conditionNotMet', {}, { locationType: 'header', location: 'If-Match' });
    }
    const objects = this.#buckets.get(bucket) as Map<string, FakeObject[]>;
    const all = objects.get(name) ?? [];
    if (generation || !this.#versioning) objects.set(name, all.filter((o) => o !== object && (this.#versioning || !o.live)));
    else objects.set(name, all.map((o) => ({ ...o, live: false })));
    res.writeHead(204);
    res.end();
  }

  #rewrite(res: ServerResponse, bucket: string, name: string, destBucket: string, destName: string, body: Buffer, q: URLSearchParams): void {
    const source = this.#find(bucket, name, q.get('sourceGeneration'));
    if (!source) return gcsError(res, 404, `No such object: ${bucket}/${name}`, 'notFound');
    if (!this.#buckets.has(destBucket)) return gcsError(res, 404, 'The specified bucket does not exist.', 'notFound');
    if (this.#preconditionFails(destBucket, destName, q.get('ifGenerationMatch'), q.get('ifGenerationNotMatch'))) {
      return gcsError(res, 412, PRECONDITION_MESSAGE, 'conditionNotMet', {}, { locationType: 'header', location: 'If-Match' });
    }
    const overrides = body.length > 0 ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
    const metadata = overrides.metadata !== undefined ? stringRecord(overrides.metadata) : source.metadata;
    const object = this.#store(destBucket, destName, source.content, source.contentType, metadata);
    json(res, 200, {
      kind: 'storage#rewriteResponse',
      totalBytesRewritten: String(object.content.length),
      objectSize: String(object.content.length),
      done: true,
      resource: this.#resource(object),
    });
  }

  /** The object resource JSON, as GCS returns it. */
  #resource(object: FakeObject): object {
    const hashes = digests(object.content);
    const encoded = encodeURIComponent(object.name);
    return {
      kind: 'storage#object',
      id: `${object.bucket}/${object.name}/${object.generation}`,
      selfLink: `${this.url}/storage/v1/b/${object.bucket}/o/${encoded}`,
      mediaLink: `${this.url}/download/storage/v1/b/${object.bucket}/o/${encoded}?generation=${object.generation}&alt=media`,
      name: object.name,
      bucket: object.bucket,
      generation: object.generation,
      metageneration: object.metageneration,
      contentType: object.contentType,
      storageClass: 'STANDARD',
      size: String(object.content.length),
      md5Hash: hashes.md5,
      crc32c: hashes.crc32c,
      etag: Buffer.from(object.generation).toString('base64'),
      timeCreated: object.timeCreated,
      updated: object.timeCreated,
      ...(object.metadata && { metadata: object.metadata }),
    };
  }
}

function digests(content: Buffer): { crc32c: string; md5: string; md5Hex: string } {
  const crc = new CRC32C();
  crc.update(content);
  const md5 = createHash('md5').update(content);
  const md5Buffer = md5.digest();
  return { crc32c: crc.toString(), md5: md5Buffer.toString('base64'), md5Hex: md5Buffer.toString('hex') };
}

/** GCS rejects an upload whose declared hashes (X-Goog-Hash or metadata crc32c/md5Hash) do not match. */
function checkClientHashes(content: Buffer, header: string, metadata: Record<string, unknown>): string | undefined {
  const actual = digests(content);
  const declared: Record<string, string> = {};
  for (const pair of header.split(',')) {
    const at = pair.indexOf('=');
    if (at > 0) declared[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  if (typeof metadata.crc32c === 'string') declared.crc32c ??= metadata.crc32c;
  if (typeof metadata.md5Hash === 'string') declared.md5 ??= metadata.md5Hash;
  if (declared.crc32c && declared.crc32c !== actual.crc32c) return `Provided CRC32C "${declared.crc32c}" doesn't match calculated CRC32C "${actual.crc32c}".`;
  if (declared.md5 && declared.md5 !== actual.md5) return `Provided MD5 hash "${declared.md5}" doesn't match calculated MD5 hash "${actual.md5}".`;
  return undefined;
}

/** Splits a multipart/related body into parts (headers + body). */
function splitMultipart(body: Buffer, boundary: string): Array<{ headers: Record<string, string>; body: Buffer }> {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Array<{ headers: Record<string, string>; body: Buffer }> = [];
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    let start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    if (body.subarray(start, start + 2).toString() === '\r\n') start += 2;
    const next = body.indexOf(delimiter, start);
    if (next === -1) break;
    let chunk = body.subarray(start, next);
    if (chunk.subarray(chunk.length - 2).toString() === '\r\n') chunk = chunk.subarray(0, chunk.length - 2);
    const split = chunk.indexOf('\r\n\r\n');
    const headerText = split === -1 ? '' : chunk.subarray(0, split).toString('utf8');
    const headers: Record<string, string> = {};
    for (const line of headerText.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: split === -1 ? chunk : chunk.subarray(split + 4) });
    at = next;
  }
  return parts;
}

function stringRecord(value: unknown): Record<string, string> | undefined {
  if (!value || typeof value !== 'object') return undefined;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
}

/** GCS's error JSON: `{error:{code, message, errors:[{message, domain, reason, ...}]}}`. */
function gcsError(
  res: ServerResponse,
  status: number,
  message: string,
  reason: string,
  headers: Record<string, string> = {},
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', ...headers });
  res.end(JSON.stringify({ error: { code: status, message, errors: [{ message, domain: 'global', reason, ...extra }] } }));
}
