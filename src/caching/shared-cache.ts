import type { ActionKey } from '../fingerprint.ts';
import type { ActionResult } from './cache.ts';

/**
 * A second tier behind the local cache, shared by every machine (the action cache on the Modal
 * volume: executors/modal/shared-cache.ts). On a local miss the build asks it; after committing
 * an entry it offers it. A tier that cannot be reached is a miss plus a warning, never a failure.
 */
export interface SharedActionCache {
  /** Copies the entry any machine committed for `key` into the local cache; true when it did. */
  pull(key: ActionKey): Promise<boolean>;
  /** That entry as `pull` would commit it, read without writing anything here (a dry run); null when there is none. */
  peek(key: ActionKey): Promise<ActionResult | null>;
  /**
   * Downloads these blobs into `dir` (named by digest), checked, without touching the local cache:
   * a dry run reads a fan-out's list this way when another machine built it. False when it could not.
   */
  peekBlobs(digests: string[], dir: string): Promise<boolean>;
  /** Offers an entry this build committed (a no-op when the shared tier has it already); sent in batches. */
  push(result: ActionResult): void;
  /** Sends what push queued; the build awaits it before it ends. */
  flush(): Promise<void>;
}
