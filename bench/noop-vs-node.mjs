#!/usr/bin/env node
// The no-op of the default `./build.ts pipeline` side by side with bare `node -e 0` (issue 12,
// item 10): both started the same way, alternated, N times each; prints the medians and the ratio.
// A smaller stand-in for `npm run bench -- --only noop` on a loaded machine. It builds the
// example pipeline once (small sizes) in a scratch cache, then measures the no-op rerun.
//   node bench/noop-vs-node.mjs [--reps N]
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const reps = Number(process.argv[process.argv.indexOf('--reps') + 1]) || 11;
const scratch = mkdtempSync(join(tmpdir(), 'noop-vs-node-'));
const repo = join(scratch, 'repo');
cpSync(join(root, 'examples', 'us-data'), repo, { recursive: true, filter: (s) => !s.includes('__pycache__') });
const git = (...a) => execFileSync('git', ['-C', repo, ...a], { stdio: 'ignore' });
git('init', '-q', '-b', 'main');
git('-c', 'user.email=b@example.com', '-c', 'user.name=bench', 'add', '-A');
git('-c', 'user.email=b@example.com', '-c', 'user.name=bench', 'commit', '-q', '-m', 'example');
const env = { ...process.env, CI: '1', BUILD_CACHE_DIR: join(scratch, 'cache'), BUILD_ENVS_DIR: process.env.BUILD_ENVS_DIR ?? join(tmpdir(), 'build-ts-test-envs') };
const build = ['./build.ts', 'pipeline', `REPO=${repo}`, 'HOUSEHOLDS=300', 'N_CLONES=2', 'EPOCHS=30', 'NATIONAL_EPOCHS=30'];
const first = spawnSync(build[0], build.slice(1), { cwd: root, env, encoding: 'utf8' });
if (first.status !== 0) throw new Error(`the first build failed:\n${first.stdout}\n${first.stderr}`);
spawnSync(build[0], build.slice(1), { cwd: root, env }); // warms the code cache for the no-op path

const time = (cmd, args) => {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, out: r.stdout };
};
const node = [];
const noop = [];
let last = '';
for (let i = 0; i < reps; i++) {
  node.push(time(process.execPath, ['-e', '0']).ms);
  const r = time(build[0], build.slice(1));
  noop.push(r.ms);
  last = r.out.trim();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result = { reps, nodeMs: median(node), noopMs: median(noop), ratio: median(noop) / median(node), loadavg: (await import('node:os')).loadavg()[0], output: last };
process.stdout.write(`${JSON.stringify(result)}\n`);
rmSync(scratch, { recursive: true, force: true });
