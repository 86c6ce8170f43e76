import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers.ts';

/**
 * Shared by the Modal tests: the Python with the pinned `modal` and `xxhash` packages
 * (modal_app/requirements.txt). BUILD_MODAL_PYTHON wins; otherwise modal_app/setup.sh makes (or
 * checks, in a second) node_modules/.cache/modal-venv, which is also the executor's default.
 */
export function modalPython(): string {
  if (process.env.BUILD_MODAL_PYTHON) return process.env.BUILD_MODAL_PYTHON;
  const python = join(ROOT, 'node_modules', '.cache', 'modal-venv', 'bin', 'python');
  execFileSync(join(ROOT, 'modal_app', 'setup.sh'), [], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!existsSync(python)) throw new Error(`modal_app/setup.sh did not create ${python}`);
  return python;
}

export const APP_DIR = join(ROOT, 'modal_app');

/** Runs a Python snippet with the modal venv, JSON on stdin, JSON (last line) back. */
export function py(python: string, code: string, input: unknown = null, cwd = APP_DIR): unknown {
  const out = execFileSync(python, ['-c', code], { cwd, input: JSON.stringify(input), encoding: 'utf8', env: { ...process.env, PYTHONWARNINGS: 'ignore' } });
  return JSON.parse(out.trim().split('\n').pop()!);
}

/** The stand-in's calls, as {id, function, keys} (request.json of each call directory). */
export function standinCalls(dir: string): { id: string; function: string; keys: string[] }[] {
  const calls = join(dir, 'calls');
  if (!existsSync(calls)) return [];
  return readdirSync(calls).map((id) => {
    const r = JSON.parse(readFileSync(join(calls, id, 'request.json'), 'utf8')) as { function: string; request: { actions?: { key: string }[] } };
    return { id, function: r.function, keys: (r.request.actions ?? []).map((a) => a.key) };
  });
}

/** Kills every stand-in call's process group (supervisor and container): a failed test may leave calls running. */
export function killStandinCalls(dir: string): void {
  for (const c of standinCalls(dir)) {
    for (const file of ['pid', 'container.pid']) {
      const path = join(dir, 'calls', c.id, file);
      if (!existsSync(path)) continue;
      try {
        process.kill(-Number(readFileSync(path, 'utf8')), 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

/** Bytes the stand-in received (`put`) or sent (`get`), from its transfer log. */
export function transfers(dir: string): { op: string; bytes: number; paths: string[] }[] {
  const file = join(dir, 'transfers.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { op: string; bytes: number; paths: string[] });
}

/** Every process this user can see: pid, parent, command line, and the environment when readable. */
export function processes(): { pid: number; ppid: number; cmdline: string; environ: string }[] {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue;
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      let environ = '';
      try {
        environ = readFileSync(`/proc/${name}/environ`, 'utf8');
      } catch {
        // another user's process
      }
      out.push({ pid: Number(name), ppid: Number(fields[1]), cmdline, environ });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}
