import { spawn } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import type { ActionSpec, ExecOutcome, Executor } from './executor.ts';

/**
 * Runs an action as a local process, its output going straight to the action's log file.
 *
 * The argv is spawned directly (no shell, no zx): through zx every action cost an extra bash
 * process plus zx's own bookkeeping, and importing zx cost ~130 ms on the first action. Measured
 * on the benchmark graph (bench/), that was ~20% of a cold build of ~500 trivial actions.
 * Cancellation kills the process with SIGTERM, as before.
 */
export class LocalExecutor implements Executor {
  readonly kind = 'local';

  async execute(spec: ActionSpec): Promise<ExecOutcome> {
    const log = await open(spec.logFile, 'a');
    const started = Date.now();
    try {
      const [command, ...args] = spec.argv;
      const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
        if (!command) return resolve({ code: null, signal: null, error: new Error('empty command') });
        const child = spawn(command, args, { cwd: spec.cwd, env: spec.env, signal: spec.signal, stdio: ['ignore', log.fd, log.fd] });
        child.on('error', (error) => {
          // AbortError comes with the kill; the exit that follows carries the signal.
          if ((error as NodeJS.ErrnoException).code !== 'ABORT_ERR') resolve({ code: null, signal: null, error });
        });
        child.on('close', (code, signal) => resolve({ code, signal }));
      });
      const durationMs = Date.now() - started;
      if (exit.code === 0) return { ok: true, durationMs };
      const cancelled = spec.signal.aborted;
      if (exit.error && !cancelled) await log.write(`${spec.argv[0]}: ${exit.error.message}\n`);
      return {
        ok: false,
        failure: {
          reason: cancelled ? 'cancelled' : 'command-failed',
          message: cancelled
            ? `${spec.target}: cancelled`
            : exit.error
              ? `${spec.target}: could not start ${spec.argv[0]} (${exit.error.message}); full log: ${spec.logFile}`
              : `${spec.target}: command exited with ${exit.code ?? `signal ${exit.signal}`}; full log: ${spec.logFile}`,
          exitCode: exit.code ?? undefined,
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
