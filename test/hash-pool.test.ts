import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addonPath, digestBytes, digestFile } from '../src/caching/hash.ts';
import { HashPool } from '../src/caching/hash-pool.ts';
import { cleanup, tempDir } from './helpers.ts';

/** The worker pool hashes exactly as the main thread does, in real worker threads, on real files. */
describe('hash pool (worker threads)', () => {
  const dir = tempDir('hash-pool');
  // Small buffers so a few-MB file crosses many chunk boundaries, and odd sizes for short reads.
  const pool = new HashPool({ addonPath: addonPath(), size: 2, bufferSize: 64 * 1024 });
  afterAll(async () => {
    await pool.close();
    cleanup(dir);
  });

  const file = (name: string, size: number) => {
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = (i * 2654435761) >>> 24;
    const path = join(dir, name);
    writeFileSync(path, data);
    return { path, data };
  };

  it('gives the same digests as the main thread, for several files at once', async () => {
    const files = [file('a.bin', 3 * 1024 * 1024 + 17), file('b.bin', 64 * 1024), file('c.bin', 0), file('d.bin', 1)];
    const fromPool = await Promise.all(files.map((f) => pool.digest(f.path)));
    for (const [i, f] of files.entries()) {
      expect(fromPool[i]).toEqual({ digest: digestBytes(f.data), size: f.data.length });
      expect(fromPool[i]).toEqual(await digestFile(f.path));
    }
  });

  it('reports a missing file as an error with its code, and keeps working', async () => {
    await expect(pool.digest(join(dir, 'missing.bin'))).rejects.toMatchObject({ code: 'ENOENT' });
    const f = file('after.bin', 5000);
    expect((await pool.digest(f.path)).digest).toBe(digestBytes(f.data));
  });
});
