import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeRunId, runDir, startingMeta, type RunMeta, type RunStatus } from '../src/run.ts';
import { cli, scratchDirs, sleep, waitFor } from './helpers.ts';

/**
 * `logs -f` exits with the followed run's result (issue 12, item 4), so that
 * `./build.ts pipeline --detach && ./build.ts logs RUN_ID=... -f && ./build.ts promote` scripts.
 * The runs are real run directories; the run's process is a real process that ends.
 */
describe('logs -f', () => {
  const scratch = scratchDirs('logs-follow');
  let second = 0;

  function writeRun(cache: string, status: RunStatus, pid: number, log = true): { runId: string; dir: string; meta: RunMeta } {
    const runId = makeRunId('1.0.0', 'abcdef0123456789', new Date(Date.UTC(2026, 0, 1, 0, 0, second++)));
    const dir = runDir(cache, runId);
    mkdirSync(dir, { recursive: true });
    const meta = { ...startingMeta({ version: '1.0.0', sha: 'abcdef0123456789', branch: 'main', repo: cache, dirty: false, goals: [], vars: {} }, runId, pid, new Date()), status };
    writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
    if (log) writeFileSync(join(dir, 'run.log'), `run ${runId}\n${status}: ...\n`);
    return { runId, dir, meta };
  }

  it('exits 0 for a completed run, 1 for a failed or interrupted one, 130 for a cancelled one', async () => {
    const cache = scratch();
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    for (const [status, code] of [['completed', 0], ['promoted', 0], ['failed', 1], ['running', 1], ['cancelled', 130]] as const) {
      const { runId } = writeRun(cache, status, gone);
      const followed = await cli(['logs', `RUN_ID=${runId}`, '-f'], { cache });
      expect(followed.code, `${status}: ${followed.stderr}`).toBe(code);
      expect(followed.stdout).toContain(`${status}: ...`);
      // A run whose process died mid-run says so on stderr, with what to do; the others print nothing there.
      expect(followed.stderr).toBe(status === 'running' ? `run ${runId} is interrupted: its build process is gone; rerun the same build (what it finished is cached)\n` : '');
      // Without -f, printing the log is all it does.
      expect((await cli(['logs', `RUN_ID=${runId}`], { cache })).code).toBe(0);
    }
  });

  it('follows a living run to its end and exits 1 when it failed', async () => {
    const cache = scratch();
    const worker = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    const { runId, dir, meta } = writeRun(cache, 'running', worker.pid!);
    const following = cli(['logs', `RUN_ID=${runId}`, '-f'], { cache });
    await sleep(1500);
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ ...meta, status: 'failed', error: '1 target(s) failed' }));
    worker.kill();
    const followed = await following;
    expect(followed.code).toBe(1);
  });

  it('waits for the run.log of a detached run whose builder has not written it yet, then follows it to its end', async () => {
    // Locally: the run's process lives but has not started its log.
    const cache = scratch();
    const worker = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    const local = writeRun(cache, 'running', worker.pid!, false);
    const following = cli(['logs', `RUN_ID=${local.runId}`, '-f'], { cache });
    await sleep(1500);
    writeFileSync(join(local.dir, 'run.log'), 'late line\n');
    await sleep(700);
    writeFileSync(join(local.dir, 'meta.json'), JSON.stringify({ ...local.meta, status: 'completed' }));
    worker.kill();
    const followed = await following;
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toBe('late line\n');
  });

  it('on the volume: a run --detach recorded, whose coordinator has not started, is waited for (not taken for interrupted)', async () => {
    // What `--detach` leaves before the coordinator's container starts: meta.json written by the
    // operator's CLI (its pid long gone), no heartbeat, no run.log. The stand-in's volume is a directory.
    const standin = scratch();
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const { runId, dir, meta } = writeRun(join(standin, 'volume', 'build', 'state'), 'running', gone, false);
    const follower = scratch();
    const following = cli(['logs', `RUN_ID=${runId}`, '-f'], { cache: follower, env: { MODAL_STANDIN_DIR: standin } });
    // It has found the run on the volume (its mirror exists) before the coordinator "starts".
    await waitFor('the follower to find the run', () => existsSync(join(follower, 'remote')), 60_000);
    await sleep(500);
    writeFileSync(join(dir, 'heartbeat.json'), JSON.stringify({ at: new Date().toISOString(), intervalMs: 1000 }));
    writeFileSync(join(dir, 'run.log'), 'coordinator started\n');
    await sleep(1000);
    writeFileSync(join(dir, 'run.log'), 'coordinator started\ncompleted\n');
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ ...meta, status: 'completed' }));
    writeFileSync(join(dir, 'heartbeat.json'), JSON.stringify({ at: new Date().toISOString(), intervalMs: 1000, closed: true }));
    const followed = await following;
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toBe('coordinator started\ncompleted\n');
  });
});
