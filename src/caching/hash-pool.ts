import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Digest } from './digest.ts';

/**
 * A pool of worker threads that hash large files, one file per worker at a time, so several
 * artifacts hash on all cores while the main thread keeps scheduling. Workers start on first use
 * (a no-op build, which only stats files, never starts one) and are unref'd while idle, so they
 * never keep the process alive. Each worker reads its file synchronously through one reused 1 MiB
 * buffer and hashes each chunk: memory stays flat for any file size. The buffer fits in L2 (4 MiB
 * per core here), so the copy from the page cache and the hash both stay in cache and one worker
 * uses one core; the addon hashes cached data at ~35 GB/s, memory-resident data at 7-17. An 8 MiB
 * double-buffered async stream, as the main thread uses for a single file, needs ~1.5 cores.
 *
 * The worker's code is inline (`eval`), because the CLI ships as one bundled file; the native
 * addon's path is passed in, resolved by the main thread.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { XXHash128 } = require(workerData.addonPath);
const SIZE = workerData.bufferSize;
const SEED = Buffer.alloc(8);
const buffer = Buffer.allocUnsafe(SIZE);
function digest(path) {
  const fd = openSync(path, 'r');
  try {
    const h = new XXHash128(SEED);
    let size = 0, got;
    while ((got = readSync(fd, buffer, 0, SIZE, null)) > 0) {
      size += got;
      h.update(got === SIZE ? buffer : buffer.subarray(0, got));
    }
    return { digest: h.digest().toString('hex'), size };
  } finally {
    closeSync(fd);
  }
}
parentPort.on('message', async ({ id, path }) => {
  try {
    parentPort.postMessage({ id, ...digest(path) });
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
    this.size = Math.max(1, options.size ?? defaultWorkers());
    this.bufferSize = options.bufferSize ?? 1024 * 1024;
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
 * Workers the process-wide pool may start: one per core (at most 4), none on one core. The main
 * thread streams the first of several large files and the workers take the rest, each keeping one
 * core busy. On 2 cores, 16 files of 128 MiB: 7.0-7.6 GB/s with 1.9 cores busy, against 5.0-5.9
 * GB/s and 1.4 cores for the main thread's stream alone, and 4.1-5.6 GB/s with a single worker
 * (files queued for it wait even when the main thread is free). bench/PROFILE.md has the runs.
 */
export function defaultWorkers(): number {
  const cores = availableParallelism();
  return cores < 2 ? 0 : Math.min(cores, 4);
}

let shared: HashPool | undefined;
/** The process-wide pool (one per process: workers are costly to start, cheap to keep idle). */
export function hashPool(addonPath: string): HashPool {
  shared ??= new HashPool({ addonPath });
  return shared;
}
