import { spawn, spawnSync } from 'node:child_process';
import { existsSync, linkSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireLock } from '../src/caching/action-lock.ts';
import { scratchDirs, sleep, waitFor } from './helpers.ts';

/** acquireLock with real files and real processes: holding, waiting, stale takeover, exclusion, abort. */
const freshDir = scratchDirs('lock');

/** Settles to 'pending' unless the promise has already settled. */
async function state(promise: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  return Promise.race([
    promise.then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    ),
    sleep(0).then(() => 'pending' as const),
  ]);
}

describe('acquireLock', () => {
  it('holds <dir>/<key>.lock, containing this pid, until released', async () => {
    const dir = freshDir();
    const lockPath = join(dir, 'abc.lock');
    const release = await acquireLock(dir, 'abc');
    expect(existsSync(lockPath)).toBe(true);
    expect(readFileSync(lockPath, 'utf8').trim()).toBe(String(process.pid));
    // The lock is a hard link to this process's owner file.
    expect(statSync(lockPath).ino).toBe(statSync(join(dir, `owner-${process.pid}`)).ino);
    release();
    expect(existsSync(lockPath)).toBe(false);
    // A released key can be taken again, and other keys are independent.
    const again = await acquireLock(dir, 'abc');
    const other = await acquireLock(dir, 'def');
    expect(existsSync(join(dir, 'def.lock'))).toBe(true);
    again();
    other();
  });

  it('a second acquire of a held key in the same process waits for the release', async () => {
    const dir = freshDir();
    const releaseFirst = await acquireLock(dir, 'key');
    let released = false;
    const second = acquireLock(dir, 'key').then((release) => {
      expect(released).toBe(true); // it resolved only after the first holder let go
      return release;
    });
    await sleep(300);
    expect(await state(second)).toBe('pending');
    released = true;
    releaseFirst();
    const releaseSecond = await second;
    expect(readFileSync(join(dir, 'key.lock'), 'utf8').trim()).toBe(String(process.pid));
    releaseSecond();
    expect(existsSync(join(dir, 'key.lock'))).toBe(false);
  });

  it('takes over a lock whose owner process is dead, and removes its owner file', async () => {
    const dir = freshDir();
    const child = spawnSync(process.execPath, ['-e', '']);
    const deadPid = child.pid!;
    expect(() => process.kill(deadPid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    const staleOwner = join(dir, `owner-${deadPid}`);
    writeFileSync(staleOwner, String(deadPid));
    linkSync(staleOwner, join(dir, 'stale.lock'));

    // A deadline, not a timing: a takeover that hung would abort here and fail the test.
    const release = await acquireLock(dir, 'stale', AbortSignal.timeout(5000));
    expect(existsSync(staleOwner)).toBe(false);
    expect(readFileSync(join(dir, 'stale.lock'), 'utf8').trim()).toBe(String(process.pid));
    release();
  });

  it('excludes another process holding the lock by the same protocol', async () => {
    const dir = freshDir();
    const lockPath = join(dir, 'shared.lock');
    // The child takes the lock as src/caching/action-lock.ts does (owner file, then link), holds it 1 s, checks
    // nobody replaced its link, writes a marker and only then unlinks.
    const script = `
      const fs = require('fs');
      const [dir, lock] = process.argv.slice(1);
      const owner = dir + '/owner-' + process.pid;
      fs.writeFileSync(owner, String(process.pid));
      fs.linkSync(owner, lock);
      fs.writeFileSync(dir + '/held', '');
      setTimeout(() => {
        const intact = fs.statSync(lock).ino === fs.statSync(owner).ino;
        fs.writeFileSync(dir + '/releasing', JSON.stringify({ intact }));
        fs.unlinkSync(lock);
        fs.unlinkSync(owner);
      }, 1000);
    `;
    const child = spawn(process.execPath, ['-e', script, dir, lockPath], { stdio: 'inherit' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor('the child to hold the lock', () => existsSync(join(dir, 'held')));
      expect(readFileSync(lockPath, 'utf8').trim()).toBe(String(child.pid));

      const release = await acquireLock(dir, 'shared');
      // The marker is written just before the child's unlink: it must already exist.
      expect(existsSync(join(dir, 'releasing'))).toBe(true);
      const releasing = JSON.parse(readFileSync(join(dir, 'releasing'), 'utf8')) as { intact: boolean };
      expect(releasing.intact).toBe(true);
      expect(readFileSync(lockPath, 'utf8').trim()).toBe(String(process.pid));
      release();
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  // Regression: several waiters that all saw the same dead holder could each remove the lock the
  // previous one had just taken over, so two processes held it at once (seen in ~40% of trials).
  it('several processes taking over one stale lock never hold it together', async () => {
    const worker = join(freshDir(), 'worker.mjs');
    writeFileSync(
      worker,
      `import { acquireLock } from ${JSON.stringify(join(process.cwd(), 'src', 'caching', 'action-lock.ts'))};
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
const [dir, go] = process.argv.slice(2);
while (Date.now() < Number(go)) {}
const release = await acquireLock(dir, 'k');
const mine = dir + '/inside-' + process.pid;
writeFileSync(mine, '');
await new Promise((r) => setTimeout(r, 150));
const holders = readdirSync(dir).filter((f) => f.startsWith('inside-')).length;
rmSync(mine);
release();
process.stdout.write(String(holders));
`,
    );
    for (let trial = 0; trial < 3; trial++) {
      const dir = freshDir();
      const dead = spawnSync(process.execPath, ['-e', '']).pid!;
      writeFileSync(join(dir, `owner-${dead}`), String(dead));
      linkSync(join(dir, `owner-${dead}`), join(dir, 'k.lock'));
      const go = String(Date.now() + 1500); // every worker loaded and waiting before anyone tries
      const runs = Array.from({ length: 4 }, () =>
        new Promise<string>((resolve, reject) => {
          const child = spawn(process.execPath, ['--import', 'tsx', worker, dir, go], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          child.stdout.on('data', (d) => (out += d));
          child.on('error', reject);
          child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`worker exited with ${code}`))));
        }),
      );
      expect(await Promise.all(runs)).toEqual(['1', '1', '1', '1']);
      expect(existsSync(join(dir, `owner-${dead}`))).toBe(false);
    }
  }, 30_000);

  it('an abort makes a waiting acquire reject, and an aborted signal rejects at once', async () => {
    const dir = freshDir();
    const release = await acquireLock(dir, 'held');
    const controller = new AbortController();
    const waiting = acquireLock(dir, 'held', controller.signal);
    await sleep(150);
    expect(await state(waiting)).toBe('pending');
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });

    await expect(acquireLock(dir, 'held', controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
    // An aborted signal rejects even when the lock is free, and takes nothing.
    await expect(acquireLock(dir, 'free', controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(existsSync(join(dir, 'free.lock'))).toBe(false);

    // The rejected waiters left the holder's lock in place.
    expect(readFileSync(join(dir, 'held.lock'), 'utf8').trim()).toBe(String(process.pid));
    release();
  });
});
