import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGISTRY_PATH } from '../src/publish/layout.ts';
import { FakeHfHub, type FakeRepoId } from './fakes/fake-hf-hub.ts';
import { cleanup, cli, exampleRepo, ROOT, SMALL, sleep, tempDir } from './helpers.ts';
import { killStandinCalls, modalPython, processes, standinCalls } from './modal-helpers.ts';

/**
 * Issue 14's "done when", end to end through the real CLI, the stand-in and the Hugging Face test
 * server (test/fakes/fake-hf-hub.ts, the real Hub's HTTP protocol): machine A starts the twin with
 * `pipeline EXECUTOR=modal --detach` and exits, leaving no process of its own (what runs descends
 * from the stand-in's calls: the coordinator and its action calls); machine B (another cache dir
 * and HOME, the same stand-in, the same HF repository, as two operators share one) lists the run,
 * follows its logs to completion and promotes it.
 *
 * The coordinator stages the completed run to the hub itself. HF_REPO and HF_ENDPOINT reach it as
 * forwarded settings (detach-remote.ts FORWARDED_SETTINGS); the token is never forwarded. In the
 * stand-in, the coordinator's "container" carries the stand-in's environment, its secret store
 * (standin.ts spawn), which here is A's: that is how HF_TOKEN reaches the coordinator's staging, as
 * a Modal secret would on Modal. The token never lands in a file of the run or of the calls.
 */
const SENTINEL = 'hf_SENTINELhandoff0123456789';
const hub = new FakeHfHub({ tokens: [SENTINEL] });

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('detach on one machine, follow and promote from another (stand-in)', () => {
  let repo: string;
  let work: string;
  let standin: string;
  let hfRepo: FakeRepoId;
  let machine: (name: string) => { cache: string; env: Record<string, string> };

  beforeAll(async () => {
    const python = modalPython();
    repo = exampleRepo();
    work = tempDir('coordinator-handoff');
    standin = join(work, 'standin');
    await hub.start();
    hfRepo = { type: 'model', name: 'org/handoff' };
    hub.createRepo(hfRepo);
    machine = (name) => ({
      cache: join(work, name, 'cache'),
      env: { HOME: join(work, name, 'home'), MODAL_STANDIN_DIR: standin, BUILD_MODAL_PYTHON: python, BUILD_MODAL_BATCH_QUIET_MS: '300', HF_TOKEN: SENTINEL, HF_ENDPOINT: hub.url, HF_REPO: hfRepo.name },
    });
  });
  afterAll(async () => {
    killStandinCalls(standin);
    await hub.close();
    cleanup(repo, work);
  });

  it('A detaches and leaves nothing running; B lists the run, follows it to the end and promotes it', async () => {
    const a = machine('A');
    const started = await cli(['pipeline', `REPO=${repo}`, ...SMALL, 'NUM_WORKERS=2', 'EXECUTOR=modal', '--detach'], a);
    expect(started.code, started.stderr + started.stdout).toBe(0);
    const runId = started.stdout.trim();
    expect(runId).toMatch(/^[0-9A-Za-z.+-]+_[0-9a-f]{8}_\d{8}_\d{6}$/);
    expect(readdirSync(a.cache).includes('runs') ? readdirSync(join(a.cache, 'runs')) : []).toEqual([]);

    // A's CLI has exited; every process of the stand-in descends from one of its calls, and none runs A's own CLI.
    const procs = processes();
    const roots = new Set(standinCalls(standin).map((c) => Number(readFileSync(join(standin, 'calls', c.id, 'pid'), 'utf8'))));
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    const descends = (pid: number): boolean => {
      for (let p = byPid.get(pid); p; p = byPid.get(p.ppid)) if (roots.has(p.pid)) return true;
      return false;
    };
    const mine = procs.filter((p) => p.environ.includes(`MODAL_STANDIN_DIR=${standin}\0`));
    expect(mine.filter((p) => !descends(p.pid)).map((p) => p.cmdline)).toEqual([]);
    expect(mine.filter((p) => p.cmdline.includes(join(ROOT, 'dist', 'cli.mjs'))).map((p) => p.cmdline)).toEqual([]);

    // B lists it (the volume's runs, marked standin), follows it to completion.
    const b = machine('B');
    const listed = await cli(['status', '--json'], b);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.events.find((e) => e.event === 'run' && e.runId === runId)).toMatchObject({ where: 'standin' });
    const followed = await cli(['logs', `RUN_ID=${runId}`, '-f'], b);
    expect(followed.code, followed.stderr + followed.stdout.slice(-2000)).toBe(0);
    expect(followed.stdout).toMatch(new RegExp(`completed: \\d+ built, \\d+ cached, 0 failed.*\\(run ${runId}\\)`));
    const state = join(standin, 'volume', 'build', 'state');
    const meta = JSON.parse(readFileSync(join(state, 'runs', runId, 'meta.json'), 'utf8')) as { status: string; targets: Record<string, { remote?: { function?: string } }> };
    expect(meta.status).toBe('completed');
    expect(meta.targets['fit-regional']?.remote?.function).toBe('run_t4');

    // The coordinator staged it to the hub (its HF_TOKEN from the stand-in's environment): B promotes it from there.
    // Its CLI publishes after recording `completed`, so B waits for the coordinator's call to end first.
    const record = JSON.parse(readFileSync(join(state, 'runs', runId, 'coordinator.json'), 'utf8')) as { callId: string; secretEnv: string[] };
    // It stages to Hugging Face, so its call names publishing's token (a Modal secret on Modal; the value never in a file).
    expect(record.secretEnv).toEqual(['HF_TOKEN']);
    const coordinatorCall = record.callId;
    for (const deadline = Date.now() + 120_000; !statSync(join(standin, 'calls', coordinatorCall), { throwIfNoEntry: false }) || !readdirSync(join(standin, 'calls', coordinatorCall)).includes('result.json'); await sleep(200)) {
      if (Date.now() > deadline) throw new Error('the coordinator call never ended');
    }
    expect(JSON.parse(readFileSync(join(standin, 'calls', coordinatorCall, 'result.json'), 'utf8'))).toMatchObject({ state: 'done', value: { ok: true, exitCode: 0, runId } });
    const promoted = await cli(['promote', `RUN_ID=${runId}`, '--yes'], b);
    expect(promoted.code, promoted.stderr + promoted.stdout).toBe(0);
    const registry = JSON.parse(hub.fileAt(hfRepo, 'main', REGISTRY_PATH)!.toString()) as { versions: { pipeline_run_id: string }[] };
    expect(registry.versions.map((v) => v.pipeline_run_id)).toEqual([runId]);
    expect(hub.fileAt(hfRepo, 'main', 'states/CA.h5')).toEqual(readFileSync(join(state, 'runs', runId, 'h5s', 'states', 'CA.h5')));
    expect(JSON.parse(readFileSync(join(state, 'runs', runId, 'meta.json'), 'utf8')).status).toBe('promoted');

    // The token is in no output, no file of the run on the volume and no request or log of a call.
    expect(`${started.stdout}${started.stderr}${listed.stdout}${followed.stdout}${promoted.stdout}${promoted.stderr}`).not.toContain(SENTINEL);
    const leaked = [...files(join(state, 'runs', runId)), ...files(join(standin, 'calls'))].filter((f) => readFileSync(f).includes(SENTINEL));
    expect(leaked).toEqual([]);
  }, 1_200_000);
});
