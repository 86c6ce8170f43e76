import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cache } from '../src/caching/cache.ts';
import { DigestMemo } from '../src/caching/digest-memo.ts';
import { makeFingerprint } from '../src/fingerprint.ts';
import { actionKey } from '../src/fingerprint.ts';
import { cli, scratchDirs } from './helpers.ts';

/** Every cache command that can delete honours -n and says what it would remove (issue 12, item 1). */
describe('cache -n', () => {
  const scratch = scratchDirs('cache-dry');

  /** A real cache holding one entry no run uses (gc's to remove) and, on request, a corrupt blob. */
  async function cacheWithGarbage(): Promise<{ dir: string; entry: string; blob: string }> {
    const dir = join(scratch(), 'cache');
    const memo = new DigestMemo(join(dir, 'digests.json'));
    const cache = new Cache(dir, memo);
    const work = join(dir, '..', 'work');
    mkdirSync(work, { recursive: true });
    writeFileSync(join(work, 'out.txt'), 'old output');
    const record = await cache.ingest(join(work, 'out.txt'));
    const fingerprint = makeFingerprint({ target: 'orphan', command: ['true'], vars: {}, sources: {}, upstream: {}, env: {}, outputs: ['out.txt'] });
    const key = actionKey(fingerprint);
    cache.commit({ key, target: 'orphan', fingerprint, outputs: { 'out.txt': record }, executor: 'local', durationMs: 1, createdAt: new Date().toISOString() });
    return { dir, entry: join(dir, 'actions', key.slice(0, 2), `${key}.json`), blob: cache.blobPath(record.digest) };
  }

  it('cache gc -n and --dry-run name what they would remove and remove nothing', async () => {
    const { dir, entry, blob } = await cacheWithGarbage();
    for (const flag of ['-n', '--dry-run']) {
      const r = await cli(['cache', 'gc', flag], { cache: dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/would remove entry orphan [0-9a-f]{12}/);
      expect(r.stdout).toMatch(/would remove 1 action entries and 1 blobs, freeing .* \(-n: nothing removed\)/);
      expect(existsSync(entry)).toBe(true);
      expect(existsSync(blob)).toBe(true);
    }
    const real = await cli(['cache', 'gc'], { cache: dir });
    expect(real.stdout).toMatch(/removed 1 action entries and 1 blobs/);
    expect(existsSync(entry)).toBe(false);
  });

  it('cache verify -n reports a corrupt blob and keeps it', async () => {
    const { dir, blob } = await cacheWithGarbage();
    chmodSync(blob, 0o644);
    writeFileSync(blob, 'tampered');
    const r = await cli(['cache', 'verify', '-n'], { cache: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`would remove: ${blob}`);
    expect(existsSync(blob)).toBe(true);
  });
});
