import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Digest } from './hash.ts';

/**
 * A pool of worker threads that hash large files, one file per worker at a time, so several
 * artifacts hash on all cores while the main thread keeps scheduling. Workers start on first use
 * (a no-op build, which only stats files, never starts one) and are unref'd while idle, so they
 * never keep the process alive. Each worker streams its file through two reused 8 MiB buffers,
 * reading the next chunk while it hashes the current one: memory stays flat for any file size.
 *
 * The worker's code is inline (`eval`), because the CLI ships as one bundled file; the native
 * addon's path is passed in, resolved by the main thread.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { open } = require('node:fs/promises');
const { XXHash128 } = require(workerData.addonPath);
const SIZE = workerData.bufferSize;
const SEED = Buffer.alloc(8);
let a = Buffer.allocUnsafe(SIZE);
let b = Buffer.allocUnsafe(SIZE);
async function digest(path) {
  const handle = await open(path, 'r');
  try {
    const h = new XXHash128(SEED);
    let cur = a, nxt = b, size = 0;
    let got = (await handle.read(cur, 0, SIZE, null)).bytesRead;
    while (got > 0) {
      size += got;
      if (got < SIZE) { h.update(cur.subarray(0, got)); break; }
      const reading = handle.read(nxt, 0, SIZE, null);
      h.update(cur);
      got = (await reading).bytesRead;
      const t = cur; cur = nxt; nxt = t;
    }
    return { digest: h.digest().toString('hex'), size };
  } finally {
    await handle.close();
  }
}
parentPort.on('message', async ({ id, path }) => {
  try {
    parentPort.postMessage({ id, ...(await digest(path)) });
  } catch (error) {
    parentPort.postMessage({ id, error: error && error.message ? error.message : String(error), code: error && error.code });
  }
});
`;

interface Job {
  id: number;
  path: string;
  resolve: (value: { digest: Digest; size: number }) => void;
  reject: (error: Error) => void;
}

interface Reply {
  id: number;
  digest?: string;
  size?: number;
  error?: string;
  code?: string;
}

export class HashPool {
  private readonly workers: { worker: Worker; job: Job | null }[] = [];
  private readonly queue: Job[] = [];
  private nextId = 0;
  private readonly size: number;
  private readonly addonPath: string;
  private readonly bufferSize: number;

  constructor(options: { addonPath: string; size?: number; bufferSize?: number }) {
    this.addonPath = options.addonPath;
    // The main thread streams one file itself: cores - 1 workers keep every core busy.
    this.size = Math.max(1, options.size ?? defaultWorkers());
    this.bufferSize = options.bufferSize ?? 8 * 1024 * 1024;
  }

  digest(path: string): Promise<{ digest: Digest; size: number }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, path, resolve, reject });
      this.pump();
    });
  }

  /** Stops every worker (tests; the CLI simply exits, idle workers being unref'd). */
  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.workers.find((w) => w.job === null);
      if (!slot && this.workers.length < this.size) slot = this.spawn();
      if (!slot) return;
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.ref();
      slot.worker.postMessage({ id: job.id, path: job.path });
    }
  }

  private spawn(): { worker: Worker; job: Job | null } {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { addonPath: this.addonPath, bufferSize: this.bufferSize } });
    const slot: { worker: Worker; job: Job | null } = { worker, job: null };
    worker.on('message', (reply: Reply) => {
      const job = slot.job;
      slot.job = null;
      worker.unref();
      if (job && job.id === reply.id) {
        if (reply.error !== undefined) job.reject(Object.assign(new Error(reply.error), reply.code ? { code: reply.code } : {}));
        else job.resolve({ digest: reply.digest as Digest, size: reply.size! });
      }
      this.pump();
    });
    worker.on('error', (error) => {
      // A crashed worker fails its job and is replaced on the next request.
      const index = this.workers.indexOf(slot);
      if (index >= 0) this.workers.splice(index, 1);
      slot.job?.reject(error);
      slot.job = null;
      this.pump();
    });
    this.workers.push(slot);
    return slot;
  }
}

/**
 * Workers the process-wide pool may start. One overlapped stream already keeps ~2 cores busy
 * (reading on the thread pool, hashing on its own thread), so a worker pays off only beyond that:
 * none on 2 cores, where 16 files of 128 MiB hashed at 4.80 GB/s with a worker against 5.17 GB/s
 * without (bench/RESULTS.md); one on 4 cores; at most 4.
 */
export function defaultWorkers(): number {
  return Math.max(0, Math.min(Math.floor(availableParallelism() / 2) - 1, 4));
}

let shared: HashPool | undefined;
/** The process-wide pool (one per process: workers are costly to start, cheap to keep idle). */
export function hashPool(addonPath: string): HashPool {
  shared ??= new HashPool({ addonPath });
  return shared;
}
