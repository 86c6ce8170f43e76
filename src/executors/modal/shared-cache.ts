import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZodError } from 'zod';
import type { ActionResult, Cache, OutputRecord } from '../../caching/cache.ts';
import { parseEntry } from '../../caching/cache.ts';
import type { SharedActionCache } from '../../caching/shared-cache.ts';
import { fingerprintSchema, type ActionKey } from '../../fingerprint.ts';
import { statePaths } from './remote-state.ts';
import { downloadBlobs, type VolumeSync } from './sync.ts';
import type { ModalTransport } from './transport.ts';

/** How long pushes gather before a batch is sent (the build's end flushes at once). */
const PUSH_QUIET_MS = 500;

/** At most `n` tasks at once. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly n: number;
  constructor(n: number) {
    this.n = n;
  }
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export interface VolumeActionCacheOptions {
  transport: ModalTransport;
  /** Moves blobs between the local cache and the volume's `build/cas` (uploads only what is missing); absent for a dry run's reader, which never pushes. */
  sync?: VolumeSync;
  cache: Cache;
  cacheDir: string;
  /** A volume that cannot be read or written is a miss plus this warning. */
  warn: (message: string) => void;
}

/**
 * The action cache on the volume (`state/actions/<aa>/<key>.json`, remote-state.ts), shared by
 * every machine building with EXECUTOR=modal and by the remote coordinator, whose cache dir it is.
 *
 * - pull: on a local miss, the entry file is fetched by key (the shard's listing, read once per
 *   build, says whether it is there), checked (its key, its schema) and committed locally as it
 *   is, except that each output whose blob this machine lacks is recorded as remote-resident on
 *   this transport: its bytes come down only when a local action reads them (materialise) or the
 *   user asks (`fetch`), from `build/cas`, or `state/cas` for an entry the coordinator committed.
 * - push: after a local commit, the outputs' local blobs go to `build/cas` (only those the
 *   volume lacks) and then the entry, with those outputs recorded as remote-resident there, unless
 *   the volume has an entry for the key already; entries are gathered into batches (flush). Both writes are content-addressed (see
 *   remote-state.ts): a race between two machines leaves one valid entry, whichever wins.
 */
export class VolumeActionCache implements SharedActionCache {
  private readonly o: VolumeActionCacheOptions;
  private readonly shards = new Map<string, Promise<Set<string>>>();
  private readonly queue: ActionResult[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  /** Shard listings in flight at once (each is a `modal volume ls` process on Modal). */
  private readonly listings = new Limiter(4);
  /** Set at the first failure: the tier is down for the rest of the build (one warning, no retries per target). */
  private down = false;
  private readonly corrupt = new Set<string>();

  constructor(o: VolumeActionCacheOptions) {
    this.o = o;
  }

  private shard(key: string): Promise<Set<string>> {
    const prefix = key.slice(0, 2);
    let names = this.shards.get(prefix);
    if (!names) {
      names = this.listings.run(() => this.o.transport.list(statePaths.actionShard(prefix))).then((n) => new Set(n));
      this.shards.set(prefix, names);
      names.catch(() => this.shards.delete(prefix));
    }
    return names;
  }

  async pull(key: ActionKey): Promise<boolean> {
    const entry = await this.read(key, join(this.o.cacheDir, 'modal'));
    if (!entry) return false;
    this.o.cache.commit(entry);
    return true;
  }

  async peek(key: ActionKey): Promise<ActionResult | null> {
    const scratch = await mkdtemp(join(tmpdir(), 'build-peek-'));
    try {
      return await this.read(key, scratch);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  async peekBlobs(digests: string[], dir: string): Promise<boolean> {
    if (this.down) return false;
    return downloadBlobs(this.o.transport, [...new Set(digests)], (d) => join(dir, d), false).then(() => true, () => false);
  }

  /**
   * The volume's entry for `key`, checked (its key, its schema), with each output whose blob this
   * machine lacks recorded as remote-resident on this transport; null on a miss. The entry file is
   * fetched through `scratchDir`, and removed.
   */
  private async read(key: ActionKey, scratchDir: string): Promise<ActionResult | null> {
    if (this.down || this.corrupt.has(key)) return null;
    const scratch = join(scratchDir, `pull-${randomUUID()}.json`);
    try {
      if (!(await this.shard(key)).has(`${key}.json`)) return null;
      await this.o.transport.get([{ remote: statePaths.action(key), local: scratch }]);
      const text = await readFile(scratch, 'utf8');
      let entry, fingerprint;
      try {
        entry = parseEntry(text);
        if (entry.key !== key) throw new Error(`it is for key ${entry.key}`);
        fingerprint = fingerprintSchema.parse(JSON.parse(text.slice(text.indexOf('\n') + 1)));
      } catch (error) {
        // One bad entry is a miss (rebuilt here; the key stays taken on the volume), said once.
        this.corrupt.add(key);
        const why = error instanceof ZodError ? `${error.issues[0]?.path.join('.')}: ${error.issues[0]?.message}` : (error as Error).message.split('\n')[0];
        this.o.warn(`the shared cache entry ${statePaths.action(key)} on ${this.o.transport.id} is corrupt (${why}); it is not trusted`);
        return null;
      }
      const outputs: Record<string, OutputRecord> = {};
      for (const [path, record] of Object.entries(entry.outputs)) {
        if (record.remote && record.remote !== this.o.transport.id) return null;
        outputs[path] = record.remote || existsSync(this.o.cache.blobPath(record.digest)) ? record : { ...record, remote: this.o.transport.id };
      }
      return { ...entry, outputs, fingerprint };
    } catch (error) {
      this.warnOnce(`the shared action cache on ${this.o.transport.id} could not be read (${(error as Error).message.split('\n')[0]}); building locally what it would have held`);
      return null;
    } finally {
      await rm(scratch, { force: true });
    }
  }

  push(result: ActionResult): void {
    if (this.down || !this.o.sync) return;
    this.queue.push(result);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, PUSH_QUIET_MS);
  }

  /**
   * Sends the queued entries as one batch: first every local blob they name that the volume
   * lacks (one upload), then the entry files (one upload), so an entry never names a blob that
   * is not there yet. Each `modal volume put` is a process start: one per batch, not per entry.
   */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue.splice(0);
    if (batch.length) this.sending = this.sending.then(() => this.send(batch));
    return this.sending;
  }

  private async send(batch: ActionResult[]): Promise<void> {
    const scratch = join(this.o.cacheDir, 'modal', `push-${randomUUID()}`);
    try {
      const fresh: ActionResult[] = [];
      for (const result of batch) if (!(await this.shard(result.key)).has(`${result.key}.json`)) fresh.push(result);
      if (fresh.length === 0) return;
      await this.o.sync!.ensureBlobs(fresh.flatMap((r) => Object.values(r.outputs).filter((o) => !o.remote).map((o) => o.digest)));
      await mkdir(scratch, { recursive: true });
      const files: { local: string; remote: string }[] = [];
      for (const result of fresh) {
        const outputs: Record<string, OutputRecord> = {};
        for (const [path, record] of Object.entries(result.outputs)) outputs[path] = record.remote ? record : { ...record, remote: this.o.transport.id };
        const { fingerprint, ...entry } = { ...result, outputs };
        const local = join(scratch, `${result.key}.json`);
        await writeFile(local, `${JSON.stringify(entry)}\n${JSON.stringify(fingerprint)}\n`);
        files.push({ local, remote: statePaths.action(result.key) });
      }
      await this.o.transport.put(files);
      for (const result of fresh) (await this.shard(result.key)).add(`${result.key}.json`);
    } catch (error) {
      this.warnOnce(`the shared action cache on ${this.o.transport.id} could not be written (${(error as Error).message.split('\n')[0]}); other machines will rebuild what this build made`);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  private warnOnce(message: string): void {
    if (this.down) return;
    this.down = true;
    this.o.warn(message);
  }
}
