import { readFile } from 'node:fs/promises';
import type { ActionSpec, ExecOutcome, Executor } from './executor.ts';
import { ShellLauncher } from './shell-launcher.ts';

/**
 * Runs an action as a local process, its output going straight to the action's log file.
 *
 * The processes are forked by long-lived bash launchers (one per running action, reused, started
 * through zx on the first action, so a no-op build starts none): forking from Node itself cost
 * ~2.5 ms of main-thread time per action, more than a short action runs (bench/PROFILE.md).
 */
export class LocalExecutor implements Executor {
  readonly kind = 'local';
  /** Idle launchers by environment: a launcher's children inherit its environment. */
  private readonly idle = new Map<string, ShellLauncher[]>();

  async execute(spec: ActionSpec): Promise<ExecOutcome> {
    if (spec.signal.aborted) return cancelled(spec);
    const envKey = JSON.stringify(spec.env);
    const launcher = this.idle.get(envKey)?.pop() ?? (await ShellLauncher.start(spec.env));
    const started = Date.now();
    const status = await launcher.run(spec.argv, spec.cwd, spec.logFile, spec.signal);
    const durationMs = Date.now() - started;
    if (!launcher.failure) {
      const pool = this.idle.get(envKey) ?? [];
      pool.push(launcher);
      this.idle.set(envKey, pool);
    }
    if (status === 0) return { ok: true, durationMs };
    if (spec.signal.aborted) return cancelled(spec);
    const why =
      status === -1 ? launcher.failure : `command exited with ${status}${status === 127 ? ` (${spec.argv[0]}: command not found)` : ''}`;
    return {
      ok: false,
      failure: {
        reason: 'command-failed',
        message: `${spec.target}: ${why}; full log: ${spec.logFile}`,
        exitCode: status === -1 ? undefined : status,
        logTail: await tail(spec.logFile),
      },
    };
  }
}

function cancelled(spec: ActionSpec): ExecOutcome {
  return { ok: false, failure: { reason: 'cancelled', message: `${spec.target}: cancelled`, logTail: '' } };
}

export async function tail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
