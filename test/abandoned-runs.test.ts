import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocateRun, startingMeta, writeMeta } from '../src/run.ts';
import { CLI, cleanup, cli, cliEnv, exampleRepo, git, ROOT, scratchDirs, SMALL, waitFor } from './helpers.ts';

/**
 * Runs no process will finish (issue 12, item 6): a run directory without meta.json (a build
 * stopped before recording it: made here with the real allocateRun, its meta.json never written)
 * and a run whose build was killed with SIGKILL mid-fit. `status` shows both with their age, and
 * `gc` removes both whatever KEEP says, while it keeps a live build's run, a run recorded by a
 * build on another machine (its PID cannot be checked here), a run directory young enough to be a
 * build starting now, and the newest KEEP completed runs.
 */
describe('half-made and interrupted runs', () => {
  const scratch = scratchDirs('abandoned-runs');
  const started: ChildProcess[] = [];
  let repo: string;
  let cache: string;
  const completed: string[] = [];
  beforeAll(async () => {
    repo = exampleRepo();
    cache = join(scratch(), 'cache');
    for (let i = 0; i < 3; i++) {
      const r = await cli(['acs', `REPO=${repo}`, ...SMALL, '--new-run', '--json'], { cache });
      if (r.code !== 0) throw new Error(r.stderr);
      completed.push(r.events.find((e) => e.event === 'summary')!.runId as string);
    }
  });
  afterAll(() => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    cleanup(repo);
  });

  const run = (...args: string[]) => cli([...args, `REPO=${repo}`], { cache });
  const row = (out: string, runId: string) => out.split('\n').find((l) => l.startsWith(runId)) ?? '';

  it('status shows them with their age; gc -n names them and removes nothing; gc removes them and keeps the live, the starting and the newest KEEP', async () => {
    const sha = git(repo, 'rev-parse', 'HEAD');
    // Half-made an hour ago (its build died before writing meta.json), and one allocated just now.
    const old = await allocateRun(cache, '1.72.3', sha, new Date(Date.now() - 3600_000));
    const hour = (Date.now() - 3600_000) / 1000;
    utimesSync(old.dir, hour, hour);
    const fresh = await allocateRun(cache, '1.72.3', sha, new Date());
    // Recorded by a build on another machine sharing the cache: its PID means nothing here.
    const elsewhere = await allocateRun(cache, '1.72.3', sha, new Date(Date.now() - 7200_000));
    const dead = spawn('true');
    await new Promise((resolve) => dead.on('exit', resolve));
    const request = { version: '1.72.3', sha, branch: 'main', repo, dirty: false, goals: ['acs'], vars: {} };
    await writeMeta(elsewhere.dir, { ...startingMeta(request, elsewhere.runId, dead.pid!, new Date(Date.now() - 7200_000)), host: 'another-machine' });

    // A live build, held in its fit (slowed, many epochs) until the test kills it.
    const build = spawn(process.execPath, [CLI, 'fit-regional', `REPO=${repo}`, ...SMALL, 'EPOCHS=100000', '--json'], {
      cwd: ROOT, env: cliEnv(cache, { EXAMPLE_FIT_SLEEP_MS: '100' }), detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.push(build);
    let output = '';
    build.stdout!.on('data', (d) => (output += d));
    build.stderr!.on('data', (d) => (output += d));
    const live = await waitFor('the live run id', () => /"event":"run-start","runId":"([^"]+)"/.exec(output)?.[1] ?? false, 120_000);
    const meta = () => JSON.parse(readFileSync(join(cache, 'runs', live, 'meta.json'), 'utf8')) as { targets: Record<string, { outcome: string }> };
    await waitFor('the fit to run', () => meta().targets['fit-regional']?.outcome === 'running', 240_000);

    const status = await run('status');
    expect(status.code, status.stderr).toBe(0);
    expect(row(status.stdout, old.runId)).toMatch(/half-made\s.*no meta\.json, 1\.\d h old; \.\/build\.ts gc removes it/);
    expect(row(status.stdout, fresh.runId)).toMatch(/starting\s.*no meta\.json, \d+(s| min) old$/);
    expect(row(status.stdout, live)).toMatch(/^\S+\s+running\s/);
    expect(row(status.stdout, elsewhere.runId)).toMatch(/^\S+\s+running\s/);
    const one = await run('status', `RUN_ID=${old.runId}`);
    expect(one.code).toBe(2);
    expect(one.stderr).toBe(`error: run ${old.runId} has no meta.json (half-made: its build stopped before recording it); ./build.ts gc removes it\n`);
    for (const id of completed) expect(row(status.stdout, id)).toMatch(/completed/);
    const json = await run('status', '--json');
    const byId = new Map(json.events.map((e) => [e.runId, e]));
    expect(byId.get(old.runId)).toMatchObject({ status: 'half-made' });
    expect(byId.get(old.runId)!.ageMs as number).toBeGreaterThanOrEqual(3600_000);

    const dry = await run('gc', 'KEEP=2', '-n');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(new RegExp(`would remove run ${old.runId} \\(half-made: no meta\\.json, 1\\.\\d h old\\)`));
    expect(dry.stdout).toMatch(new RegExp(`would remove run ${completed[0]} \\(older than the newest 2 unpromoted\\)`));
    expect(dry.stdout).toMatch(new RegExp(`keeping run ${live} \\(running \\(pid ${build.pid}\\)\\)`));
    expect(dry.stdout).toMatch(new RegExp(`keeping run ${fresh.runId} \\(no meta\\.json yet, \\d+(s| min) old: a build may be starting\\)`));
    expect(dry.stdout).not.toMatch(new RegExp(`remove run (${completed[1]}|${completed[2]}|${live}|${fresh.runId})`));
    for (const dir of [old.dir, fresh.dir, ...completed.map((id) => join(cache, 'runs', id))]) expect(existsSync(dir)).toBe(true);

    // Killed mid-fit: its meta.json still says running, and its process is gone.
    process.kill(-build.pid!, 'SIGKILL');
    await new Promise((resolve) => (build.exitCode !== null || build.signalCode !== null ? resolve(null) : build.on('exit', resolve)));
    const after = await run('status');
    expect(row(after.stdout, live)).toMatch(new RegExp(`interrupted .*; process ${build.pid} gone, started \\d+(s| min) ago; \\./build\\.ts gc removes it`));

    const gc = await run('gc', 'KEEP=2');
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toMatch(new RegExp(`removing run ${live} \\(interrupted: process ${build.pid} gone`));
    expect(existsSync(old.dir)).toBe(false);
    expect(existsSync(join(cache, 'runs', live))).toBe(false);
    expect(existsSync(join(cache, 'runs', completed[0]!))).toBe(false);
    expect(existsSync(fresh.dir)).toBe(true);
    expect(gc.stdout).toMatch(new RegExp(`keeping run ${elsewhere.runId} \\(running \\(pid ${dead.pid}\\)\\)`));
    expect(existsSync(elsewhere.dir)).toBe(true);
    for (const id of completed.slice(1)) expect(existsSync(join(cache, 'runs', id, 'meta.json'))).toBe(true);
    rmSync(fresh.dir, { recursive: true });
    rmSync(elsewhere.dir, { recursive: true });
  }, 400_000);
});
