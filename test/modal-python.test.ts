import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteDigest } from '../src/caching/content-digest.ts';
import { digestFile } from '../src/caching/hash.ts';
import { modalCli } from '../src/executors/modal/cli.ts';
import { BATCH_FUNCTION, COORDINATOR_FUNCTION, FUNCTIONS, isGpuClass, PROTOCOL } from '../src/executors/modal/protocol.ts';
import { modalSecretName } from '../src/executors/modal/secrets.ts';
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
  "all_functions": all(isinstance(getattr(runner, n), modal.Function) for n in fns), "protocol": runner.runner_core.PROTOCOL, "python": runner.PYTHON_VERSION}))`,
    ) as { app: string; functions: Record<string, string | null>; all_functions: boolean; protocol: number; python: string };
    // The real repository's requires-python: >=3.12,<3.15 (its image uses 3.14).
    const [major, minor] = got.python.split('.').map(Number);
    expect(major === 3 && minor! >= 12 && minor! < 15).toBe(true);
    expect(got.app).toBe('policyengine-us-data-build');
    expect(got.all_functions).toBe(true);
    expect(got.protocol).toBe(PROTOCOL);
    expect(Object.keys(got.functions).sort()).toEqual([...Object.values(FUNCTIONS), BATCH_FUNCTION, COORDINATOR_FUNCTION].sort());
    for (const [cls, fn] of Object.entries(FUNCTIONS)) expect(got.functions[fn]).toBe(isGpuClass(cls) ? cls : null);
  });

  // Issue 14: the data build runs on Modal with the real data build's resources (data_build.py
  // `build_datasets`: cpu=8.0, memory=32768, nonpreemptible=True), and no function has a secret
  // attached: a call gets the Modal secret its actions declare, on a variant of the function.
  it('run_data has the real data build\'s resources; secrets are attached per call, only when named', () => {
    const got = py(
      python,
      `import json, warnings
warnings.simplefilter("ignore")
import runner, client
from modal._utils.async_utils import synchronizer
specs = {n: f._spec_ for n, f in runner.app.registered_functions.items()}
data = specs["run_data"]
def secrets(call):
    fn = synchronizer._translate_in(client._function("policyengine-us-data-build", call))
    options = getattr(fn, "_options", None)
    return [repr(s) for s in options.secrets] if options else []
print(json.dumps({"cpu": data.cpu, "memory": data.memory, "nonpreemptible": bool(data.scheduler_placement and data.scheduler_placement.nonpreemptible),
  "attached": {n: len(s.secrets) for n, s in specs.items()},
  "with": secrets({"function": "run_data", "secrets": ["huggingface-token"]}), "without": secrets({"function": "run_data"})}))`,
    ) as { cpu: number; memory: number; nonpreemptible: boolean; attached: Record<string, number>; with: string[]; without: string[] };
    expect(FUNCTIONS.data).toBe('run_data');
    expect(got).toMatchObject({ cpu: 8, memory: 32 * 1024, nonpreemptible: true });
    expect(Object.values(got.attached).every((n) => n === 0)).toBe(true);
    expect(got.with).toEqual(["modal.Secret.from_name('huggingface-token')"]);
    expect(got.without).toEqual([]);
    expect(modalSecretName('HUGGING_FACE_TOKEN')).toBe('huggingface-token');
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
    expect(got.checked).toEqual(expect.arrayContaining(['modal.Function.with_options', 'modal.Secret.from_name']));
    expect(got.checked).toContain('modal.FunctionCall.cancel');
  });

  it('the coordinator function: 2 CPU / 4 GiB, non-preemptible, 24 h (Modal\'s maximum) retried, an image with Node 20 and the pinned client', () => {
    const got = py(
      python,
      `import ast, json, warnings
warnings.simplefilter("ignore")
import modal, runner
f = runner.app.registered_functions[${JSON.stringify(COORDINATOR_FUNCTION)}]
spec = f._spec_
tree = ast.parse(open("runner.py").read())
kw = {}
for node in tree.body:
    if isinstance(node, ast.FunctionDef) and node.name == ${JSON.stringify(COORDINATOR_FUNCTION)}:
        for d in node.decorator_list:
            if isinstance(d, ast.Call):
                kw = {k.arg: ast.unparse(k.value) for k in d.keywords}
print(json.dumps({"cpu": spec.cpu, "memory": spec.memory, "gpus": spec.gpus, "nonpreemptible": "nonpreemptible: true" in str(spec.scheduler_placement),
  "volumes": sorted(spec.volumes), "timeout": eval(kw["timeout"], vars(runner)), "retries": runner._COORDINATOR_RETRIES.max_retries,
  "isImage": isinstance(runner.coordinator_image, modal.Image) and spec.image is not runner.app.registered_functions["run_cpu"]._spec_.image, "node": runner.NODE_VERSION, "pin": runner._MODAL_PIN}))`,
    ) as { cpu: number; memory: number; gpus: unknown; nonpreemptible: boolean; volumes: string[]; timeout: number; retries: number; isImage: boolean; node: string; pin: string };
    expect(got).toMatchObject({ cpu: 2, memory: 4096, nonpreemptible: true, volumes: ['/vol'], timeout: 24 * 3600, isImage: true });
    expect(got.retries).toBeGreaterThanOrEqual(1); // 24 h per attempt; a retry resumes the run
    expect(got.node.split('.')[0]).toBe('20');
    expect(got.pin).toBe(/^modal==\S+$/m.exec(readFileSync(join(APP_DIR, 'requirements.txt'), 'utf8'))![0]);
  });

  it('the coordinator refuses a build system whose bytes are not its digest, and marks the run failed', () => {
    const root = join(dir, 'coord-volume', 'build');
    const digest = 'a'.repeat(32);
    mkdirSync(join(root, 'buildsys', digest), { recursive: true });
    writeFileSync(join(root, 'buildsys', digest, 'MANIFEST'), 'not the manifest of a\n');
    mkdirSync(join(root, 'state', 'runs', 'r1'), { recursive: true });
    writeFileSync(join(root, 'state', 'runs', 'r1', 'meta.json'), JSON.stringify({ runId: 'r1', status: 'running' }));
    const request = { protocol: PROTOCOL, kind: 'coordinator', runId: 'r1', sha: '0'.repeat(40), dirty: false, buildsys: digest, args: [], env: {}, spawnedAt: 0 };
    const got = py(python, `import json, sys, coordinator_core\nprint(json.dumps(coordinator_core.run_coordinator(json.load(sys.stdin), ${JSON.stringify(root)}, node="node")))`, request) as { ok: boolean; reason: string; message: string };
    expect(got).toMatchObject({ ok: false, reason: 'buildsys-mismatch' });
    expect(got.message).toMatch(/MANIFEST of build system a{32} hashes to [0-9a-f]{32}/);
    expect(JSON.parse(readFileSync(join(root, 'state', 'runs', 'r1', 'meta.json'), 'utf8'))).toMatchObject({ status: 'failed', error: expect.stringMatching(/coordinator refused/) });
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

  // Issue 14: the ETL steps run on Modal; their databases' content digests (early cutoff) are
  // computed there and must equal the local ones, or the executor would change downstream keys.
  it('the runner\'s SQLite content digest equals the TypeScript one (and refuses a non-database)', async () => {
    const db = join(dir, 'content.db');
    py(python, `import sqlite3, json\nc = sqlite3.connect(${JSON.stringify(db)})\nc.execute("create table t (x)")\nc.executemany("insert into t values (?)", [(i,) for i in range(5000)])\nc.commit()\nprint(json.dumps(1))`);
    const got = py(python, `import json, runner_core\nprint(json.dumps(runner_core.sqlite_content_digest(${JSON.stringify(db)})))`) as string;
    const ts = await sqliteDigest(db);
    expect(ts.ok && ts.digest).toBe(got);
    // The counters are not content: another write count, the same digest on both sides.
    const bumped = readFileSync(db);
    bumped.writeUInt32BE(bumped.readUInt32BE(24) + 7, 24);
    writeFileSync(db, bumped);
    expect(py(python, `import json, runner_core\nprint(json.dumps(runner_core.sqlite_content_digest(${JSON.stringify(db)})))`)).toBe(got);
    expect(() => py(python, `import runner_core\nrunner_core.sqlite_content_digest(${JSON.stringify(join(APP_DIR, 'runner.py'))})`)).toThrow(/not one/);
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

  /** A one-commit repository and a volume root (`<mount>/build`) holding its bundle, as the orchestrator uploads it. */
  function volumeWithCommit(name: string): { sha: string; mount: string } {
    const repo = join(dir, `${name}-repo`);
    mkdirSync(repo);
    git(repo, 'init', '-q', '-b', 'main');
    writeFileSync(join(repo, 'a.txt'), 'a\n');
    git(repo, 'add', '-A');
    git(repo, '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '-m', 'a');
    const sha = git(repo, 'rev-parse', 'HEAD');
    git(repo, 'update-ref', 'refs/build/pinned', sha);
    const mount = join(dir, `${name}-mount`);
    mkdirSync(join(mount, 'build', 'git', 'bundles'), { recursive: true });
    git(repo, 'bundle', 'create', '-q', join(mount, 'build', 'git', 'bundles', `${sha}.bundle`), 'refs/build/pinned');
    return { sha, mount };
  }

  it('a batch of actions runs as one process, each with its own result; a failed batch runs them one by one', () => {
    const { sha, mount } = volumeWithCommit('batch');
    const root = join(mount, 'build');
    // Each action's own command writes its output with its process id; the batch command writes all three.
    // Keys per attempt: a key that has a stored result is never run again (run_once).
    const run = (batchCommand: string, attempt: string) => {
      const key = (k: string) => `key-${attempt}-${k}`;
      const actions = ['a', 'b', 'c'].map((k) => ({ key: key(k), command: ['sh', '-c', `echo $$ > {run}/out-${k}.txt`], env: {}, inputs: {}, outputs: [`out-${k}.txt`] }));
      return (py(python, `import json, sys, runner_core\nprint(json.dumps(runner_core.run_request(json.load(sys.stdin), ${JSON.stringify(root)})))`, {
        protocol: PROTOCOL, sha, projectDir: '.', pythonEnv: null, spawnedAt: 0, actions,
        batches: [{ command: ['sh', '-c', batchCommand], keys: [key('a'), key('c')] }],
      }) as { results: { key: string; ok: boolean; outputs: Record<string, { digest: string }> }[] }).results;
    };
    const digest = (r: { outputs: Record<string, { digest: string }> }) => Object.values(r.outputs)[0]!.digest;

    const batched = run('for k in a c; do echo $$ > {run}/out-$k.txt; done', '1');
    expect(batched.map((r) => [r.key, r.ok])).toEqual([['key-1-a', true], ['key-1-b', true], ['key-1-c', true]]);
    expect(digest(batched[0]!)).toBe(digest(batched[2]!)); // a and c: one process
    expect(digest(batched[1]!)).not.toBe(digest(batched[0]!)); // b, in no batch: its own
    expect(readFileSync(join(root, 'logs', 'key-1-a.log'), 'utf8')).toBe(readFileSync(join(root, 'logs', 'batch-key-1-a.log'), 'utf8'));

    const retried = run('exit 3', '2');
    expect(retried.map((r) => [r.key, r.ok])).toEqual([['key-2-a', true], ['key-2-b', true], ['key-2-c', true]]);
    expect(new Set(retried.map(digest)).size).toBe(3); // three processes: the batch failed, each ran alone
    expect(readFileSync(join(root, 'logs', 'batch-key-2-a.log'), 'utf8')).toMatch(/batch of 2 exited with 3; running its actions one by one/);
  });

  // A batch dispatched twice (the duplicate dispatch run_once guards against) runs its command once;
  // a batch with a member already run does not run as a batch (its command covers every item).
  it('a batch dispatched twice runs once; a batch with a finished member runs the others alone', async () => {
    const { sha, mount } = volumeWithCommit('batch-claims');
    const root = join(mount, 'build');
    const runs = join(dir, 'batch-claims-runs.txt');
    const action = (k: string) => ({ key: `bc-${k}`, command: ['sh', '-c', `echo alone-${k} >> ${runs}; echo $$ > {run}/out-${k}.txt`], env: { PATH: process.env.PATH! }, inputs: {}, outputs: [`out-${k}.txt`] });
    const request = (ks: string[]) => ({
      protocol: PROTOCOL, sha, projectDir: '.', pythonEnv: null, spawnedAt: 0, actions: ks.map(action),
      batches: [{ command: ['sh', '-c', `echo batch >> ${runs}; sleep 1; for k in ${ks.join(' ')}; do echo $$ > {run}/out-$k.txt; done`], keys: ks.map((k) => `bc-${k}`) }],
    });
    const call = (ks: string[]) =>
      new Promise<{ key: string; ok: boolean; reused?: boolean }[]>((resolve, reject) => {
        const child = spawn(python, ['-c', `import json, sys, runner_core\nprint(json.dumps(runner_core.run_request(json.load(sys.stdin), ${JSON.stringify(root)})))`], { cwd: APP_DIR, stdio: ['pipe', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!).results) : reject(new Error(`runner exited ${code}`))));
        child.stdin.end(JSON.stringify(request(ks)));
      });
    const [first, second] = await Promise.all([call(['a', 'b']), call(['a', 'b'])]);
    expect([...first, ...second].every((r) => r.ok)).toBe(true);
    expect(readFileSync(runs, 'utf8')).toBe('batch\n');
    expect([first, second].filter((rs) => rs.every((r) => r.reused))).toHaveLength(1);
    const mixed = await call(['a', 'c', 'd']);
    expect(mixed.map((r) => [r.key, r.ok, r.reused ?? false])).toEqual([['bc-a', true, true], ['bc-c', true, false], ['bc-d', true, false]]);
    expect(readFileSync(runs, 'utf8')).toBe('batch\nalone-c\nalone-d\n');
  }, 60_000);

  it('the area function is non-preemptible, as the real build_areas_worker', () => {
    const got = py(python, `import ast, json
tree = ast.parse(open("runner.py").read())
out = {}
for f in tree.body:
    if isinstance(f, ast.FunctionDef):
        for d in f.decorator_list:
            if isinstance(d, ast.Call):
                out[f.name] = any(k.arg == "nonpreemptible" and getattr(k.value, "value", None) is True for k in d.keywords)
print(json.dumps(out))`) as Record<string, boolean>;
    expect(got[BATCH_FUNCTION]).toBe(true);
    expect(got[FUNCTIONS.cpu!]).toBe(true);
  });

  it('an environment is built once by concurrent containers, and works from another mount point', async () => {
    const { sha, mount: first } = volumeWithCommit('env');
    const builds = join(dir, 'env-builds.txt');
    // The environment target's command: counts its runs, sleeps so the containers overlap, makes a venv.
    const pythonEnv = { key: 'e'.repeat(32), command: ['sh', '-c', `echo built >> ${builds}; sleep 2; python3 -m venv {out}`] };
    const request = (key: string) => ({
      protocol: PROTOCOL,
      sha,
      projectDir: '.',
      pythonEnv,
      spawnedAt: 0,
      actions: [{ key, command: ['{python}', '-c', 'import sys; open("{run}/prefix.txt", "w").write(sys.prefix)'], env: {}, inputs: {}, outputs: ['prefix.txt'] }],
    });
    const code = (root: string) => `import json, sys, runner_core\nprint(json.dumps(runner_core.run_request(json.load(sys.stdin), ${JSON.stringify(root)})))`;
    const container = (root: string, key: string) =>
      new Promise<{ results: { ok: boolean; message?: string; outputs: Record<string, { digest: string }> }[] }>((resolve, reject) => {
        const child = spawn(python, ['-c', code(root)], { cwd: APP_DIR, env: { ...process.env, PYTHONWARNINGS: 'ignore' } });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('close', () => resolve(JSON.parse(out.trim().split('\n').pop()!) as never));
        child.stdin.end(JSON.stringify(request(key)));
      });
    const three = await Promise.all(['k1', 'k2', 'k3'].map((k) => container(join(first, 'build'), k)));
    for (const r of three) expect(r.results[0], r.results[0]!.message).toMatchObject({ ok: true });
    expect(readFileSync(builds, 'utf8')).toBe('built\n');
    // The same volume mounted elsewhere (another container, another path): the env runs from there, unbuilt.
    const second = join(dir, 'env-mount-moved');
    renameSync(first, second);
    const moved = await container(join(second, 'build'), 'k4');
    expect(moved.results[0], moved.results[0]!.message).toMatchObject({ ok: true });
    expect(readFileSync(builds, 'utf8')).toBe('built\n');
    const digest = moved.results[0]!.outputs['prefix.txt']!.digest;
    const prefix = readFileSync(join(second, 'build', 'cas', digest.slice(0, 2), digest), 'utf8');
    expect(prefix).toBe(join(second, 'build', 'envs', pythonEnv.key));
    // An environment an older image built (its python links to an interpreter this image lacks) is rebuilt.
    const link = join(second, 'build', 'envs', pythonEnv.key, 'bin', 'python');
    rmSync(link);
    symlinkSync('/usr/local/bin/python3.9-not-in-this-image', link);
    const rebuilt = await container(join(second, 'build'), 'k5');
    expect(rebuilt.results[0], rebuilt.results[0]!.message).toMatchObject({ ok: true });
    expect(readFileSync(builds, 'utf8')).toBe('built\nbuilt\n');
  });

  it('an environment whose interpreter is not the image\'s is refused, naming both', () => {
    const env = join(dir, 'foreign-env', 'bin');
    mkdirSync(env, { recursive: true });
    symlinkSync('/bin/sh', join(env, 'python'));
    const got = py(python, `import json, runner_core\ntry:\n  runner_core.check_relocatable(${JSON.stringify(join(env, 'python'))})\n  print(json.dumps(None))\nexcept runner_core.Refused as e:\n  print(json.dumps([e.reason, str(e)]))`) as [string, string];
    expect(got[0]).toBe('env-failed');
    expect(got[1]).toMatch(/not to the image's interpreter .*: it would only work in the container that built it/);
  });
});
