import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutputRecord } from '../src/caching/cache.ts';
import type { ActionSpec, ExecOutcome, PortableAction } from '../src/executors/executor.ts';
import { ModalExecutor } from '../src/executors/modal/modal.ts';
import { StandinTransport } from '../src/executors/modal/standin.ts';
import type { ActionKey } from '../src/fingerprint.ts';
import { digestBytes } from '../src/caching/hash.ts';
import { cleanup, git, tempDir } from './helpers.ts';
import { APP_DIR, modalPython, standinCalls, transfers } from './modal-helpers.ts';

/**
 * The Modal executor on its own, against the stand-in (the very same runner code in detached
 * local processes), with a tiny repository and shell commands so that each case takes about a
 * second: remote outputs, failures with the remote log tail, preemption, reattaching after the
 * orchestrator went away, uploads of missing blobs only, and downloads for local use.
 */
describe('modal executor (stand-in)', () => {
  let dir: string;
  let repo: string;
  let sha: string;
  let cacheDir: string;
  let standin: string;
  let python: string;
  let n = 0;

  beforeAll(() => {
    python = modalPython();
    dir = tempDir('modal-exec');
    repo = join(dir, 'repo');
    mkdirSync(repo);
    git(repo, 'init', '-q', '-b', 'main');
    writeFileSync(join(repo, 'hello.sh'), 'echo "hello from the pinned tree"\n');
    git(repo, 'add', '-A');
    git(repo, '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '-m', 'tiny');
    sha = git(repo, 'rev-parse', 'HEAD');
    cacheDir = join(dir, 'cache');
    standin = join(dir, 'standin');
  });
  afterAll(() => cleanup(dir));

  const blobPath = (d: string) => join(cacheDir, 'cas', d.slice(0, 2), d);
  const transport = () => new StandinTransport({ dir: standin, python, appDir: APP_DIR, volume: 'pipeline-artifacts' });
  const executor = () => new ModalExecutor({ transport: transport(), cacheDir, repo, sha, projectDir: '.', blobPath, pollSeconds: 1, batchQuietMs: 50 });

  /** A local blob in the cache, as an upstream output would be. */
  function localBlob(content: string): OutputRecord {
    const d = digestBytes(content);
    mkdirSync(join(cacheDir, 'cas', d.slice(0, 2)), { recursive: true });
    writeFileSync(blobPath(d), content);
    return { digest: d, size: Buffer.byteLength(content) };
  }

  function spec(portable: Partial<PortableAction> & { command: string[] }, extra: Partial<ActionSpec> = {}): ActionSpec & { reports: Record<string, unknown>[] } {
    const key = digestBytes(`key-${n++}-${Date.now()}`) as string as ActionKey;
    const reports: Record<string, unknown>[] = [];
    mkdirSync(join(dir, 'logs'), { recursive: true });
    return {
      key,
      target: `t${n}`,
      argv: [],
      cwd: dir,
      env: { PYTHONHASHSEED: '0', PATH: '/should/not/ship' },
      outputs: [],
      logFile: join(dir, 'logs', `${key}.log`),
      resourceClass: 'cpu',
      signal: new AbortController().signal,
      report: (r) => reports.push(r),
      vars: { NUM_WORKERS: '2' },
      portable: { inputs: {}, outputs: [], ...portable },
      reports,
      ...extra,
    };
  }

  const ok = (o: ExecOutcome) => {
    if (!o.ok) throw new Error(`${o.failure.reason}: ${o.failure.message}\n${o.failure.logTail}`);
    return o;
  };

  it('runs at the pinned SHA with inputs from the volume; outputs stay remote; call id reported at spawn', async () => {
    const input = localBlob('2 3 5 7\n');
    const s = spec({
      command: ['sh', '-c', 'mkdir -p {run}/out && sh hello.sh > {run}/out/hello.txt && tr " " "+" < {run}/in/primes.txt > {run}/out/sum.txt && echo "PATH=$PATH" >&2'],
      inputs: { 'in/primes.txt': input },
      outputs: ['out/hello.txt', 'out/sum.txt'],
    });
    const o = ok(await executor().execute(s));
    expect(o.remoteOutputs!['out/sum.txt']).toEqual({ digest: digestBytes('2+3+5+7\n'), size: 8, remote: `standin:${standin}` });
    expect(o.remoteOutputs!['out/hello.txt']!.digest).toBe(digestBytes('hello from the pinned tree\n'));
    expect(s.reports[0]).toMatchObject({ callId: expect.stringMatching(/^sc-/), function: 'run_cpu', resourceClass: 'cpu' });
    expect(o.remote).toMatchObject({ callId: s.reports[0]!.callId, gpuSeconds: 0, batchSize: 1 });
    expect((o.remote!.uploadedBytes as number) > 8).toBe(true); // the input blob and the bundle
    expect(readFileSync(s.logFile, 'utf8')).not.toContain('/should/not/ship');
    // The bytes are on the volume, not in the local cache.
    expect(existsSync(blobPath(digestBytes('2+3+5+7\n')))).toBe(false);
  });

  it('a second action with the same input uploads nothing', async () => {
    const before = transfers(standin).filter((t) => t.op === 'put').length;
    const s = spec({ command: ['sh', '-c', 'mkdir -p {run}/o && cp {run}/in/primes.txt {run}/o/copy'], inputs: { 'in/primes.txt': localBlob('2 3 5 7\n') }, outputs: ['o/copy'] });
    const o = ok(await new ModalExecutor({ transport: transport(), cacheDir: join(dir, 'other-cache'), repo, sha, projectDir: '.', blobPath, pollSeconds: 1 }).execute(s));
    expect(o.remote!.uploadedBytes).toBe(0);
    expect(transfers(standin).filter((t) => t.op === 'put').length).toBe(before);
  });

  it('a failing command is a command-failed failure with the exit code and the remote log tail', async () => {
    const o = await executor().execute(spec({ command: ['sh', '-c', 'echo "boom: the remote side broke" >&2; exit 3'], outputs: ['x'] }));
    expect(o.ok).toBe(false);
    if (o.ok) return;
    expect(o.failure).toMatchObject({ reason: 'command-failed', exitCode: 3 });
    expect(o.failure.logTail).toContain('boom: the remote side broke');
    expect(o.failure.message).toMatch(/command exited with 3 on Modal \(call sc-.*, run_cpu\); full log: standin:.* build\/logs\/[0-9a-f]+\.log/);
  });

  it('a command that does not write its output is a missing-output failure', async () => {
    const o = await executor().execute(spec({ command: ['true'], outputs: ['never/written'] }));
    expect(o.ok ? null : o.failure.reason).toBe('missing-output');
  });

  it('a lost container (the stand-in preempted) is a remote-preempted failure', async () => {
    const s = spec({ command: ['sleep', '60'], outputs: ['x'] });
    const running = executor().execute(s);
    const callId = await until(() => s.reports[0]?.callId as string | undefined);
    const pidFile = join(standin, 'calls', callId, 'pid');
    await until(() => existsSync(pidFile) || undefined);
    process.kill(-Number(readFileSync(pidFile, 'utf8')), 'SIGKILL'); // the whole container (process group)
    const o = await running;
    expect(o.ok ? null : o.failure.reason).toBe('remote-preempted');
  });

  it('an orchestrator that goes away leaves the call running; the next one reattaches instead of dispatching', async () => {
    const s1Abort = new AbortController();
    const portable = { command: ['sh', '-c', 'sleep 2; mkdir -p {run}/o; echo done > {run}/o/done'], outputs: ['o/done'] };
    const s1 = spec(portable, { signal: s1Abort.signal });
    const first = executor().execute(s1);
    const callId = await until(() => s1.reports[0]?.callId as string | undefined);
    s1Abort.abort();
    const o1 = await first;
    expect(o1.ok ? null : o1.failure).toMatchObject({ reason: 'cancelled', message: expect.stringMatching(/keeps running and a rerun reattaches/) });
    const calls = standinCalls(standin).length;
    const s2 = { ...s1, signal: new AbortController().signal, reports: [] as Record<string, unknown>[] };
    s2.report = (r) => s2.reports.push(r);
    const o2 = ok(await executor().execute(s2));
    expect(o2.remote).toMatchObject({ callId, reattached: true });
    expect(s2.reports).toEqual([]);
    expect(standinCalls(standin).length).toBe(calls);
    expect(o2.remoteOutputs!['o/done']!.digest).toBe(digestBytes('done\n'));
  });

  it('a blob the volume lost is reported as input-missing and uploaded again by the next attempt', async () => {
    const input = localBlob('lost and found\n');
    const make = () => spec({ command: ['sh', '-c', 'mkdir -p {run}/o && cp {run}/in/f {run}/o/f'], inputs: { 'in/f': input }, outputs: ['o/f'] });
    ok(await executor().execute(make()));
    rmSync(join(standin, 'volume', 'build', 'cas', input.digest.slice(0, 2), input.digest));
    const lost = await executor().execute(make());
    expect(lost.ok ? null : lost.failure.reason).toBe('input-missing');
    const again = ok(await executor().execute(make()));
    expect(again.remote!.uploadedBytes).toBe(input.size);
  });

  it('weighted actions arriving together go out as at most NUM_WORKERS LPT batches', async () => {
    const before = new Set(standinCalls(standin).map((c) => c.id));
    const specs = [5, 5, 2, 2].map((weight, i) =>
      spec({ command: ['sh', '-c', `mkdir -p {run}/h && echo ${i} > {run}/h/${i}`], outputs: [`h/${i}`], weight }, { target: `h5:${'ABCD'[i]}` }),
    );
    const ex = executor();
    const outcomes = await Promise.all(specs.map((s) => ex.execute(s)));
    outcomes.forEach(ok);
    const calls = standinCalls(standin).filter((c) => !before.has(c.id));
    expect(calls.map((c) => c.function)).toEqual(['run_areas', 'run_areas']);
    const byKey = (i: number) => specs[i]!.key;
    expect(calls.map((c) => c.keys).sort()).toEqual([[byKey(0), byKey(2)], [byKey(1), byKey(3)]].sort());
  });

  it('materialise brings a remote output into the local store, verified', async () => {
    const s = spec({ command: ['sh', '-c', 'mkdir -p {run}/o && echo fetched > {run}/o/f'], outputs: ['o/f'] });
    const ex = executor();
    const record = ok(await ex.execute(s)).remoteOutputs!['o/f']!;
    expect(await ex.materialise([record])).toBeNull();
    expect(readFileSync(blobPath(record.digest), 'utf8')).toBe('fetched\n');
    expect(await ex.materialise([{ ...record, remote: 'modal:elsewhere' }])).toMatchObject({ reason: 'remote-elsewhere' });
  });

  it('an unknown resource class fails without dispatching', async () => {
    const before = standinCalls(standin).length;
    const o = await executor().execute(spec({ command: ['true'] }, { resourceClass: 'K80' }));
    expect(o.ok ? null : o.failure.reason).toBe('unknown-resource-class');
    expect(standinCalls(standin).length).toBe(before);
  });

  it('keeps every call in its own directory with the request it was given', () => {
    for (const id of readdirSync(join(standin, 'calls'))) expect(existsSync(join(standin, 'calls', id, 'request.json'))).toBe(true);
  });
});

async function until<T>(probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
