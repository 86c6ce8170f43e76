import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunRequest } from '../src/executors/modal/protocol.ts';
import { cli, git, scratchDirs, summary, type CliResult } from './helpers.ts';
import { modalPython, standinCalls } from './modal-helpers.ts';

/**
 * Target.secretEnv (src/secret-env.ts) through the real CLI on a small declaration in a real git
 * repository: the secret reaches the action, and its value is nowhere in the cache, the run
 * directory (keys, entries, meta.json, logs) or the CLI's output; a missing secret stops the build
 * before a run exists.
 */
const DECLARATION = `
export function makePipeline() {
  const target = (t) => ({ deps: [], sources: ['pin.txt'], vars: [], secretEnv: ['SECRET_TEST_TOKEN'], ...t });
  return {
    defaultGoals: ['download'],
    nodes: [
      { kind: 'target', target: target({ name: 'download',
        command: () => ['sh', '-c', 'printf %s "$SECRET_TEST_TOKEN" | sha256sum | cut -c1-64 > {run}/artifacts/proof.txt; echo "using token $SECRET_TEST_TOKEN"'],
        outputs: ['artifacts/proof.txt'] }) },
      { kind: 'target', target: target({ name: 'leaky', deps: ['download'],
        command: () => ['sh', '-c', 'echo "cannot log in with $SECRET_TEST_TOKEN" >&2; exit 3'], outputs: ['artifacts/never.txt'] }) },
      { kind: 'target', target: { name: 'plain', deps: [], sources: ['pin.txt'], vars: [], command: () => ['sh', '-c', 'env > {run}/artifacts/env.txt'], outputs: ['artifacts/env.txt'] } },
      // On the Modal stand-in: the environment of the container (the runner process, the command's parent).
      { kind: 'target', target: { name: 'container', deps: [], sources: ['pin.txt'], vars: [],
        command: () => ['sh', '-c', 'env > {run}/artifacts/action-env.txt; xargs -0 -n1 < /proc/$PPID/environ > {run}/artifacts/container-env.txt'],
        outputs: ['artifacts/action-env.txt', 'artifacts/container-env.txt'] } },
    ],
  };
}
`;

/** Every file under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.isFile() && readFileSync(path).includes(needle)) found.push(path);
    }
  };
  if (existsSync(dir)) walk(dir);
  return found;
}

describe('secret environment (Target.secretEnv)', () => {
  const scratch = scratchDirs('secret-env');
  const token = `hf_secretTEST${process.pid}xyz`;
  let root: string;
  let repo: string;
  let tasks: string;
  const build = (cache: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
    cli([...args, `REPO=${repo}`, '--json'], { cache, env: { BUILD_TASKS: tasks, SECRET_TEST_TOKEN: '', ...env } });

  beforeAll(() => {
    root = scratch();
    tasks = join(root, 'tasks.mjs');
    writeFileSync(tasks, DECLARATION);
    repo = join(root, 'repo');
    mkdirSync(repo);
    writeFileSync(join(repo, 'pin.txt'), 'revision 1\n');
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, '-c', 'user.email=t@example.com', '-c', 'user.name=T', 'add', '-A');
    git(repo, '-c', 'user.email=t@example.com', '-c', 'user.name=T', 'commit', '-q', '-m', 'init');
  });

  it('reaches the action, and its value is in no key, entry, meta.json, log or output', async () => {
    const cache = join(scratch(), 'cache');
    const r = await build(cache, ['download'], { SECRET_TEST_TOKEN: token });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const run = join(cache, 'runs', summary(r).runId as string);
    expect(readFileSync(join(run, 'artifacts/proof.txt'), 'utf8').trim()).toBe(createHash('sha256').update(token).digest('hex'));
    const log = readFileSync(join(run, 'logs/download.log'), 'utf8').split('\n');
    // The first line is the command as it ran (it names the variable, never its value), then the action's output.
    expect(log[0]).toMatch(/^\$ cd .* && sh -c /);
    expect(log.slice(1).join('\n')).toBe('using token ***\n');
    expect(filesContaining(cache, token)).toEqual([]);
    expect(r.stdout + r.stderr).not.toContain(token);

    // Never hashed: another token is the same action (what it fetches must be pinned by the key).
    const again = await build(cache, ['download'], { SECRET_TEST_TOKEN: `${token}-rotated` });
    expect(summary(again).replayedFrom).toBe(summary(r).runId);
  });

  it('a failing action that prints it: the error and the log show it redacted', async () => {
    const cache = join(scratch(), 'cache');
    const r = await build(cache, ['leaky'], { SECRET_TEST_TOKEN: token });
    expect(r.code).toBe(1);
    const failed = r.events.find((e) => e.event === 'target' && e.target === 'leaky');
    expect(failed?.error).toMatch(/cannot log in with \*\*\*/);
    expect(r.stdout + r.stderr).not.toContain(token);
    expect(filesContaining(cache, token)).toEqual([]);
  });

  it('is not passed to targets that do not declare it', async () => {
    const cache = join(scratch(), 'cache');
    const r = await build(cache, ['plain'], { SECRET_TEST_TOKEN: token });
    expect(r.code, r.stderr).toBe(0);
    expect(filesContaining(cache, token)).toEqual([]);
  });

  // Issue 14: on Modal the secret is a Modal secret attached to the declaring action's call alone;
  // the stand-in gives it from its own environment to that call's container only, and the runner
  // to that action only. The request names the variable; no file of the stand-in holds the value.
  describe('on Modal (the stand-in)', () => {
    let python: string;
    beforeAll(() => {
      python = modalPython();
    });
    const onModal = (cache: string, standin: string, args: string[], env: Record<string, string> = {}) =>
      build(cache, [...args, 'MODAL_TARGETS=download,leaky,container'], { MODAL_STANDIN_DIR: standin, BUILD_MODAL_PYTHON: python, BUILD_MODAL_BATCH_QUIET_MS: '100', ...env });
    /** A blob on the stand-in's volume, by the digest the cache entry of `target` records for `path`. */
    const remoteOutput = (cache: string, standin: string, runId: string, target: string, path: string): string => {
      const meta = JSON.parse(readFileSync(join(cache, 'runs', runId, 'meta.json'), 'utf8')) as { targets: Record<string, { outputs: Record<string, { digest: string; remote?: string }> }> };
      const out = meta.targets[target]!.outputs[path]!;
      expect(out.remote).toBe(`standin:${standin}`);
      return readFileSync(join(standin, 'volume', 'build', 'cas', out.digest.slice(0, 2), out.digest), 'utf8');
    };

    it('reaches the declaring action only; the request names it; no file of the stand-in or the cache holds it', async () => {
      const root = scratch();
      const [cache, standin] = [join(root, 'cache'), join(root, 'standin')];
      const r = await onModal(cache, standin, ['download', 'container'], { SECRET_TEST_TOKEN: token });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const runId = summary(r).runId as string;
      for (const t of ['download', 'container']) expect(r.events.find((e) => e.event === 'target' && e.target === t)).toMatchObject({ outcome: 'built', executor: 'modal' });
      // The declaring action got the value ...
      expect(remoteOutput(cache, standin, runId, 'download', 'artifacts/proof.txt').trim()).toBe(createHash('sha256').update(token).digest('hex'));
      // ... the other one's container and process did not (not even the variable).
      expect(remoteOutput(cache, standin, runId, 'container', 'artifacts/container-env.txt')).toMatch(/^PATH=/m);
      expect(remoteOutput(cache, standin, runId, 'container', 'artifacts/container-env.txt')).not.toContain('SECRET_TEST_TOKEN');
      expect(remoteOutput(cache, standin, runId, 'container', 'artifacts/action-env.txt')).not.toContain('SECRET_TEST_TOKEN');
      // One call each, the declaring one's request naming the variable, never its value.
      const calls = standinCalls(standin);
      expect(calls).toHaveLength(2);
      const requests = calls.map((c) => JSON.parse(readFileSync(join(standin, 'calls', c.id, 'request.json'), 'utf8')) as { function: string; request: RunRequest });
      expect(requests.map((q) => q.function)).toEqual(['run_cpu', 'run_cpu']);
      expect(requests.map((q) => q.request.actions[0]!.secretEnv ?? []).sort()).toEqual([[], ['SECRET_TEST_TOKEN']]);
      // The volume's log of the action is scrubbed as a local log is.
      const key = calls.find((c) => requests[calls.indexOf(c)]!.request.actions[0]!.secretEnv)!.keys[0]!;
      expect(readFileSync(join(standin, 'volume', 'build', 'logs', `${key}.log`), 'utf8')).toBe('using token ***\n');
      expect(filesContaining(standin, token)).toEqual([]);
      expect(filesContaining(cache, token)).toEqual([]);
      expect(r.stdout + r.stderr).not.toContain(token);
    }, 120_000);

    it('a failing remote action that prints it: redacted in the error, the log and the result on the volume', async () => {
      const root = scratch();
      const [cache, standin] = [join(root, 'cache'), join(root, 'standin')];
      const r = await onModal(cache, standin, ['leaky'], { SECRET_TEST_TOKEN: token });
      expect(r.code).toBe(1);
      const failed = r.events.find((e) => e.event === 'target' && e.target === 'leaky');
      expect(failed).toMatchObject({ reason: 'command-failed' });
      expect(failed?.error).toMatch(/on Modal \(call sc-[0-9a-f-]+, run_cpu\)/);
      expect(failed?.error).toMatch(/cannot log in with \*\*\*/);
      expect(filesContaining(standin, token)).toEqual([]);
      expect(filesContaining(cache, token)).toEqual([]);
      expect(r.stdout + r.stderr).not.toContain(token);
    }, 120_000);

    it('unset: the stand-in (Modal: the missing Modal secret) stops the build before any call, exit 2', async () => {
      const root = scratch();
      const [cache, standin] = [join(root, 'cache'), join(root, 'standin')];
      const r = await onModal(cache, standin, ['download']);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('error: the Modal stand-in gives the secret secret-test-token from the environment, where SECRET_TEST_TOKEN is not set; export it (it reaches the actions that declare it only), or build goals that do not need it\n');
      expect(existsSync(join(standin, 'calls'))).toBe(false);
    });
  });

  it('missing: one line naming the variable and the target, exit 2, before a run exists; a dry run does not need it', async () => {
    const cache = join(scratch(), 'cache');
    const r = await build(cache, ['leaky']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: target download needs SECRET_TEST_TOKEN in the environment, which is not set; export it (it reaches that action only and is never recorded), or build goals that do not need download\n',
    );
    expect(existsSync(join(cache, 'runs'))).toBe(false);
    const dry = await build(cache, ['leaky', '-n']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.events.filter((e) => e.event === 'plan').map((e) => e.target)).toEqual(['download', 'leaky']);
    expect(dry.events.find((e) => e.event === 'warning')?.message).toBe(
      'target download needs SECRET_TEST_TOKEN in the environment, which is not set: the build would stop before any work',
    );
  });
});
