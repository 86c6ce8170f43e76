import type { CommandContext } from './command.ts';
import type { Event } from '../report/events.ts';
import { runProcessHere } from '../run-state.ts';
import { modalTransport } from '../executors/modal/config.ts';
import { cancelRemoteRun } from '../executors/modal/coordinator.ts';
import { TransportError } from '../executors/modal/transport.ts';
import { UsageError } from '../report/failures.ts';
import { checkRunId, readMeta } from '../run.ts';
import { parseVariables } from '../variables.ts';
import { VARIABLES } from '../../tasks/index.ts';

/**
 * `./build.ts cancel RUN_ID=...`: stops a run and marks it cancelled. A run of this machine
 * (`--detach` without Modal) is sent SIGTERM, and the build marks itself cancelled as on Ctrl-C;
 * a run on the Modal volume (EXECUTOR=modal --detach) has its coordinator call and its in-flight
 * action calls cancelled, then its meta.json marked (executors/modal/coordinator.ts).
 * Exit codes: 0 cancelled, 1 the run had already ended (nothing to cancel), 2 no such run.
 */
export async function cancelCommand({ argv, settings, logger }: CommandContext): Promise<number> {
  const vars = parseVariables(argv.assignments, VARIABLES);
  if (!vars.RUN_ID) throw new UsageError('missing-run-id', 'cancel needs RUN_ID=<run id>; list runs with ./build.ts status');
  const runId = checkRunId(vars.RUN_ID);
  const say = (event: Omit<Extract<Event, { event: 'cancel' }>, 'event' | 'runId'>, line: string) =>
    argv.flags.json ? logger.emit({ event: 'cancel', runId, ...event }) : void process.stdout.write(`${line}\n`);

  const local = await readMeta(settings.cacheDir, runId);
  if (local.ok) {
    const meta = local.value;
    // Never a reused PID, nor a process of another machine sharing this cache.
    if (meta.status !== 'running' || !runProcessHere(meta)) {
      say({ outcome: 'ended', status: meta.status }, `run ${runId} is not running (${meta.status}); nothing to cancel`);
      return 1;
    }
    process.kill(meta.pid, 'SIGTERM');
    say({ outcome: 'cancelled', where: 'local', pid: meta.pid }, `cancelled run ${runId} (sent SIGTERM to its build, pid ${meta.pid})`);
    return 0;
  }
  let outcome;
  try {
    outcome = await cancelRemoteRun(modalTransport(settings.modal), runId, new Date());
  } catch (error) {
    if (error instanceof TransportError) throw new UsageError(error.reason, `cancelling run ${runId} on the Modal volume failed: ${error.message}`);
    throw error;
  }
  if (outcome.kind === 'absent') throw new UsageError('bad-run', `run ${runId} exists neither here nor on the Modal volume; list runs with ./build.ts status`);
  if (outcome.kind === 'ended') {
    say({ outcome: 'ended', status: outcome.status }, `run ${runId} is not running (${outcome.status}); nothing to cancel`);
    return 1;
  }
  say({ outcome: 'cancelled', where: 'modal', calls: outcome.calls }, `cancelled run ${runId}: ${outcome.calls.length} Modal call(s) stopped, the run marked cancelled on the volume`);
  return 0;
}
