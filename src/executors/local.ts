import { open, readFile } from 'node:fs/promises';
import type { ActionSpec, ExecOutcome, Executor } from './executor.ts';

/** Runs an action as a local process through zx, its output going straight to the action's log file. */
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
      return {
        ok: false,
        failure: {
          reason: cancelled ? 'cancelled' : 'command-failed',
          message: cancelled
            ? `${spec.target}: cancelled`
            : `${spec.target}: command exited with ${output.exitCode ?? `signal ${output.signal}`}; full log: ${spec.logFile}`,
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
