import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, cli, exampleRepo, SMALL, sleep, tempDir, type CliResult } from './helpers.ts';
import { modalPython, standinCalls, killStandinCalls } from './modal-helpers.ts';

/**
 * `./build.ts pipeline EXECUTOR=modal RUN_ID=<id> --detach` against the local stand-in, through the
 * real CLI: a detached run whose coordinator was SIGKILLed, with the stand-in's restarts disabled
 * (MODAL_STANDIN_COORDINATOR_ATTEMPTS=1: a coordinator whose Modal retries are exhausted), shows as
 * interrupted from another machine; the resume command starts a new coordinator call for the same
 * run id, which completes it with no action dispatched twice. A run not on the volume, one that
 * runs, one that ended, one of another SHA are refused with one line and exit 2.
 */
interface Meta {
  runId: string;
  status: string;
  sha: string;
  targets: Record<string, { outcome: string; key?: string; remote?: Record<string, unknown> }>;
}

describe('resuming a run whose coordinator died for good (stand-in)', () => {
  let repo: string;
  let work: string;
  let standin: string;
  let env: Record<string, string>;
  let vars: string[];
  const state = () => join(standin, 'volume', 'build', 'state');
  const remoteMeta = (runId: string) => JSON.parse(readFileSync(join(state(), 'runs', runId, 'meta.json'), 'utf8')) as Meta;
  const runLog = (runId: string) => readFileSync(join(state(), 'runs', runId, 'run.log'), 'utf8');
  const coordinatorCall = (runId: string) => JSON.parse(readFileSync(join(state(), 'runs', runId, 'coordinator.json'), 'utf8')) as { callId: string; args: string[] };
  const callPid = (id: string, file = 'pid') => Number(readFileSync(join(standin, 'calls', id, file), 'utf8'));
  /** Another machine: its own cache dir and HOME, the same stand-in. */
  const elsewhere = (args: string[], extra: Record<string, string> = {}) => cli(args, { cache: join(work, 'b', 'cache'), env: { ...env, HOME: join(work, 'b', 'home'), ...extra } });
  // The slowed fit (its EXAMPLE_FIT_SLEEP_MS is in its key): in the stand-in a coordinator carries the
  // operator's environment, so the resume must give it the same one for the run's keys to stay the same.
  const slow = { EXAMPLE_FIT_SLEEP_MS: '300' };
  const resume = (runId: string, extra: string[] = [], r = repo) => cli(['pipeline', 'EXECUTOR=modal', `RUN_ID=${runId}`, `REPO=${r}`, ...extra, '--detach'], { cache: join(work, 'operator'), env: { ...env, ...slow } });
  const refused = (r: CliResult, pattern: RegExp) => {
    expect(r.code, r.stderr + r.stdout).toBe(2);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
  };

  beforeAll(() => {
    const python = modalPython();
    repo = exampleRepo();
    work = tempDir('coordinator-resume');
    standin = join(work, 'standin');
    // Beats of 1 s: a dead coordinator is `lost` 5 s after its last one (run-heartbeat.ts).
    env = { MODAL_STANDIN_DIR: standin, BUILD_MODAL_PYTHON: python, BUILD_MODAL_BATCH_QUIET_MS: '300', BUILD_HEARTBEAT_MS: '1000', MODAL_STANDIN_COORDINATOR_ATTEMPTS: '1' };
    vars = [`REPO=${repo}`, ...SMALL, 'NUM_WORKERS=2', 'EXECUTOR=modal'];
  });
  afterAll(() => {
    // A failed test may leave stand-in calls running: stop them before removing their directory.
    killStandinCalls(standin);
    cleanup(repo, work);
  });

  it('a killed coordinator left dead shows as interrupted; the resume command completes the same run, nothing dispatched twice; the refusals are one line and exit 2', async () => {
    const started = await cli(['pipeline', ...vars, '--detach', '--json'], { cache: join(work, 'operator'), env: { ...env, ...slow } });
    expect(started.code, started.stderr + started.stdout).toBe(0);
    const detached = started.events.find((e) => e.event === 'detached')!;
    const runId = detached.runId as string;
    const firstCall = detached.callId as string;
    // Its arguments are recorded for a resume, with no REPO= of this machine.
    expect(coordinatorCall(runId).args).toEqual(expect.arrayContaining(['pipeline', ...SMALL, 'EXECUTOR=modal']));
    expect(coordinatorCall(runId).args.some((a) => a.startsWith('REPO='))).toBe(false);

    let fitCall = '';
    for (const deadline = Date.now() + 300_000; ; await sleep(100)) {
      const fit = remoteMeta(runId).targets['fit-regional'];
      if (fit?.outcome === 'running' && typeof fit.remote?.callId === 'string') {
        fitCall = fit.remote.callId;
        break;
      }
      if (Date.now() > deadline) throw new Error(`the fit was never dispatched:\n${runLog(runId).slice(-3000)}`);
    }
    // While its coordinator beats, a resume is refused: the run is running.
    refused(await resume(runId), new RegExp(`run ${runId} has a live coordinator .*it is running; follow it with ./build.ts logs RUN_ID=${runId} -f`));

    // The coordinator's container dies, and the stand-in (one attempt allowed) does not restart it.
    process.kill(-callPid(firstCall, 'container.pid'), 'SIGKILL');
    for (const deadline = Date.now() + 60_000; !existsSync(join(standin, 'calls', firstCall, 'result.json')); await sleep(100)) {
      if (Date.now() > deadline) throw new Error('the stand-in supervisor wrote no result for the dead coordinator');
    }
    expect(JSON.parse(readFileSync(join(standin, 'calls', firstCall, 'result.json'), 'utf8'))).toMatchObject({ state: 'failed', reason: 'remote-preempted' });
    expect(readFileSync(join(standin, 'calls', firstCall, 'attempts'), 'utf8').trim().split('\n')).toHaveLength(1);

    // Another machine sees it interrupted once its heartbeat is stale, with the command that resumes it.
    let row: Record<string, unknown> | undefined;
    for (const deadline = Date.now() + 60_000; ; await sleep(500)) {
      const listed = await elsewhere(['status', '--json']);
      expect(listed.code, listed.stderr).toBe(0);
      row = listed.events.find((e) => e.event === 'run' && e.runId === runId);
      if (row?.status === 'interrupted') break;
      if (Date.now() > deadline) throw new Error(`run ${runId} never shown interrupted: ${JSON.stringify(row)}`);
    }
    expect(row).toMatchObject({ where: 'standin', resume: `./build.ts pipeline EXECUTOR=modal RUN_ID=${runId} --detach` });
    expect(remoteMeta(runId).status).toBe('running');

    // The refusals, before anything is started: a run the volume lacks, another SHA, another variable value.
    const callsBefore = standinCalls(standin).length;
    refused(await resume(runId.replace(/_\d{6}$/, '_000000')), /is not on standin, so there is nothing to resume/);
    const other = join(work, 'other-repo');
    execFileSync('git', ['clone', '-q', repo, other]);
    execFileSync('git', ['-C', other, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '--allow-empty', '-m', 'another commit']);
    const otherSha = execFileSync('git', ['-C', other, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    refused(await resume(runId, [], other), new RegExp(`run ${runId} builds ${remoteMeta(runId).sha}, and .* is pinned at ${otherSha}; check out the run's SHA`));
    refused(await resume(runId, ['EPOCHS=31']), /EPOCHS=31 differs \(EPOCHS=30 there\); drop EPOCHS= or start a new run/);
    expect(standinCalls(standin)).toHaveLength(callsBefore);
    expect(coordinatorCall(runId).callId).toBe(firstCall);

    // The resume command: the same run id, a new coordinator call recorded for it.
    const before = new Set(standinCalls(standin).filter((c) => c.function === 'run_coordinator').map((c) => c.id));
    const resumed = await resume(runId);
    expect(resumed.code, resumed.stderr + resumed.stdout).toBe(0);
    expect(resumed.stdout.trim()).toBe(runId);
    const callId = coordinatorCall(runId).callId;
    expect(callId).not.toBe(firstCall);
    expect(standinCalls(standin).filter((c) => c.function === 'run_coordinator' && !before.has(c.id)).map((c) => c.id)).toEqual([callId]);

    let m: Meta;
    for (const deadline = Date.now() + 600_000; (m = remoteMeta(runId)).status === 'running'; await sleep(250)) {
      if (Date.now() > deadline) throw new Error(`run ${runId} still running:\n${runLog(runId).slice(-3000)}`);
    }
    expect(m.status, runLog(runId).slice(-3000)).toBe('completed');
    expect(runLog(runId).match(/coordinator started on/g)).toHaveLength(2);
    // The fit's call, in flight when its coordinator died, was reattached, not dispatched again.
    expect(m.targets['fit-regional']).toMatchObject({ outcome: 'built', remote: { callId: fitCall, reattached: true } });
    const count = new Map<string, number>();
    for (const c of standinCalls(standin)) if (c.function !== 'run_coordinator') for (const k of c.keys) count.set(k, (count.get(k) ?? 0) + 1);
    expect(count.size).toBeGreaterThan(0);
    expect([...count].filter(([, n]) => n > 1)).toEqual([]);
    const result = join(standin, 'calls', callId, 'result.json');
    for (const deadline = Date.now() + 120_000; !existsSync(result); await sleep(200)) {
      if (Date.now() > deadline) throw new Error('the resumed coordinator call never ended');
    }
    expect(JSON.parse(readFileSync(result, 'utf8'))).toMatchObject({ state: 'done', value: { ok: true, exitCode: 0, runId } });

    // Ended: nothing to resume.
    refused(await resume(runId), new RegExp(`run ${runId} has ended \\(completed\\); nothing to resume: start a new run`));
  }, 1_200_000);
});
