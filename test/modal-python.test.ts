import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestFile } from '../src/caching/hash.ts';
import { modalCli } from '../src/executors/modal/cli.ts';
import { BATCH_FUNCTION, FUNCTIONS, PROTOCOL } from '../src/executors/modal/protocol.ts';
import { ModalCliTransport } from '../src/executors/modal/transport.ts';
import { cleanup, git, tempDir } from './helpers.ts';
import { APP_DIR, modalPython, py } from './modal-helpers.ts';

/**
 * The Python side against the real, pinned `modal` package from PyPI: the app module imports and
 * defines one runner per resource class; every `modal` command line the executor builds passes
 * the real CLI's click parser; the client's API exists; the runner's digests equal the
 * TypeScript ones; the runner refuses a checkout that is not at the pinned SHA.
 */
describe('modal_app against the real modal package', () => {
  let python: string;
  let dir: string;
  beforeAll(() => {
    python = modalPython();
    dir = tempDir('modal-python');
  });
  afterAll(() => cleanup(dir));

  it('the app module imports and defines the expected functions, with their GPUs', () => {
    const got = py(
      python,
      `import json, warnings
warnings.simplefilter("ignore")
import modal, runner
fns = runner.app.registered_functions
print(json.dumps({"app": runner.app.name, "functions": {n: getattr(getattr(f, "_spec_", None), "gpus", None) for n, f in fns.items()},
  "all_functions": all(isinstance(getattr(runner, n), modal.Function) for n in fns), "protocol": runner.runner_core.PROTOCOL}))`,
    ) as { app: string; functions: Record<string, string | null>; all_functions: boolean; protocol: number };
    expect(got.app).toBe('policyengine-us-data-build');
    expect(got.all_functions).toBe(true);
    expect(got.protocol).toBe(PROTOCOL);
    expect(Object.keys(got.functions).sort()).toEqual([...Object.values(FUNCTIONS), BATCH_FUNCTION].sort());
    for (const [cls, fn] of Object.entries(FUNCTIONS)) expect(got.functions[fn]).toBe(cls === 'cpu' ? null : cls);
  });

  it('every modal command line the executor builds is accepted by the real CLI parser (and a bad one is not)', () => {
    const lines = [
      modalCli.volumePut('pipeline-artifacts', '/tmp/stage/build', 'build'),
      modalCli.volumeGet('pipeline-artifacts', 'build/cas/ab/ab000000000000000000000000000000', '/tmp/x.download-1'),
      modalCli.volumeLs('pipeline-artifacts', 'build/git/shas'),
      modalCli.deploy(join(APP_DIR, 'runner.py')),
      modalCli.volumeCreate('pipeline-artifacts'),
      ['volume', 'put', '--frobnicate', 'v', 'a', 'b'],
      ['volume', 'get', 'v'],
    ];
    const verdicts = py(
      python,
      `import json, sys, click
from modal.cli.entry_point import entrypoint_cli
out = []
for argv in json.load(sys.stdin):
    cmd, args, path = entrypoint_cli, list(argv), ["modal"]
    try:
        while isinstance(cmd, click.Group):
            name, cmd, args = cmd.resolve_command(click.Context(cmd, info_name=path[-1]), args)
            path.append(name)
        cmd.make_context(" ".join(path), args)  # parses and validates, runs nothing
        out.append("ok")
    except click.exceptions.ClickException as exc:
        out.append("rejected: " + exc.format_message())
print(json.dumps(out))`,
      lines,
    ) as string[];
    expect(verdicts.slice(0, 5)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(verdicts[5]).toMatch(/rejected: No such option.*--frobnicate/);
    expect(verdicts[6]).toMatch(/rejected: Missing argument/);
  });

  it('the client finds every Modal API it uses (spawn, FunctionCall.get, exception types)', () => {
    const out = execFileSync(python, [join(APP_DIR, 'client.py'), 'selfcheck'], { encoding: 'utf8' });
    const got = JSON.parse(out) as { version: string; checked: string[] };
    // The version pinned in modal_app/requirements.txt, not a copy of it.
    const pin = /^modal==(\S+)$/m.exec(readFileSync(join(APP_DIR, 'requirements.txt'), 'utf8'))![1];
    expect(got.version).toBe(pin);
    expect(got.checked).toContain('modal.FunctionCall.from_id');
  });

  it('a missing Modal token is refused at start, before anything is dispatched', async () => {
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    const saved = { HOME: process.env.HOME, ID: process.env.MODAL_TOKEN_ID, SECRET: process.env.MODAL_TOKEN_SECRET };
    process.env.HOME = home;
    delete process.env.MODAL_TOKEN_ID;
    delete process.env.MODAL_TOKEN_SECRET;
    try {
      const transport = new ModalCliTransport({ python, appDir: APP_DIR, app: 'policyengine-us-data-build', volume: 'pipeline-artifacts' });
      await expect(transport.check(['run_t4'])).rejects.toMatchObject({ reason: 'modal-auth-missing', message: expect.stringMatching(/modal token new/) });
    } finally {
      process.env.HOME = saved.HOME;
      if (saved.ID !== undefined) process.env.MODAL_TOKEN_ID = saved.ID;
      if (saved.SECRET !== undefined) process.env.MODAL_TOKEN_SECRET = saved.SECRET;
    }
  });

  it('runner digests (xxhash xxh3_128) equal the TypeScript digests', async () => {
    const files: string[] = [];
    for (const [name, size] of [['empty', 0], ['one', 1], ['chunks', 8 * 1024 * 1024 + 3]] as const) {
      const file = join(dir, name);
      const bytes = Buffer.alloc(size);
      for (let i = 0; i < size; i++) bytes[i] = (i * 2654435761) >>> 24;
      writeFileSync(file, bytes);
      files.push(file);
    }
    const out = execFileSync(python, [join(APP_DIR, 'runner_core.py'), 'digest', ...files], { encoding: 'utf8' });
    const python_ = out.trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' '));
    const ts = await Promise.all(files.map(async (f) => `${(await digestFile(f)).digest} ${(await digestFile(f)).size}`));
    expect(python_).toEqual(ts);
  });

  it('the runner refuses a checkout that is not at the pinned SHA, and a commit it does not have', () => {
    const repo = join(dir, 'repo');
    mkdirSync(repo);
    git(repo, 'init', '-q', '-b', 'main');
    writeFileSync(join(repo, 'a.txt'), 'a\n');
    git(repo, 'add', '-A');
    git(repo, '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '-m', 'a');
    const sha = git(repo, 'rev-parse', 'HEAD');
    const root = join(dir, 'volume', 'build');
    // The volume holds a checkout for `sha` whose HEAD has moved (someone committed in it).
    mkdirSync(join(root, 'trees'), { recursive: true });
    execFileSync('git', ['clone', '-q', repo, join(root, 'trees', sha)]);
    git(join(root, 'trees', sha), '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'tampered');
    const request = (s: string) => ({ protocol: PROTOCOL, sha: s, projectDir: '.', pythonEnv: null, spawnedAt: 0, actions: [{ key: 'k1', command: ['true'], env: {}, inputs: {}, outputs: [] }] });
    const run = (s: string) =>
      py(python, `import json, sys, runner_core\nprint(json.dumps(runner_core.run_request(json.load(sys.stdin), ${JSON.stringify(root)})))`, request(s)) as {
        results: { ok: boolean; reason: string; message: string }[];
      };
    const moved = run(sha).results[0]!;
    expect(moved).toMatchObject({ ok: false, reason: 'sha-mismatch' });
    expect(moved.message).toMatch(new RegExp(`refusing to run: the checkout .* is at [0-9a-f]{40}, not the pinned ${sha}`));
    const absent = run('0'.repeat(40)).results[0]!;
    expect(absent).toMatchObject({ ok: false, reason: 'sha-missing' });
  });

  // Issue 13, item 6: one action key dispatched in two calls (a kill between spawn and the call
  // journal) ran twice. The runner claims the key on the volume; the second call returns the
  // first one's result. A claim whose holder died is broken.
  it('two calls for one action key run it once; a dead holder\'s claim is broken', async () => {
    const repo = join(dir, 'claim-repo');
    mkdirSync(repo);
    writeFileSync(join(repo, 'README'), 'x\n');
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, 'add', '-A');
    git(repo, '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '-m', 'a');
    const sha = git(repo, 'rev-parse', 'HEAD');
    git(repo, 'update-ref', 'refs/build/pinned', 'HEAD');
    const root = join(dir, 'claim-volume', 'build');
    mkdirSync(join(root, 'git', 'bundles'), { recursive: true });
    git(repo, 'bundle', 'create', '-q', join(root, 'git', 'bundles', `${sha}.bundle`), 'refs/build/pinned');
    const counter = join(dir, 'executions');
    const request = (key: string) => ({
      protocol: PROTOCOL, sha, projectDir: '.', pythonEnv: null, spawnedAt: 0,
      actions: [{ key, command: ['sh', '-c', `echo run >> ${counter}-${key}; sleep 1; echo out > {run}/o.txt`], env: { PATH: process.env.PATH! }, inputs: {}, outputs: ['o.txt'] }],
    });
    const call = (key: string) =>
      new Promise<{ ok: boolean; startedAt: number; reused?: boolean }>((resolve, reject) => {
        const child = spawn(python, ['-c', `import json, sys, runner_core\nprint(json.dumps(runner_core.run_request(json.load(sys.stdin), ${JSON.stringify(root)})))`], { cwd: APP_DIR, stdio: ['pipe', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!).results[0]) : reject(new Error(`runner exited ${code}`))));
        child.stdin.end(JSON.stringify(request(key)));
      });
    const [a, b] = await Promise.all([call('k2'), call('k2')]);
    expect(a.ok && b.ok).toBe(true);
    expect(readFileSync(`${counter}-k2`, 'utf8')).toBe('run\n');
    expect(a.startedAt).toBe(b.startedAt);
    expect([a.reused, b.reused].filter(Boolean)).toHaveLength(1);
    // A claim left by a container that died (a pid that no longer runs) does not block the key.
    const dead = spawnSync('true').pid!;
    mkdirSync(join(root, 'claims'), { recursive: true });
    writeFileSync(join(root, 'claims', 'k3'), JSON.stringify({ id: 'dead', host: hostname(), pid: dead, start: '1', at: 0 }));
    const c = await call('k3');
    expect(c).toMatchObject({ ok: true });
    expect(c.reused).toBeUndefined();
    expect(readFileSync(`${counter}-k3`, 'utf8')).toBe('run\n');
  }, 60_000);
});
