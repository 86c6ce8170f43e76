import { readFile } from 'node:fs/promises';
import type { ActionSpec, ExecOutcome, Executor } from './executor.ts';
import { ShellLauncher } from './shell-launcher.ts';

/**
 * Runs an action as a local process, its output going straight to the action's log file.
 *
 * The processes are forked by long-lived `sh` launchers (one per running action, reused, started
 * through zx when the first action is prepared, so a no-op build starts none): forking from Node
 * itself cost ~2.5 ms of main-thread time per action, more than a short action runs
 * (bench/PROFILE.md).
 */
export class LocalExecutor implements Executor {
  readonly kind = 'local';
  /** Idle launchers by environment: a launcher's children inherit its environment. */
  private readonly idle = new Map<string, ShellLauncher[]>();
  /** A launcher being started ahead of its first action (see `warm`). */
  private readonly warming = new Map<string, Promise<ShellLauncher>>();

  /**
   * Starts a launcher for this environment if none is idle or starting, so that its start-up
   * (importing zx, starting sh) overlaps the action's preparation instead of following it.
   */
  warm(env: Record<string, string>): void {
    const envKey = JSON.stringify(env);
    if (this.idle.get(envKey)?.some((l) => !l.failure) || this.warming.has(envKey)) return;
    const starting = ShellLauncher.start(env);
    starting.catch(() => undefined); // reported by the action that takes it
    this.warming.set(envKey, starting);
  }

  async execute(spec: ActionSpec): Promise<ExecOutcome> {
    if (spec.signal.aborted) return cancelled(spec);
    const envKey = JSON.stringify(spec.env);
    let launcher: ShellLauncher;
    try {
      launcher = await this.take(envKey, spec.env);
    } catch (error) {
      return failed(spec, `could not start the action launcher (sh): ${(error as Error).message}`);
    }
    const started = Date.now();
    const status = await launcher.run(spec.argv, spec.cwd, spec.logFile, spec.signal);
    const durationMs = Date.now() - started;
    if (!launcher.failure) this.idle.set(envKey, [...(this.idle.get(envKey) ?? []), launcher]);
    // Cancelled first: a command that exits 0 on SIGTERM did not finish its work.
    if (spec.signal.aborted) return cancelled(spec);
    if (status === 0) return { ok: true, durationMs };
    if (status === -1) return failed(spec, launcher.failure ?? 'the action launcher (sh) exited', await tail(spec.logFile));
    const notFound = status === 127 ? ` (${spec.argv[0]}: command not found)` : '';
    return failed(spec, `command exited with ${status}${notFound}`, await tail(spec.logFile), status);
  }

  /** An idle live launcher for this environment, else the one warming, else a new one. */
  private async take(envKey: string, env: Record<string, string>): Promise<ShellLauncher> {
    const pool = this.idle.get(envKey) ?? [];
    for (let launcher = pool.pop(); launcher; launcher = pool.pop()) if (!launcher.failure) return launcher;
    const warming = this.warming.get(envKey);
    if (warming) {
      this.warming.delete(envKey);
      const launcher = await warming;
      if (!launcher.failure) return launcher;
    }
    return ShellLauncher.start(env);
  }
}

function cancelled(spec: ActionSpec): ExecOutcome {
  return { ok: false, failure: { reason: 'cancelled', message: `${spec.target}: cancelled`, logTail: '' } };
}

function failed(spec: ActionSpec, why: string, logTail = '', exitCode?: number): ExecOutcome {
  return { ok: false, failure: { reason: 'command-failed', message: `${spec.target}: ${why}; full log: ${spec.logFile}`, exitCode, logTail } };
}

async function tail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
