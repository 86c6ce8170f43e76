import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv } from './argv.ts';
import type { CommandContext } from './command.ts';
import { Cache } from '../caching/cache.ts';
import { baseActionEnv, provenanceEnv, type Settings } from './settings.ts';
import type { Event } from '../report/events.ts';
import { exitCode } from '../report/failures.ts';
import { LocalExecutor } from '../executors/local.ts';
import type { Executor } from '../executors/executor.ts';
import type { SharedActionCache } from '../caching/shared-cache.ts';
import type { Logger } from '../report/logger.ts';
import { pipelinePublishing, wouldStage } from './pipeline-publish.ts';
import { lazyRunTree, schedulerInputs } from '../prepare.ts';
import { executorChooser, wantsModal } from '../executor-choice.ts';
import { prepareBuild, type PreparedBuild } from './prepare-build.ts';
import { RunRecorder } from '../recorder.ts';
import { RunHistory } from '../run-history.ts';
import { RunHeartbeat } from '../run-heartbeat.ts';
import { applyReplay, findReplay, recordedInputsKey, type Replay } from '../replay.ts';
import { allocateRun, checkRunId, runDir, startingMeta, type RunId } from '../run.ts';
import { Scheduler } from '../scheduler.ts';
import { missingSecret } from '../secret-env.ts';
import { planBuild } from '../plan.ts';
import { environmentFailure, ignoreEnvironmentFailure } from '../report/environment-failure.ts';
import type { ExecutorKind, Target } from '../target.ts';

export interface BuildOptions {
  argv: Argv;
  goals: string[] | 'default';
  logger: Logger;
  signal: AbortSignal;
  /** Set by `--detach`: the parent already allocated the run. */
  runId?: RunId;
  settings: Settings;
}

/** The executors, and with Modal in use the action cache every machine shares on the volume. */
async function executors(p: PreparedBuild, cache: Cache, settings: Settings, o: { executorFor: (t: Target) => ExecutorKind; warn: (message: string) => void }): Promise<{ executors: Partial<Record<ExecutorKind, Executor>>; shared?: SharedActionCache }> {
  const local = new LocalExecutor();
  // BUILD_DB=0: the database target's download action runs in-process (published-db.ts).
  const out: Partial<Record<ExecutorKind, Executor>> = { local: p.published ? p.published.wrap(local) : local };
  if (!wantsModal(p.vars)) return { executors: out };
  const { createModalExecutor } = await import('../executors/modal/modal.ts');
  const modal = await createModalExecutor({
    targets: p.graph.select(p.goals).names.flatMap((name) => {
      const node = p.graph.get(name);
      return node.kind === 'target' && o.executorFor(node.target) === 'modal' ? [node.target] : [];
    }),
    vars: p.vars, cacheDir: p.cacheDir, repo: p.repo, sha: p.sha, projectDir: p.layout.projectDir,
    blobPath: (d) => cache.blobPath(d), settings: settings.modal, hashWorkers: settings.hashWorkers,
  });
  out.modal = modal;
  // A coordinator's cache dir is the shared state itself: nothing to pull from or push to.
  const { isVolumeState } = await import('../executors/modal/remote-state.ts');
  if (isVolumeState(p.cacheDir, settings.modal)) return { executors: out };
  return { executors: out, shared: modal.sharedCache(cache, o.warn) };
}

/**
 * What a dry run (-n, explain) reads of the action cache every machine shares, exactly when the
 * build would ask it (EXECUTOR=modal or MODAL_TARGETS, not a coordinator): so -n says `cached` for
 * what another machine built. It only reads: nothing is written to this cache.
 */
export async function planSharedCache(p: PreparedBuild, cache: Cache, settings: Settings, warn: (message: string) => void): Promise<SharedActionCache | undefined> {
  if (!wantsModal(p.vars) || !settings.modal.configured) return undefined;
  const { isVolumeState } = await import('../executors/modal/remote-state.ts');
  if (isVolumeState(p.cacheDir, settings.modal)) return undefined;
  const [{ VolumeActionCache }, { modalTransport }] = await Promise.all([import('../executors/modal/shared-cache.ts'), import('../executors/modal/config.ts')]);
  return new VolumeActionCache({ transport: modalTransport(settings.modal), cache, cacheDir: p.cacheDir, warn });
}

/** `./build.ts pipeline` and `./build.ts <target>...`: the process exit code, and whether the build replayed a run. */
export async function buildCommand(o: BuildOptions): Promise<{ code: number; replayed: boolean }> {
  const started = Date.now();
  // Publishing configuration and credentials are checked before any work (pipeline-publish.ts).
  const publishing = await pipelinePublishing(o.argv, o.goals, o.settings);
  const p = await prepareBuild(o.argv, o.goals, o.settings, { preflight: true });
  // MODAL_TARGETS is checked against the declaration here, before any work.
  const executorFor = executorChooser(p.pipeline, p.vars);
  const cache = new Cache(p.cacheDir, p.memo, p.envsDir);
  const failedTargets: string[] = [];
  const emit = (e: Event) => {
    if (e.event === 'target' && e.outcome === 'failed') failedTargets.push(e.target);
    o.logger.emit(e);
  };

  // A secret an action needs (Target.secretEnv) is checked before the run exists; a dry run only warns.
  const secret = missingSecret(p.graph, p.goals, o.settings.env, (t) => executorFor(t) === 'local');
  if (o.argv.flags.dryRun) {
    if (secret) emit({ event: 'warning', message: `${secret.message.replace(/; export it .*$/, '')}: the build would stop before any work` });
    let wouldRun = 0;
    const counting = (e: Event) => {
      if (e.event === 'plan' && e.action === 'run' && p.graph.nodes.get(e.target)?.kind !== 'fanout') wouldRun++;
      emit(e);
    };
    const shared = await planSharedCache(p, cache, o.settings, (message) => emit({ event: 'warning', message }));
    const planned = await planBuild({ prepared: p, cache, emit: counting, signal: o.signal, jobs: o.argv.flags.jobs, executorFor, showCommands: true, ...(shared && { shared }) });
    await p.memo.save().catch(ignoreEnvironmentFailure);
    if (planned.usageError) throw planned.usageError;
    emit({
      event: 'summary', runId: '', status: 'dry-run', built: 0, cached: planned.cached, failed: planned.failed, cancelled: 0, skipped: planned.skipped,
      durationMs: Date.now() - started, filesHashed: p.memo.filesRead, bytesHashed: p.memo.bytesRead, wouldRun, wouldPublish: wouldStage(o.argv, o.goals, o.settings),
    });
    return { code: 0, replayed: false };
  }

  if (secret) throw secret;

  // Nothing changed since a completed run: record nothing new and stage nothing; that run is the
  // one to promote. `--new-run` records (and stages) a new run anyway, as does --clean-old-runs (it
  // cleans after a run); --detach already allocated one.
  if (!o.runId && !o.argv.flags.newRun && !o.argv.flags.cleanOldRuns) {
    const same = await findReplay(p, cache);
    // Staged to the store this build would stage to (or this build does not stage): nothing to publish either.
    if (same && (!publishing?.stagesTo || same.stagedTo === publishing.stagesTo)) {
      await p.memo.save();
      emit({
        event: 'summary', runId: same.from, status: 'unchanged', built: 0, cached: same.targets.length, failed: 0, cancelled: 0, skipped: 0,
        durationMs: Date.now() - started, filesHashed: p.memo.filesRead, bytesHashed: p.memo.bytesRead, replayedFrom: same.from,
      });
      return { code: 0, replayed: true };
    }
  }

  const { runId, dir } = o.runId ? { runId: o.runId, dir: runDir(p.cacheDir, o.runId) } : await allocateRun(p.cacheDir, p.version, p.sha, new Date());
  const recorder = new RunRecorder(dir, startingMeta(p, runId, process.pid, new Date(started)));
  await recorder.flush().catch(async (error: unknown) => {
    // A run this build cannot even record (a full disk) is removed at once rather than left half-made.
    if (!o.runId) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  });
  // For readers on other machines (a run on the Modal volume): this process is still building it.
  const heartbeat = new RunHeartbeat(dir, o.settings.heartbeatMs);
  await heartbeat.beat(false);
  const selected = p.graph.select(p.goals).names;
  const fanouts = selected.filter((n) => p.graph.get(n).kind === 'fanout');
  emit({ event: 'run-start', runId, sha: p.sha, branch: p.branch, dirty: p.dirty, goals: p.goals, total: selected.length, ...(fanouts.length ? { fanouts } : {}) });

  let report;
  let replay: Replay | null = null;
  try {
    // Nothing changed since the last completed run: take its keys and outputs (replay.ts).
    replay = await findReplay(p, cache, runId);
    if (replay) {
      recorder.meta.replayedFrom = replay.from;
      report = await applyReplay(replay, cache, dir, emit, recorder.record);
    } else {
      const chosen = await executors(p, cache, o.settings, { executorFor, warn: (message) => emit({ event: 'warning', message }) });
      const scheduler = new Scheduler({
        ...schedulerInputs(p, cache),
        workspace: { runDir: dir, ensureCwd: lazyRunTree(p, dir) },
        ...chosen, executorFor, baseEnv: { ...baseActionEnv(o.settings), ...provenanceEnv({ sha: p.sha, branch: p.branch, runDir: dir }) },
        repoPaths: { repo: p.repo, trees: [join(dir, 'tree'), p.tree] },
        jobs: o.argv.flags.jobs, keepGoing: o.argv.flags.keepGoing, emit, signal: o.signal, record: recorder.record,
        // Earlier runs' durations and outputs: read only once an action is about to run.
        history: new RunHistory({ cacheDir: p.cacheDir, exclude: runId }),
      });
      report = await scheduler.run();
      // Every entry this build made is on the volume before the run is recorded as ended.
      await chosen.shared?.flush();
    }
  } catch (error) {
    // The run is marked failed with the reason; on a full or read-only disk that write may fail too.
    const reason = environmentFailure(error)?.message ?? (error as Error).message;
    await recorder.finish('failed', reason).catch(ignoreEnvironmentFailure);
    await p.memo.save().catch(ignoreEnvironmentFailure);
    await heartbeat.stop();
    throw error;
  }
  await p.memo.save();
  const status = report.aborted ? 'cancelled' : report.failed > 0 ? 'failed' : 'completed';
  // What lets the next build replay this one.
  const inputsKey = status === 'completed' ? (replay?.inputsKey ?? recordedInputsKey(p, recorder.meta, cache)) : null;
  if (inputsKey) recorder.meta.inputsKey = inputsKey;
  await recorder.finish(status, runError(report));
  // A completed run is published before the summary, which stays the last line.
  const published = status === 'completed' && publishing ? await publishing.afterRun(runId, emit) : 0;
  await heartbeat.stop();
  emit({
    event: 'summary', runId, status, built: report.built, cached: report.cached, failed: report.failed, cancelled: report.cancelled, skipped: report.skipped,
    durationMs: Date.now() - started, filesHashed: p.memo.filesRead, bytesHashed: p.memo.bytesRead,
    ...(recorder.meta.replayedFrom ? { replayedFrom: recorder.meta.replayedFrom } : {}),
    ...(failedTargets.length ? { failedTargets } : {}),
  });
  // A goal named a fan-out item the list lacks: one line and exit 2, after the run is recorded as failed.
  if (report.usageError) throw report.usageError;
  const code = report.aborted ? 130 : report.failed > 0 ? exitCode('target') : published;
  return { code, replayed: replay !== null };
}

/** The run's one-line error in meta.json: what failed, and apart from it what a signal cancelled. */
function runError(report: { failed: number; cancelled: number; aborted: boolean; usageError?: Error }): string | undefined {
  const parts: string[] = report.usageError ? [report.usageError.message] : [];
  if (report.aborted) parts.push(`cancelled by a signal${report.cancelled ? ` (${report.cancelled} target(s) cancelled)` : ''}`);
  if (report.failed > 0) parts.push(`${report.failed} target(s) failed`);
  return parts.length ? parts.join('; ') : undefined;
}

/**
 * The build as the command line asks for it: in a run the parent allocated when `--detach`
 * re-executed the CLI (BUILD_RUN_ID), then the loader's code cache is saved for the path it took.
 */
export async function buildFromCli(c: CommandContext, goals: string[] | 'default'): Promise<number> {
  const runId = c.settings.runId;
  const { code, replayed } = await buildCommand({ argv: c.argv, goals, logger: c.logger, signal: c.signal, settings: c.settings, ...(runId ? { runId: checkRunId(runId) } : {}) });
  saveCodeCache(replayed ? 'replay' : 'walk');
  return code;
}

/**
 * Asks the bundle's loader (scripts/cli-loader.mjs) to save its V8 code cache unless it already
 * holds what this build path compiles. Absent when run from source.
 */
function saveCodeCache(path: 'replay' | 'walk'): void {
  const save = (globalThis as Record<symbol, unknown>)[Symbol.for('build.saveCodeCache')];
  if (typeof save === 'function') save(path);
}
