import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Digest } from './digest.ts';

/**
 * Digests are XXH3-128 (hex, 32 chars, identical to `xxhsum -H2`) from the native `xxhash-addon`.
 *
 * Why not xxhash-wasm (the design card's default): it offers only XXH64, and a content-addressed
 * store shared by many runs wants at least 128 bits. Measured here (bench/RESULTS.md): xxhash-addon
 * XXH128 ~5 GB/s, hash-wasm XXH128 ~2.8 GB/s, xxhash-wasm XXH64 ~3.1 GB/s. The addon ships prebuilt
 * binaries inside the npm package, so it installs offline like any other dependency.
 *
 * How a file is read (bench/ measures each choice):
 * - through reused buffers with `FileHandle.read()`, never `fs.createReadStream` (it allocates a
 *   buffer per chunk and caps at ~1.5 GB/s here); memory stays flat whatever the file size;
 * - two buffers in flight: the next chunk is read (libuv thread pool) while this one is hashed,
 *   so reading and hashing overlap instead of adding up;
 * - while the main thread streams one large file, further files of POOL_MIN_BYTES and more go to a
 *   pool of worker threads (hash-pool.ts, one per core), so many large artifacts hash on every
 *   core; a single file never pays a worker's start-up.
 *
 * The Digest brand lives in digest.ts (the worker pool needs it without this module) and is
 * re-exported here for the callers that hash.
 */
export type { Digest };

interface XXHash128 {
  update(data: Uint8Array): void;
  digest(): Buffer;
}
interface XXHashAddon {
  XXHash128: new (seed: Buffer) => XXHash128;
}

const require = createRequire(import.meta.url);
let addon: XXHashAddon | undefined;
/** Loaded on first use so commands that never hash pay nothing for it. */
function xxhash(): XXHashAddon {
  addon ??= require('xxhash-addon') as XXHashAddon;
  return addon;
}

/** Where the addon lives, for worker threads (a bundled CLI has no module path of its own to give). */
export function addonPath(): string {
  return require.resolve('xxhash-addon');
}

/** The addon segfaults without a seed buffer; seed 0 matches `xxhsum -H2`. */
const SEED = Buffer.alloc(8);

/** An incremental digest, for bytes hashed piece by piece or transformed first (content-digest.ts). */
export function createHasher(): { update(data: string | Uint8Array): void; digest(): Digest } {
  const h = new (xxhash().XXHash128)(SEED);
  return {
    update: (data) => h.update(typeof data === 'string' ? Buffer.from(data) : data),
    digest: () => h.digest().toString('hex') as Digest,
  };
}

export function digestBytes(data: string | Uint8Array): Digest {
  const h = new (xxhash().XXHash128)(SEED);
  h.update(typeof data === 'string' ? Buffer.from(data) : data);
  return h.digest().toString('hex') as Digest;
}

/** An incremental XXH3-128, for callers that hash a stream alongside other digests (publishing: with sha256). */
export function xxh128Hasher(): { update(data: Uint8Array): void; digest(): Digest } {
  const h = new (xxhash().XXHash128)(SEED);
  return { update: (data) => h.update(data), digest: () => h.digest().toString('hex') as Digest };
}

/** Chunk size: large enough that per-read overhead vanishes, small enough to stay in L2/L3-ish caches. */
export const BUFFER_SIZE = 8 * 1024 * 1024;
/**
 * Below this size a file is read and hashed synchronously, in one call: tens of microseconds,
 * where the thread-pool round trips of an asynchronous read cost more than the hashing.
 */
const SMALL_FILE_BYTES = 256 * 1024;
/** Files this large may go to the worker pool; below, a worker's start-up costs more than it saves. */
export const POOL_MIN_BYTES = 64 * 1024 * 1024;
const freeBuffers: Buffer[] = [];

/**
 * The main thread streams one large file at a time (its two buffers); a second concurrent large
 * file goes to a worker, or waits its turn when there is none (`workers: false`, from
 * BUILD_HASH_WORKERS=0, or one core: see defaultWorkers), so memory stays at a few buffers however many files a build hashes at once.
 */
let inlineBusy = false;
const inlineWaiters: (() => void)[] = [];

/** How digestFile reads a file; neither option changes the digest. */
export interface DigestFileOptions {
  /** From a stat the caller already made. */
  size?: number;
  /** Whether a worker thread may hash it (default true; false for BUILD_HASH_WORKERS=0). */
  workers?: boolean;
}

/**
 * Digest of a file's bytes. The size only chooses the path: small files in one read; large ones
 * streamed on the main thread, or by a worker thread when the main thread is already streaming
 * one; the digest is the same either way.
 */
export async function digestFile(path: string, o: DigestFileOptions = {}): Promise<{ digest: Digest; size: number }> {
  const bytes = o.size ?? (await stat(path)).size;
  if (bytes < SMALL_FILE_BYTES) {
    const fd = openRegular(path);
    try {
      const data = readFileSync(fd);
      return { digest: digestBytes(data), size: data.length };
    } finally {
      closeSync(fd);
    }
  }
  if (bytes < BUFFER_SIZE) return withHandle(path, digestHandle);
  if (inlineBusy && bytes >= POOL_MIN_BYTES && o.workers !== false) {
    // Loaded on first use: worker_threads and its internals cost every start a few milliseconds.
    const { defaultWorkers, hashPool } = await import('./hash-pool.ts');
    if (defaultWorkers() > 0) return hashPool(addonPath()).digest(path);
  }
  while (inlineBusy) await new Promise<void>((resolve) => inlineWaiters.push(resolve));
  inlineBusy = true;
  try {
    return await withHandle(path, digestHandle);
  } finally {
    inlineBusy = false;
    inlineWaiters.shift()?.();
  }
}

/**
 * Opens a file for reading without ever blocking: O_NONBLOCK makes the open of a FIFO return at
 * once (without it, open waits for a writer, forever, and holds the thread), and the file's type
 * is checked on the open descriptor. Throws NotRegularFile for anything but a regular file.
 */
export function openRegular(path: string): number {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new NotRegularFile(path);
  }
  return fd;
}

/** A path that was to be hashed is a directory, FIFO, socket or device. */
export class NotRegularFile extends Error {
  readonly code = 'ENOTREG';
  constructor(path: string) {
    super(`${path} is not a regular file`);
  }
}

async function withHandle<T>(path: string, f: (handle: FileHandle) => Promise<T>): Promise<T> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    throw new NotRegularFile(path);
  }
  try {
    return await f(handle);
  } finally {
    await handle.close();
  }
}

/** Hashes an open file from its current position, reading the next chunk while hashing this one. */
async function digestHandle(handle: FileHandle): Promise<{ digest: Digest; size: number }> {
  const h = new (xxhash().XXHash128)(SEED);
  let current = freeBuffers.pop() ?? Buffer.allocUnsafe(BUFFER_SIZE);
  let next: Buffer | undefined;
  let size = 0;
  try {
    let got = (await handle.read(current, 0, BUFFER_SIZE, null)).bytesRead;
    while (got > 0) {
      size += got;
      // A short read means end of file for a regular file: skip the extra read (small files: one read).
      if (got < BUFFER_SIZE) {
        h.update(current.subarray(0, got));
        break;
      }
      next ??= freeBuffers.pop() ?? Buffer.allocUnsafe(BUFFER_SIZE);
      const reading = handle.read(next, 0, BUFFER_SIZE, null);
      h.update(current);
      got = (await reading).bytesRead;
      [current, next] = [next, current];
    }
    return { digest: h.digest().toString('hex') as Digest, size };
  } finally {
    freeBuffers.push(current);
    if (next) freeBuffers.push(next);
  }
}
