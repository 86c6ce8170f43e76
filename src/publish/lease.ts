import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { isAlive } from '../caching/action-lock.ts';
import { LOCK_PATH } from './layout.ts';
import { fromStore, publishFail, type PublishResult } from './result.ts';
import type { Store } from '../stores/store.ts';

/**
 * A lease on publishing, held in the registry's home store while promote, rollback or gc writes.
 *
 * The registry's compare-and-swap already guarantees that no registry update is lost. The lease
 * adds what CAS cannot: two promotes writing production paths at the same time would leave HF
 * and GCS holding a mix of both releases. With the lease, the second one stops before writing and
 * says who holds it. The lease is itself a compare-and-swap document (no delete: releasing writes
 * `free`), so it works on every store; it expires (a crashed holder on another machine) and is
 * broken at once when its holder is a dead process on this host.
 */
const LeaseSchema = z.object({
  state: z.enum(['held', 'free']),
  owner: z.string(),
  action: z.string(),
  host: z.string(),
  pid: z.number().int(),
  at: z.string(),
  expires_at: z.string(),
});
type LeaseDoc = z.infer<typeof LeaseSchema>;

/** A held lease. */
export interface Lease {
  owner: string;
  store: Store;
}

/** How to take the lease. */
export interface LeaseOptions {
  /** What holds it, for the message the next one sees ("promote of run X as 1.2.3"). */
  action: string;
  /** How long a silent holder keeps it (default 2 h: a full promote uploads tens of GB to GCS). */
  ttlMs?: number;
  now?: () => Date;
}

const encode = (doc: LeaseDoc): Uint8Array => new TextEncoder().encode(`${JSON.stringify(doc, null, 2)}\n`);

function decode(bytes: Uint8Array): LeaseDoc | null {
  try {
    return LeaseSchema.parse(JSON.parse(new TextDecoder().decode(bytes)));
  } catch {
    return null;
  }
}

/** Takes the lease, or fails with `publish-in-progress` naming the holder. */
export async function acquireLease(store: Store, options: LeaseOptions): Promise<PublishResult<Lease>> {
  const now = options.now ?? (() => new Date());
  const owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  for (let attempt = 0; attempt < 8; attempt++) {
    const read = await store.readVersioned(LOCK_PATH);
    if (!read.ok) return { ok: false, failure: fromStore(read.failure, 'reading the publish lease') };
    const held = read.value ? decode(read.value.bytes) : null;
    if (held && held.state === 'held' && !abandoned(held, now())) {
      return publishFail(
        'publish-in-progress',
        `another publish holds the lease in ${store.location} (${held.action}, ${held.host} pid ${held.pid}, since ${held.at}); wait for it to finish and rerun (it expires at ${held.expires_at})`,
      );
    }
    const at = now();
    const doc: LeaseDoc = { state: 'held', owner, action: options.action, host: hostname(), pid: process.pid, at: at.toISOString(), expires_at: new Date(at.getTime() + (options.ttlMs ?? 2 * 3600_000)).toISOString() };
    const written = await store.writeIfVersion(LOCK_PATH, encode(doc), read.value?.version ?? null, { message: `Lease: ${options.action}` });
    if (written.ok) return { ok: true, value: { owner, store } };
    if (written.failure.reason !== 'conflict') return { ok: false, failure: fromStore(written.failure, 'taking the publish lease') };
  }
  return publishFail('publish-in-progress', `the publish lease in ${store.location} kept changing; another publish is starting, retry later`);
}

/** Releases the lease if it is still ours; returns a warning when it was broken meanwhile. */
export async function releaseLease(lease: Lease): Promise<string | null> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const read = await lease.store.readVersioned(LOCK_PATH);
    if (!read.ok) return `could not release the publish lease (${read.failure.message}); ${STALE_HINT}`;
    const held = read.value ? decode(read.value.bytes) : null;
    if (!read.value || !held || held.owner !== lease.owner || held.state !== 'held') return `the publish lease in ${lease.store.location} was taken over while this publish ran`;
    const written = await lease.store.writeIfVersion(LOCK_PATH, encode({ ...held, state: 'free' }), read.value.version, { message: 'Lease released' });
    if (written.ok) return null;
    if (written.failure.reason !== 'conflict') return `could not release the publish lease (${written.failure.message}); ${STALE_HINT}`;
  }
  return `could not release the publish lease in ${lease.store.location}; ${STALE_HINT}`;
}

const STALE_HINT = 'the next publish from this host takes it over at once (this process will have exited); from another host it expires after its time limit';

/** Expired, or held by a process of this host that no longer exists. */
function abandoned(doc: LeaseDoc, now: Date): boolean {
  if (Date.parse(doc.expires_at) <= now.getTime()) return true;
  return doc.host === hostname() && !isAlive(doc.pid);
}
