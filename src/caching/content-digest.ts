import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { BUFFER_SIZE, createHasher, type Digest } from './hash.ts';

/**
 * Content digests for early cutoff where a writer embeds history or time in its bytes. A target
 * declares them per output (`Target.contentDigest`); the blob is still stored and verified by its
 * byte digest, while downstream keys hash the content digest, so a rebuilt output with the same
 * content stops the rebuild below it.
 *
 * - `sqlite`: the file's bytes with the header fields that count writes zeroed: the file change
 *   counter (bytes 24-27), version-valid-for (92-95) and SQLITE_VERSION_NUMBER (96-99, the library
 *   that last wrote it). Everything else, pages included, is hashed as is: the real ETL writes the
 *   same pages for the same inputs (measured; a different operation history that leaves different
 *   pages is a different digest, i.e. a rebuild, never a wrong hit).
 * - `hdf5`: a logical walk of groups, datasets and attributes by src/python-env/hdf5_digest.py
 *   (which says exactly what it ignores: object-header times, layout, chunking, filters), run by
 *   the target's own Python, which needs h5py.
 */
export type ContentKind = 'sqlite' | 'hdf5';

export type ContentDigest = { ok: true; digest: Digest } | { ok: false; message: string };

const SQLITE_MAGIC = 'SQLite format 3\0';
/** [start, end) byte ranges of the SQLite header that count writes rather than hold content. */
const SQLITE_COUNTERS: [number, number][] = [
  [24, 28],
  [92, 100],
];

export interface ContentDigestOptions {
  /** The Python that runs the HDF5 walk (the target's environment). */
  python: string;
  /** Path of hdf5_digest.py. */
  hdf5Script: string;
}

export async function contentDigest(kind: ContentKind, file: string, o: ContentDigestOptions): Promise<ContentDigest> {
  return kind === 'sqlite' ? sqliteDigest(file) : hdf5Digest(file, o);
}

/** The SQLite digest (see the module note), streamed: databases may be large. */
export async function sqliteDigest(file: string): Promise<ContentDigest> {
  const handle = await open(file, 'r');
  try {
    const h = createHasher();
    h.update('sqlite-content-v1\0');
    const buffer = Buffer.allocUnsafe(BUFFER_SIZE);
    let offset = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, BUFFER_SIZE, offset);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      if (offset === 0) {
        if (bytesRead < 100 || chunk.toString('latin1', 0, 16) !== SQLITE_MAGIC) {
          return { ok: false, message: 'is declared an SQLite database (contentDigest) but is not one' };
        }
        for (const [start, end] of SQLITE_COUNTERS) chunk.fill(0, start, end);
      }
      h.update(chunk);
      offset += bytesRead;
    }
    return { ok: true, digest: h.digest() };
  } finally {
    await handle.close();
  }
}

/** The HDF5 digest, computed by the helper in the target's Python environment. */
export function hdf5Digest(file: string, o: ContentDigestOptions): Promise<ContentDigest> {
  return new Promise((resolve) => {
    execFile(o.python, [o.hdf5Script, file], { encoding: 'utf8', maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      const digest = stdout.trim();
      if (!error && /^[0-9a-f]{32}$/.test(digest)) return resolve({ ok: true, digest: digest as Digest });
      const why = stderr.trim().split('\n').pop() || error?.message || 'no digest printed';
      resolve({ ok: false, message: `could not be digested as HDF5 (contentDigest): ${why.replace(/^hdf5_digest: /, '')}` });
    });
  });
}
