import { z } from 'zod';

/**
 * One output of an action as the cache stores it: its digest and size. Cache entries hold these,
 * and so does each target of a run's meta.json, so a later build can replay the run (replay.ts).
 */
export const outputRecordSchema = z.object({
  digest: z.string().regex(/^[0-9a-f]{32}$/),
  size: z.number().int().nonnegative(),
  /**
   * A digest of the content, for outputs a target declares in `contentDigest`: what downstream
   * keys hash instead of `digest`, so bytes that differ only in embedded times cut off.
   */
  content: z.string().regex(/^[0-9a-f]{32}$/).optional(),
  /** Set when the bytes live only on a remote volume (Modal); fetched on demand. */
  remote: z.string().optional(),
});
export type OutputRecord = z.infer<typeof outputRecordSchema>;
