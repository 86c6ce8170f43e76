import { relative } from 'node:path';
import type { RunMeta } from '../run.ts';
import { digestFile, type FileDigests } from '../stores/store.ts';
import { publishFail, type PublishResult } from './result.ts';

/**
 * The bytes staging and promote publish are checked against the digests the build recorded for
 * the run (meta.json: each target's outputs, XXH3-128), not only against the staged manifest.
 *
 * Why: a restore trusts the stat memo (re-reading every blob of every restore would cost a no-op
 * build seconds), so a byte flipped on disk with size and times unchanged reaches the run's files
 * silently; staging then hashed what was there and wrote that into the manifest, and promote
 * checked against the manifest. One read per file computes both the recorded digest and the
 * sha256 the manifest and the stores use, so the check costs no second pass.
 */

/** Run-relative path -> the XXH3-128 the build recorded for it. */
export function recordedDigests(meta: RunMeta): Map<string, string> {
  const out = new Map<string, string>();
  for (const outcome of Object.values(meta.targets)) for (const [path, record] of Object.entries(outcome.outputs ?? {})) out.set(path, record.digest);
  return out;
}

/**
 * Digests of a run file (sha256 and XXH3-128, one read), refused with `output-digest-mismatch`
 * when they differ from what the build recorded, or `output-not-recorded` when the build recorded
 * nothing for it.
 */
export async function verifiedRunFile(runDir: string, localPath: string, recorded: Map<string, string>): Promise<PublishResult<FileDigests>> {
  const rel = relative(runDir, localPath);
  const expected = recorded.get(rel);
  if (!expected) return publishFail('output-not-recorded', `${rel}: the run's meta.json records no digest for it, so its bytes cannot be checked; rebuild the run`);
  const digests = await digestFile(localPath, { xxh128: true });
  if (digests.xxh128 !== expected) {
    return publishFail(
      'output-digest-mismatch',
      `${localPath} changed on disk since the build recorded it (XXH3-128 ${digests.xxh128}, recorded ${expected}; sha256 now ${digests.sha256}); run ./build.ts cache verify, then rebuild the run`,
    );
  }
  return { ok: true, value: digests };
}
