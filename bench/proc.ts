import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';

/** One timed process: wall seconds (hrtime around spawn..exit), exit code, peak RSS of the process tree's largest member. */
export interface Timed {
  seconds: number;
  code: number | null;
  /** Peak resident set size in KiB as GNU time reports it (`%M`), or null when /usr/bin/time is missing. */
  maxRssKb: number | null;
}

const GNU_TIME = '/usr/bin/time';

/** Runs argv in cwd with env, output appended to `log`. Throws when `check` and the exit code is not 0. */
export async function timed(argv: string[], o: { cwd: string; env: NodeJS.ProcessEnv; log: string; check?: boolean }): Promise<Timed> {
  const rssFile = `${o.log}.rss`;
  const useTime = existsSync(GNU_TIME);
  const full = useTime ? [GNU_TIME, '-f', '%M', '-o', rssFile, ...argv] : argv;
  const log = await open(o.log, 'a');
  const started = process.hrtime.bigint();
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(full[0]!, full.slice(1), { cwd: o.cwd, env: o.env, stdio: ['ignore', log.fd, log.fd] });
    child.on('error', reject);
    child.on('exit', (c) => resolve(c));
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await log.close();
  let maxRssKb: number | null = null;
  if (useTime) {
    const text = await readFile(rssFile, 'utf8').catch(() => '');
    const last = text.trim().split('\n').pop() ?? '';
    maxRssKb = /^\d+$/.test(last) ? Number(last) : null;
    await rm(rssFile, { force: true });
  }
  if (o.check !== false && code !== 0) {
    const tail = (await readFile(o.log, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
    throw new Error(`${argv.join(' ')} exited with ${code} in ${o.cwd}\n${tail}`);
  }
  return { seconds, code, maxRssKb };
}

/** Runs a command and returns its stdout (untimed helpers: git, versions). */
export function capture(argv: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; allowFail?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', (e) => (o.allowFail ? resolve('') : reject(e)));
    child.on('exit', (code) => {
      if (code === 0 || o.allowFail) resolve(out);
      else reject(new Error(`${argv.join(' ')} exited with ${code}: ${err.trim().slice(-2000)}`));
    });
  });
}
