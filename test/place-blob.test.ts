import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cache } from '../src/caching/cache.ts';
import { DigestMemo } from '../src/caching/digest-memo.ts';
import type { Digest } from '../src/caching/hash.ts';
import { scratchDirs, waitFor } from './helpers.ts';

const scratch = scratchDirs('place-blob');

/**
 * Two local actions reading the same remote outputs both place them into the run while the first
 * one's command already reads the directory (the coordinator's `manifest` listed h5s/ while
 * `national-validation` placed the same area files: its manifest missed a file, and staging
 * refused the run). Placing a path that exists must never leave it absent, even for an instant.
 */
describe('placing a blob into a run another process reads', () => {
  it('a reader listing the directory always sees every file, whether the path is placed again or replaced', async () => {
    const dir = scratch();
    const cache = new Cache(join(dir, 'cache'), new DigestMemo(join(dir, 'digests.json')));
    const files = 200;
    const blobs: [Digest, Digest][] = [];
    for (let i = 0; i < files; i++) {
      const pair = [] as unknown as [Digest, Digest];
      for (const variant of ['a', 'b']) {
        const file = join(dir, `out-${variant}-${i}`);
        writeFileSync(file, `area ${i} ${variant}\n`);
        pair.push((await cache.ingest(file)).digest as Digest);
      }
      blobs.push(pair);
    }
    const area = (i: number) => join(dir, 'run', 'h5s', `area-${i}.h5`);
    for (let i = 0; i < files; i++) await cache.placeBlob(blobs[i]![0], area(i));

    // The reader: a separate process, as an action's command is; the fewest files one listing saw.
    const reader = spawn('python3', ['-c', `
import glob, sys
print("ready", flush=True)
fewest = None
for _ in range(3000):
    n = len(glob.glob(sys.argv[1] + "/*.h5"))
    fewest = n if fewest is None else min(fewest, n)
print(fewest)
`, join(dir, 'run', 'h5s')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    reader.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => reader.on('close', resolve));
    let running = true;
    void exited.then(() => (running = false));
    // Placing starts once the reader lists: a reader done before any placement would prove nothing (rounds stays 0).
    await waitFor('the reader to start listing', () => out.startsWith('ready\n') || !running, 60_000);
    let rounds = 0;
    while (running) {
      // The same blob again (a second consumer), then another file in its place and back.
      for (let i = 0; i < files; i++) await cache.placeBlob(blobs[i]![0], area(i));
      for (let i = 0; i < files; i++) await cache.placeBlob(blobs[i]![1], area(i));
      for (let i = 0; i < files; i++) await cache.placeBlob(blobs[i]![0], area(i));
      rounds++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await exited).toBe(0);
    expect(rounds).toBeGreaterThan(0);
    expect(Number(out.trim().split('\n').pop())).toBe(files);
    // Each path ends as the blob last placed there, a hard link to it (no copy).
    for (let i = 0; i < files; i++) {
      expect(readFileSync(area(i), 'utf8')).toBe(`area ${i} a\n`);
      expect(statSync(area(i)).ino).toBe(statSync(cache.blobPath(blobs[i]![0])).ino);
    }
  });
});
