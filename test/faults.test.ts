import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPublishStores, publishConfig } from '../src/publish/config.ts';
import { digestBytes } from '../src/caching/hash.ts';
import { LOCK_PATH, stagingPrefix } from '../src/publish/layout.ts';
import { acquireLease } from '../src/publish/lease.ts';
import { hostname } from 'node:os';
import { processStartTime } from '../src/util/process-identity.ts';
import { CLI, cleanup, cli, cliEnv, exampleRepo, outcomes, parseEvents, ROOT, scratchDirs, SMALL, summary, waitFor, type CliResult } from './helpers.ts';
import { stage, syntheticRun } from './publish-helpers.ts';

/**
 * Reproductions of the fault-injection battery of issue 13 ("Reliability under faults"), each
 * through real processes: kills of a whole process group at a chosen moment, zombies, and files
 * damaged on disk. Kills and waits are bounded; nothing here asserts a duration.
 */
const scratch = scratchDirs('faults');
const started: ChildProcess[] = [];
afterAll(() => {
  for (const child of started) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** The CLI in a process group of its own, so the test can kill the whole group as a terminal would. */
function startGroup(args: string[], cache: string, env: Record<string, string> = {}): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: cliEnv(cache, env), detached: true });
  started.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return Object.assign(child, { output: () => out });
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(child.exitCode) : child.on('exit', (code) => resolve(code))));

/** A zombie: `sleep 0` exits at once, and its parent, exec'd into `sleep 60`, never reaps it. */
async function zombie(): Promise<number> {
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  started.push(parent);
  let out = '';
  parent.stdout!.on('data', (d) => (out += d));
  const pid = Number(await waitFor('the zombie pid', () => out.trim() || false));
  await waitFor('the zombie state', () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z'));
  return pid;
}

describe('issue 13, item 3: promote right after a kill', () => {
  /** A self-signed certificate, so NODE_EXTRA_CA_CERTS names a real PEM file. */
  const certificate = (): string => {
    const dir = scratch();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    return join(dir, 'cert.pem');
  };

  it('a publish lease held by a zombie is broken', async () => {
    const cache = join(scratch(), 'cache');
    const stores = await openPublishStores(publishConfig({ STORE_DIR: join(scratch(), 'store') }, {}, cache), { action: 'test', write: true });
    const pid = await zombie();
    const at = new Date();
    const doc = { state: 'held', owner: `${hostname()}:${pid}:x`, action: 'promote of a killed run', host: hostname(), pid, at: at.toISOString(), expires_at: new Date(at.getTime() + 3600_000).toISOString() };
    const written = await stores.registryHome.writeIfVersion(LOCK_PATH, new TextEncoder().encode(JSON.stringify(doc)), null, { message: 'planted' });
    expect(written.ok).toBe(true);
    const lease = await acquireLease(stores.registryHome, { action: 'test' });
    expect(lease.ok, lease.ok ? '' : lease.failure.message).toBe(true);
  });

  it('with NODE_EXTRA_CA_CERTS set, promote killed (kill -9 of its process group) while it holds the lease, then rerun at once, succeeds', async () => {
    const cache = join(scratch(), 'cache');
    const store = join(scratch(), 'store');
    const stores = await openPublishStores(publishConfig({ STORE_DIR: store }, {}, cache), { action: 'test', write: true });
    // As scripts/launch.sh hands it over: moved aside, for the commands that open TLS connections.
    const env = { BUILD_EXTRA_CA_CERTS: certificate(), NODE_EXTRA_CA_CERTS: '' };
    const kills = 2;
    for (let trial = 0; trial < kills; trial++) {
      const run = await syntheticRun(cache, { version: `13.0.${trial}`, at: new Date(Date.now() - (10 - trial) * 60_000) });
      await stage(cache, run, stores);
      const args = ['promote', `RUN_ID=${run.runId}`, `STORE_DIR=${store}`, '--yes'];
      const child = startGroup(args, cache, env);
      const lease = join(store, LOCK_PATH);
      await waitFor('promote to hold the lease', () => child.exitCode === null && existsSync(lease) && readFileSync(lease, 'utf8').includes('"held"'), 60_000);
      // The lease names the process started: no re-executed child holds it.
      expect(JSON.parse(readFileSync(lease, 'utf8')).pid).toBe(child.pid);
      // The lease names the process started: no re-executed child holds it.
      expect(JSON.parse(readFileSync(lease, 'utf8')).pid).toBe(child.pid);
      process.kill(-child.pid!, 'SIGKILL');
      await exited(child);
      const rerun = await cli(args, { cache, env });
      expect(rerun.code, `${rerun.stdout}\n${rerun.stderr}`).toBe(0);
    }
  }, 240_000);

  it('the certificates are loaded in-process: fetch and https trust a server signed by them, and only then', async () => {
    const cert = certificate();
    const dir = join(cert, '..');
    const script = join(dir, 'client.mjs');
    writeFileSync(
      script,
      `import https from 'node:https';
import { readFileSync } from 'node:fs';
import { loadExtraCaCerts } from ${JSON.stringify(join(ROOT, 'src', 'cli', 'network.ts'))};
const server = https.createServer({ key: readFileSync(${JSON.stringify(join(dir, 'key.pem'))}), cert: readFileSync(${JSON.stringify(cert)}) }, (q, r) => r.end('ok'));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = 'https://localhost:' + server.address().port + '/';
const viaFetch = () => fetch(url).then((r) => r.text(), (e) => 'refused');
const viaHttps = () => new Promise((res) => https.get(url, { agent: new https.Agent() }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => res(b)); }).on('error', () => res('refused')));
const before = [await viaFetch(), await viaHttps()];
loadExtraCaCerts({ caCerts: { stashed: process.env.BUILD_EXTRA_CA_CERTS, active: Boolean(process.env.NODE_EXTRA_CA_CERTS) } });
const after = [await viaFetch(), await viaHttps()];
server.close();
process.stdout.write(JSON.stringify({ before, after }));
`,
    );
    const out = execFileSync(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, BUILD_EXTRA_CA_CERTS: cert, NODE_EXTRA_CA_CERTS: '' }, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ before: ['refused', 'refused'], after: ['ok', 'ok'] });
  });

  it('a certificate file that cannot be read is one clear line and exit 2', async () => {
    const r = await cli(['promote', 'RUN_ID=1.0.0_abcdef01_20260101_000000', `STORE_DIR=${scratch()}`, '--yes'], { cache: join(scratch(), 'cache'), env: { BUILD_EXTRA_CA_CERTS: '/nonexistent/ca.pem', NODE_EXTRA_CA_CERTS: '' } });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^error: NODE_EXTRA_CA_CERTS names \/nonexistent\/ca.pem, which cannot be read \(ENOENT\); fix the path or unset it$/);
  });
});

/** Flips one byte of a file in place, keeping its size and its access and modification times (`touch -r`). */
function flipByte(file: string): void {
  const before = statSync(file);
  const reference = `${file}.times`;
  execFileSync('touch', ['-r', file, reference]);
  chmodSync(file, 0o644);
  const bytes = readFileSync(file);
  bytes[bytes.length >> 1]! ^= 0xff;
  writeFileSync(file, bytes);
  execFileSync('touch', ['-r', reference, file]);
  rmSync(reference);
  expect(statSync(file)).toMatchObject({ size: before.size, mtimeMs: before.mtimeMs });
}

describe('issue 13, item 4: bytes that changed on disk never reach the stores', () => {
  it('staging refuses a run file whose bytes differ from what the build recorded, naming the file and both digests', async () => {
    const cache = join(scratch(), 'cache');
    const store = join(scratch(), 'store');
    const run = await syntheticRun(cache, { version: '13.4.0' });
    const weights = join(run.dir, 'artifacts', 'calibration_weights.npy');
    const recorded = digestBytes(readFileSync(weights));
    flipByte(weights);
    const r = await cli(['stage', `RUN_ID=${run.runId}`, `STORE_DIR=${store}`, '--json'], { cache });
    expect(r.code).not.toBe(0);
    const error = [...r.stdout.split('\n'), ...r.stderr.split('\n')].join('\n');
    expect(error).toContain('output-digest-mismatch');
    expect(error).toContain(weights);
    expect(error).toContain(`recorded ${recorded}`);
    expect(error).toContain(`XXH3-128 ${digestBytes(readFileSync(weights))}`);
    // Nothing of the run reached the store's staging area.
    expect(existsSync(join(store, stagingPrefix(run.runId)))).toBe(false);
  });

  it('promote (and promote -n) refuse a staged run whose local file changed since the build recorded it', async () => {
    const cache = join(scratch(), 'cache');
    const store = join(scratch(), 'store');
    const stores = await openPublishStores(publishConfig({ STORE_DIR: store }, {}, cache), { action: 'test', write: true });
    const run = await syntheticRun(cache, { version: '13.4.1' });
    await stage(cache, run, stores);
    flipByte(join(run.dir, 'h5s', 'states', 'S000.h5'));
    for (const flags of [['-n'], ['--yes']]) {
      const r = await cli(['promote', `RUN_ID=${run.runId}`, `STORE_DIR=${store}`, ...flags], { cache });
      expect(r.code, r.stdout).not.toBe(0);
      expect(`${r.stdout}${r.stderr}`).toMatch(/output-digest-mismatch.*states\/S000\.h5 changed on disk since the build recorded it \(XXH3-128 [0-9a-f]{32}, recorded [0-9a-f]{32}; sha256 now [0-9a-f]{64}\)/);
    }
    expect(existsSync(join(store, 'states', 'S000.h5'))).toBe(false);
  });
});

describe('issue 13, item 5: non-regular files in cas/', () => {
  let repo: string;
  beforeAll(() => {
    repo = exampleRepo();
  });
  afterAll(() => cleanup(repo));

  /** The CLI, killed if it runs past a generous bound (a hang fails the test instead of stalling it). */
  const bounded = async (args: string[], cache: string): Promise<CliResult> => {
    const child = startGroup(args, cache);
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 120_000);
    const code = await exited(child);
    clearTimeout(timer);
    const stdout = child.output();
    return { code, stdout, stderr: '', events: parseEvents(stdout) };
  };

  it('a blob that is a directory or a FIFO is removed and rebuilt; cache verify reports it (with -n, only reports) and never hangs', async () => {
    const cache = join(scratch(), 'cache');
    const build = ['db-create-tables', `REPO=${repo}`, ...SMALL, '--json'];
    const first = await cli(build, { cache });
    expect(first.code, first.stderr).toBe(0);
    const runId = summary(first).runId as string;
    const meta = JSON.parse(readFileSync(join(cache, 'runs', runId, 'meta.json'), 'utf8'));
    const digest = meta.targets['db-create-tables'].outputs['artifacts/db/db-create-tables.policy_data.db'].digest as string;
    const blob = join(cache, 'cas', digest.slice(0, 2), digest);
    for (const make of [(p: string) => mkdirSync(p), (p: string) => execFileSync('mkfifo', [p])]) {
      rmSync(blob, { force: true });
      make(blob);
      const rebuilt = await bounded(build, cache);
      expect(rebuilt.code, rebuilt.stdout).toBe(0);
      expect(outcomes(rebuilt).get('db-create-tables')).toBe('built');
      expect(rebuilt.stdout).toMatch(/not a regular file in the cache \(a (directory|FIFO); removed\)/);
      expect(statSync(blob).isFile()).toBe(true);
    }
    rmSync(blob, { force: true });
    execFileSync('mkfifo', [blob]);
    const reported = await bounded(['cache', 'verify', '-n'], cache);
    expect(reported.code, reported.stdout).toBe(1);
    expect(reported.stdout).toContain(`${blob} (a FIFO)`);
    expect(lstatSync(blob).isFIFO()).toBe(true);
    const verified = await bounded(['cache', 'verify'], cache);
    expect(verified.code, verified.stdout).toBe(1);
    expect(verified.stdout).toMatch(/1 corrupt \(removed: .* \(a FIFO\)\)/);
    expect(existsSync(blob)).toBe(false);
    expect((await bounded(['cache', 'verify'], cache)).code).toBe(0);

    // Incremental and resumable: with a budget of one byte, each run checks one blob and the next
    // continues after it, until the round has covered every blob once.
    const blobs = readdirSync(join(cache, 'cas')).flatMap((shard) => readdirSync(join(cache, 'cas', shard)));
    let checked = 0;
    for (let round = 0; round <= blobs.length; round++) {
      const step = await bounded(['cache', 'verify', 'MAX_GB=0.000000001', '--json'], cache);
      expect(step.code, step.stdout).toBe(0);
      const report = JSON.parse(step.stdout.trim().split('\n').pop()!) as { checked: number; complete: boolean };
      checked += report.checked;
      if (report.complete) break;
      expect(report.checked).toBe(1);
      expect(existsSync(join(cache, 'verify-progress.json'))).toBe(true);
    }
    expect(checked).toBe(blobs.length);
    expect(existsSync(join(cache, 'verify-progress.json'))).toBe(false);
  }, 600_000);
});

const readOr = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/** PIDs of live processes (zombies aside) whose command line contains `text`. */
function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(text)) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

describe('issue 13, item 1: no action outlives its killed build', () => {
  let repo: string;
  beforeAll(() => {
    repo = exampleRepo();
  });
  afterAll(() => cleanup(repo));

  it('kill -9 of the build\'s process group during a slowed fit, then an immediate rerun: the fit never runs twice at once, and nothing of the killed build survives', async () => {
    const cache = join(scratch(), 'cache');
    const args = ['fit-regional', `REPO=${repo}`, ...SMALL, '--json'];
    const env = { EXAMPLE_FIT_SLEEP_MS: '100' };
    const kills = 2;
    for (let trial = 0; trial < kills; trial++) {
      const build = startGroup([...args, 'EXECUTOR=local', `SEED=${trial + 1}`], cache, env);
      const runId = await waitFor('the run id', () => /"event":"run-start","runId":"([^"]+)"/.exec(build.output())?.[1] ?? false, 120_000);
      const fit = (id: string) => processesMentioning(join(cache, 'runs', id)).filter((pid) => (readOr(`/proc/${pid}/cmdline`) ?? '').includes('unified_calibration'));
      await waitFor('the fit to run', () => build.exitCode === null && fit(runId).length > 0, 240_000);
      process.kill(-build.pid!, 'SIGKILL');
      await exited(build);
      const rerun = startGroup([...args, 'EXECUTOR=local', `SEED=${trial + 1}`], cache, env);
      let overlaps = 0;
      let rerunFitSeen = false;
      while (rerun.exitCode === null && rerun.signalCode === null) {
        const rerunId = /"event":"run-start","runId":"([^"]+)"/.exec(rerun.output())?.[1];
        const mine = rerunId ? fit(rerunId) : [];
        if (mine.length > 0) {
          rerunFitSeen = true;
          if (fit(runId).length > 0) overlaps++;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(rerun.exitCode, rerun.output()).toBe(0);
      expect(rerunFitSeen).toBe(true);
      expect(overlaps).toBe(0);
      expect(processesMentioning(join(cache, 'runs', runId))).toEqual([]);
    }
  }, 900_000);
});

describe('issue 13, item 7: smaller faults', () => {
  it('pipeline -n --detach is refused in one line, exit 2, and leaves no run behind', async () => {
    const cache = join(scratch(), 'cache');
    const r = await cli(['pipeline', '-n', '--detach'], { cache });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('error: -n prints a plan and runs nothing, so there is nothing to detach; drop --detach (or -n)');
    expect(existsSync(join(cache, 'runs'))).toBe(false);
  });
});

describe('issue 13, item 2: a build waiting on a lock says so', () => {
  let repo: string;
  beforeAll(() => {
    repo = exampleRepo();
  });
  afterAll(() => cleanup(repo));

  it('a build blocked by a live holder of its action lock prints the target, the holder and since when, and goes on once the holder is gone', async () => {
    const cache = join(scratch(), 'cache');
    const build = ['db-create-tables', `REPO=${repo}`, ...SMALL, '--json'];
    const first = await cli(build, { cache });
    expect(first.code, first.stderr).toBe(0);
    const key = JSON.parse(readFileSync(join(cache, 'runs', summary(first).runId as string, 'meta.json'), 'utf8')).targets['db-create-tables'].key as string;
    rmSync(join(cache, 'actions', key.slice(0, 2), `${key}.json`)); // so the next build must run it
    const holder = spawn('sleep', ['120'], { stdio: 'ignore', detached: true });
    started.push(holder);
    await waitFor('the holder to start', () => processStartTime(holder.pid!) !== '');
    const owner = join(cache, 'locks', `owner-${holder.pid}`);
    writeFileSync(owner, `${holder.pid} ${processStartTime(holder.pid!)}\n`);
    linkSync(owner, join(cache, 'locks', `${key}.lock`));
    const waiting = startGroup(build, cache);
    const line = await waitFor('the waiting message', () => parseEvents(waiting.output()).find((e) => e.event === 'warning' && String(e.message).includes('waiting for')), 120_000);
    expect(line.message).toMatch(new RegExp(`^db-create-tables: waiting for another build \\(pid ${holder.pid}\\), which holds the lock on the same action, since \\d{4}-\\d\\d-\\d\\dT`));
    expect(waiting.exitCode).toBeNull();
    holder.kill('SIGKILL');
    expect(await exited(waiting), waiting.output()).toBe(0);
    expect(outcomes({ code: 0, stdout: waiting.output(), stderr: '', events: parseEvents(waiting.output()) }).get('db-create-tables')).toBe('built');
  }, 300_000);
});
