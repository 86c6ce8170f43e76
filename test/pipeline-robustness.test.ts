import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { built, cleanup, cli, commitChange, exampleRepo, git, outcomes, parseEvents, scratchDirs, SMALL, startCli, summary } from './helpers.ts';
import { DB_STEPS } from '../tasks/data.ts';

/** Waits until the running CLI has printed an event matching `pred` (NDJSON on stdout). */
async function waitForEvent(child: ReturnType<typeof startCli>, pred: (e: Record<string, unknown>) => boolean, timeoutMs = 120_000) {
  const started = Date.now();
  for (;;) {
    const found = parseEvents(child.output()).find(pred);
    if (found) return found;
    if (child.exitCode !== null) throw new Error(`process exited before the event:\n${child.output()}`);
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exited = (child: ReturnType<typeof startCli>) =>
  new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('close', (code) => resolve(code))));

describe('robustness', () => {
  let repo: string;
  const scratch = scratchDirs('robust');
  const freshCache = () => join(scratch(), 'cache');
  beforeAll(() => {
    repo = exampleRepo();
  });
  afterAll(() => cleanup(repo));

  it('a commit pushed to the branch during a run does not leak into it', async () => {
    const cache = freshCache();
    const sha = git(repo, 'rev-parse', 'HEAD');
    const child = startCli(['pipeline', `REPO=${repo}`, ...SMALL, '--json'], { cache, env: { EXAMPLE_FIT_SLEEP_MS: '60' } });
    // Resolves once the fit has started, or throws when the run ends without it.
    await waitForEvent(child, (e) => e.event === 'target-start' && e.target === 'fit-regional');
    const file = 'policyengine_us_data/utils/manifest.py';
    const original = readFileSync(join(repo, file), 'utf8');
    commitChange(repo, file, `${original}\nraise SystemExit("code from a later commit ran")\n`, 'mid-run commit');
    expect(await exited(child)).toBe(0);
    const s = summary({ code: 0, stdout: child.output(), stderr: '', events: parseEvents(child.output()) });
    const meta = JSON.parse(readFileSync(join(cache, 'runs', s.runId as string, 'meta.json'), 'utf8'));
    expect(meta.sha).toBe(sha);
    expect(meta.status).toBe('completed');
    commitChange(repo, file, original, 'revert');
  });

  it('kill -9 in the middle of the fit, then a rerun completes with nothing corrupt', async () => {
    const cache = freshCache();
    const env = { EXAMPLE_FIT_SLEEP_MS: '100' };
    const child = startCli(['pipeline', `REPO=${repo}`, ...SMALL, '--json'], { cache, env });
    const start = (await waitForEvent(child, (e) => e.event === 'run-start')) as { runId: string };
    await waitForEvent(child, (e) => e.event === 'target-start' && e.target === 'fit-national');
    await new Promise((r) => setTimeout(r, 800));
    child.kill('SIGKILL');
    await exited(child);
    const rerun = await cli(['pipeline', `REPO=${repo}`, ...SMALL, '--json'], { cache, env });
    expect(rerun.code, rerun.stderr).toBe(0);
    const o = outcomes(rerun);
    expect(o.get('database')).toBe('cached');
    expect(o.get('fit-national')).toBe('built');
    const verify = await cli(['cache', 'verify'], { cache });
    expect(verify.code, verify.stdout).toBe(0);
    const status = await cli(['status', `RUN_ID=${start.runId}`], { cache });
    expect(status.stdout).toMatch(/status\s+interrupted/);
  });

  it('two concurrent runs on one cache build every action once and both complete', async () => {
    const cache = freshCache();
    const a = startCli(['calibration-package', `REPO=${repo}`, ...SMALL, '--json'], { cache });
    const b = startCli(['calibration-package', `REPO=${repo}`, ...SMALL, '--json'], { cache });
    expect(await exited(a)).toBe(0);
    expect(await exited(b)).toBe(0);
    const builtA = built({ code: 0, stdout: a.output(), stderr: '', events: parseEvents(a.output()) });
    const builtB = built({ code: 0, stdout: b.output(), stderr: '', events: parseEvents(b.output()) });
    expect(builtA.filter((t) => builtB.includes(t))).toEqual([]);
    // python-env may come from the Python environments shared by the test caches.
    expect([...builtA, ...builtB].filter((t) => t !== 'python-env').sort()).toEqual(
      [
        'acs', 'calibration-package', 'cps', 'database', ...DB_STEPS.slice(0, -1).map((s) => s.target), 'extended-cps', 'irs-puf',
        'prerequisites', 'prerequisites-revision', 'puf', 'source-imputed-cps', 'stratified-cps',
      ].sort(),
    );
  });

  it('SIGINT cancels the run, marks it cancelled, and a rerun completes', async () => {
    const cache = freshCache();
    const env = { EXAMPLE_FIT_SLEEP_MS: '100' };
    const child = startCli(['pipeline', `REPO=${repo}`, ...SMALL, '--json'], { cache, env });
    const start = (await waitForEvent(child, (e) => e.event === 'run-start')) as { runId: string };
    await waitForEvent(child, (e) => e.event === 'target-start' && e.target === 'fit-regional');
    child.kill('SIGINT');
    expect(await exited(child)).toBe(130);
    const meta = JSON.parse(readFileSync(join(cache, 'runs', start.runId, 'meta.json'), 'utf8'));
    expect(meta.status).toBe('cancelled');
    const rerun = await cli(['pipeline', `REPO=${repo}`, ...SMALL, '--json'], { cache, env });
    expect(rerun.code).toBe(0);
    expect(outcomes(rerun).get('database')).toBe('cached');
  });

  it('--detach returns a run id at once; logs -f follows it to the end', async () => {
    const cache = freshCache();
    const d = await cli(['pipeline', `REPO=${repo}`, ...SMALL, '--detach'], { cache });
    expect(d.code).toBe(0);
    const runId = d.stdout.trim();
    expect(runId).toMatch(/^1\.72\.3_[0-9a-f]{8}_\d{8}_\d{6}$/);
    // The command returned while the run goes on in another, still living, process.
    const meta = JSON.parse(readFileSync(join(cache, 'runs', runId, 'meta.json'), 'utf8'));
    expect(meta.status).toBe('running');
    expect(() => process.kill(meta.pid, 0)).not.toThrow();
    const logs = await cli(['logs', `RUN_ID=${runId}`, '-f'], { cache });
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(/completed: \d+ built/);
    const status = await cli(['status', `RUN_ID=${runId}`, '--json'], { cache });
    expect(status.events.find((e) => e.event === 'run')?.status).toBe('completed');
  });
});
