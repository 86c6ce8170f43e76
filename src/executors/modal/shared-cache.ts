import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActionResult, Cache, OutputRecord } from '../../caching/cache.ts';
import { parseEntry } from '../../caching/cache.ts';
import type { SharedActionCache } from '../../caching/shared-cache.ts';
import { fingerprintSchema, type ActionKey } from '../../fingerprint.ts';
import { statePaths } from './remote-state.ts';
import type { VolumeSync } from './sync.ts';
import type { ModalTransport } from './transport.ts';

export interface VolumeActionCacheOptions {
  transport: ModalTransport;
  /** Moves blobs between the local cache and the volume's `build/cas` (uploads only what is missing). */
  sync: VolumeSync;
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
 *   the volume has an entry for the key already. Both writes are content-addressed (see
 *   remote-state.ts): a race between two machines leaves one valid entry, whichever wins.
 */
export class VolumeActionCache implements SharedActionCache {
  private readonly o: VolumeActionCacheOptions;
  private readonly shards = new Map<string, Promise<Set<string>>>();
  private warned = false;

  constructor(o: VolumeActionCacheOptions) {
    this.o = o;
  }

  private shard(key: string): Promise<Set<string>> {
    const prefix = key.slice(0, 2);
    let names = this.shards.get(prefix);
    if (!names) {
      names = this.o.transport.list(statePaths.actionShard(prefix)).then((n) => new Set(n));
      this.shards.set(prefix, names);
      names.catch(() => this.shards.delete(prefix));
    }
    return names;
  }

  async pull(key: ActionKey): Promise<boolean> {
    const scratch = join(this.o.cacheDir, 'modal', `pull-${randomUUID()}.json`);
    try {
      if (!(await this.shard(key)).has(`${key}.json`)) return false;
      await this.o.transport.get([{ remote: statePaths.action(key), local: scratch }]);
      const text = await readFile(scratch, 'utf8');
      const entry = parseEntry(text);
      if (entry.key !== key) throw new Error(`the entry at ${statePaths.action(key)} is for key ${entry.key}`);
      const fingerprint = fingerprintSchema.parse(JSON.parse(text.slice(text.indexOf('\n') + 1)));
      const outputs: Record<string, OutputRecord> = {};
      for (const [path, record] of Object.entries(entry.outputs)) {
        if (record.remote && record.remote !== this.o.transport.id) return false;
        outputs[path] = record.remote || existsSync(this.o.cache.blobPath(record.digest)) ? record : { ...record, remote: this.o.transport.id };
      }
      this.o.cache.commit({ ...entry, outputs, fingerprint });
      return true;
    } catch (error) {
      this.warnOnce(`the shared action cache on ${this.o.transport.id} could not be read (${(error as Error).message.split('\n')[0]}); building locally what it would have held`);
      return false;
    } finally {
      await rm(scratch, { force: true });
    }
  }

  async push(result: ActionResult): Promise<void> {
    const scratch = join(this.o.cacheDir, 'modal', `push-${randomUUID()}.json`);
    try {
      const names = await this.shard(result.key);
      if (names.has(`${result.key}.json`)) return;
      const local = Object.values(result.outputs).filter((r) => !r.remote).map((r) => r.digest);
      await this.o.sync.ensureBlobs(local);
      const outputs: Record<string, OutputRecord> = {};
      for (const [path, record] of Object.entries(result.outputs)) outputs[path] = record.remote ? record : { ...record, remote: this.o.transport.id };
      const { fingerprint, ...entry } = { ...result, outputs };
      await mkdir(join(this.o.cacheDir, 'modal'), { recursive: true });
      await writeFile(scratch, `${JSON.stringify(entry)}\n${JSON.stringify(fingerprint)}\n`);
      await this.o.transport.put([{ local: scratch, remote: statePaths.action(result.key) }]);
      names.add(`${result.key}.json`);
    } catch (error) {
      this.warnOnce(`the shared action cache on ${this.o.transport.id} could not be written (${(error as Error).message.split('\n')[0]}); other machines will rebuild what this build made`);
    } finally {
      await rm(scratch, { force: true });
    }
  }

  private warnOnce(message: string): void {
    if (this.warned) return;
    this.warned = true;
    this.o.warn(`warning: ${message}`);
  }
}
