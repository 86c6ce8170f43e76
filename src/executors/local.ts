import { open, readFile } from 'node:fs/promises';
import type { ActionSpec, ExecOutcome, Executor } from './executor.ts';

/**
 * Runs an action as a local process through zx (the design card's process layer), its output
 * going straight to the action's log file. zx is imported on the first action only, so a no-op
 * build never loads it.
 *
 * Cost, measured (bench/PROFILE.md): zx runs each argv through bash, one extra process per action,
 * ~20% of a cold build of ~500 trivial one-process actions. The real pipeline batches its 489
 * areas into `-j` worker processes, so it starts ~20 processes and the cost there is negligible.
 */
export class LocalExecutor implements Executor {
  readonly kind = 'local';

  async execute(spec: ActionSpec): Promise<ExecOutcome> {
    const { $ } = await import('zx');
    const log = await open(spec.logFile, 'a');
    const started = Date.now();
    try {
      const output = await $({
        cwd: spec.cwd,
        env: spec.env,
        signal: spec.signal,
        nothrow: true,
        quiet: true,
        stdio: ['ignore', log.fd, log.fd],
      })`${spec.argv}`;
      const durationMs = Date.now() - started;
      if (output.exitCode === 0) return { ok: true, durationMs };
      const cancelled = spec.signal.aborted;
      const notFound = output.exitCode === 127 ? ` (${spec.argv[0]}: command not found)` : '';
      return {
        ok: false,
        failure: {
          reason: cancelled ? 'cancelled' : 'command-failed',
          message: cancelled
            ? `${spec.target}: cancelled`
            : `${spec.target}: command exited with ${output.exitCode ?? `signal ${output.signal}`}${notFound}; full log: ${spec.logFile}`,
          exitCode: output.exitCode ?? undefined,
          logTail: await tail(spec.logFile),
        },
      };
    } finally {
      await log.close();
    }
  }
}

export async function tail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
