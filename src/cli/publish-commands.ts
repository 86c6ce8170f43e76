import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import type { CommandContext } from './command.ts';
import { exitCode, UsageError } from '../report/failures.ts';
import { plainLogger, type Logger } from '../report/logger.ts';
import { openPublishStores, publishConfig, type PublishStores } from '../publish/config.ts';
import { publishEmitter, type PublishEmit, type PublishFailure, type StepReport } from '../publish/result.ts';
import { checkRunId, readMeta } from '../run.ts';
import { builderOf, mirroredRun, type RunSource } from './run-source.ts';
import { parseVariables } from '../variables.ts';
import { VARIABLES } from '../../tasks/index.ts';

/**
 * The publishing commands: `promote`, `versions`, `rollback`, `gc` and `stage` (retry the
 * end-of-pipeline publishing of a run).
 * Configuration problems (bad variables, a missing token) are UsageErrors raised before any
 * store is touched (exit 2); failures of the operation itself are reported step by step (exit 1).
 */
export async function publishCommand(name: 'promote' | 'versions' | 'rollback' | 'gc' | 'stage', c: CommandContext): Promise<number> {
  const { argv, words, settings } = c;
  // Publishing prints plain lines: the terminal view's live status line would draw over the prompt.
  const logger = argv.flags.json ? c.logger : (c.logger.close(), plainLogger());
  if (words.length) throw new UsageError('unexpected-argument', `${name} takes no argument '${words[0]}'; see ./build.ts ${name} --help`);
  const vars = parseVariables(argv.assignments, VARIABLES);
  const config = publishConfig(vars, settings.publish, settings.cacheDir);
  const open = (purpose: { action: string; write: boolean }) => openPublishStores(config, purpose, { env: settings.publish });
  const noPrompt = argv.flags.yes || argv.flags.dryRun;
  if ((name === 'promote' || name === 'rollback') && !noPrompt && !process.stdin.isTTY) {
    throw new UsageError('confirmation-needed', `${name} asks for confirmation, but stdin is not a terminal; review the plan with -n, then pass --yes`);
  }
  switch (name) {
    case 'promote': {
      if (!vars.RUN_ID) throw new UsageError('missing-run-id', 'promote needs RUN_ID=<run id>; list runs with ./build.ts status');
      const runId = checkRunId(vars.RUN_ID);
      const stores = await open({ action: `promote of run ${runId}`, write: true });
      const emit = publishEmitter((e) => logger.emit(e), stores.secrets);
      // A run another machine made (on the Modal volume): its record is mirrored here first.
      const source = await mirroredRun(runId, settings);
      const { promote } = await import('../publish/promote.ts');
      const result = await promote({
        cacheDir: source.cacheDir,
        runId,
        ...(vars.VERSION && { version: vars.VERSION }),
        stores,
        emit,
        dryRun: argv.flags.dryRun,
        quality: {
          gates: { ...(vars.MAX_MEAN_ERROR && { maxMeanError: Number(vars.MAX_MEAN_ERROR) / 100 }), ...(vars.MAX_REGRESSION && { maxRegression: Number(vars.MAX_REGRESSION) / 100 }) },
          threshold: Number(vars.WORSE_BY) / 100,
          force: vars.FORCE === '1',
        },
        confirm: (plan) => (argv.flags.yes ? Promise.resolve(true) : ask(`Promote run ${plan.runId} as version ${plan.version} to production? [y/N] `)),
      });
      if (!result.ok) return reportFailure('promote', result.failure, emit);
      const value = result.value;
      if (value.status === 'declined') return cancelled('promote', emit);
      if (value.status === 'promoted') {
        if (source.remote) await recordOnVolume(source, runId, emit);
        reportSteps(value.steps, emit);
        emit('done', `promoted run ${runId} as version ${value.entry.version}`, { entry: value.entry });
      }
      return 0;
    }
    case 'rollback': {
      if (!vars.VERSION || !vars.NEW_VERSION) throw new UsageError('missing-version', 'rollback needs VERSION=<registered version to return to> and NEW_VERSION=<version to publish it as>');
      const stores = await open({ action: `rollback to ${vars.VERSION}`, write: true });
      const emit = publishEmitter((e) => logger.emit(e), stores.secrets);
      const { rollback } = await import('../publish/rollback.ts');
      const result = await rollback({
        target: vars.VERSION,
        newVersion: vars.NEW_VERSION,
        stores,
        emit,
        dryRun: argv.flags.dryRun,
        confirm: () => (argv.flags.yes ? Promise.resolve(true) : ask(`Publish ${vars.VERSION}'s files as new version ${vars.NEW_VERSION}? [y/N] `)),
      });
      if (!result.ok) return reportFailure('rollback', result.failure, emit);
      if (result.value.status === 'declined') return cancelled('rollback', emit);
      if (result.value.status === 'rolled-back') {
        reportSteps(result.value.steps, emit);
        emit('done', `published ${vars.VERSION}'s files as version ${vars.NEW_VERSION} (current)`, { entry: result.value.entry });
      }
      return 0;
    }
    case 'versions': {
      const stores = await open({ action: 'versions', write: false });
      return versions(stores, publishEmitter((e) => logger.emit(e), stores.secrets), argv.flags.json ? logger : null);
    }
    case 'gc': {
      const stores = await open({ action: 'gc of old runs', write: !argv.flags.dryRun });
      const emit = publishEmitter((e) => logger.emit(e), stores.secrets);
      const { gcRuns } = await import('../publish/gc-runs.ts');
      const result = await gcRuns({ cacheDir: settings.cacheDir, keep: Number(vars.KEEP), stores, emit, dryRun: argv.flags.dryRun });
      return result.ok ? 0 : reportFailure('gc', result.failure, emit);
    }
    case 'stage': {
      if (!vars.RUN_ID) throw new UsageError('missing-run-id', 'stage needs RUN_ID=<run id>; list runs with ./build.ts status');
      const runId = checkRunId(vars.RUN_ID);
      const stores = await open({ action: `staging of run ${runId}`, write: true });
      const emit = publishEmitter((e) => logger.emit(e), stores.secrets);
      const { stageAndRecord } = await import('../publish/stage.ts');
      const { pipelineReportPath, reviewPageForStaging } = await import('../review/report.ts');
      const reviewPage = reviewPageForStaging({ cacheDir: settings.cacheDir, runId, stores, threshold: Number(vars.WORSE_BY) / 100, emit });
      const result = await stageAndRecord({ cacheDir: settings.cacheDir, runId, release: stores.release, emit, reviewPage, modal: settings.modal, hashWorkers: settings.hashWorkers });
      if (!result.ok) return reportFailure('stage', result.failure, emit);
      const page = existsSync(pipelineReportPath(settings.cacheDir, runId)) ? 'report.html' : '';
      emit('done', `run ${runId} staged; review ${result.value.diagnosticsPath}${page} then ./build.ts promote RUN_ID=${runId}`);
      return 0;
    }
  }
  return 0;
}

/**
 * The run's `promoted` status on the volume too, once its builder has ended: while it lives,
 * meta.json is its coordinator's alone (remote-state.ts), and the registry says promoted anyway.
 */
async function recordOnVolume(source: RunSource, runId: string, emit: PublishEmit): Promise<void> {
  const read = await readMeta(source.cacheDir, runId);
  if (read.ok && (await builderOf(source, read.value)) === 'alive') {
    emit('warning', `warning: the coordinator of run ${runId} is still running, so its meta.json on ${source.where} is left to it; the registry records the promote`);
    return;
  }
  await source.remote!.putMeta(runId).catch((error: Error) => emit('warning', `warning: could not record the promote in meta.json on ${source.where}: ${error.message.split('\n')[0]}`));
}

/** `./build.ts versions`: the registry, newest first, current marked; with --json (`json`), as `registry` and `version` events. */
async function versions(stores: PublishStores, emit: PublishEmit, json: Logger | null): Promise<number> {
  const { readRegistry } = await import('../publish/registry.ts');
  const read = await readRegistry(stores.registryHome);
  if (!read.ok) return reportFailure('versions', read.failure, emit);
  const { registry } = read.value;
  if (json) {
    json.emit({ event: 'registry', location: String(stores.registryHome.location), current: registry.current || null, versions: registry.versions.length });
    for (const v of registry.versions) {
      json.emit({
        event: 'version', version: v.version, current: v.version === registry.current, createdAt: v.created_at, runId: v.pipeline_run_id ?? null,
        ...(v.hf && { hfCommit: v.hf.commit }), ...(v.local && { localFiles: Object.keys(v.local.versions).length }),
        ...(v.gcs && { gcsObjects: Object.keys(v.gcs.generations).length }), ...(v.special_operation && { specialOperation: v.special_operation }), ...(v.roll_back_version && { rollBackVersion: v.roll_back_version }),
      });
    }
    return 0;
  }
  if (registry.versions.length === 0) {
    emit('versions', `no registered version in ${stores.registryHome.location}`, { registry });
    return 0;
  }
  const rows = registry.versions.map((v) => [
    v.version === registry.current ? `* ${v.version}` : `  ${v.version}`,
    v.created_at,
    v.pipeline_run_id ?? '-',
    v.hf ? v.hf.commit.slice(0, 12) : v.local ? `local (${Object.keys(v.local.versions).length} files)` : '-',
    v.gcs ? `${Object.keys(v.gcs.generations).length} objects` : '-',
    v.special_operation ? `${v.special_operation} to ${v.roll_back_version ?? '?'}` : '',
  ]);
  const header = ['  VERSION', 'CREATED', 'RUN', 'HF COMMIT', 'GCS', 'NOTE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  emit('versions', [`registry ${stores.registryHome.location} (current: ${registry.current || 'none'})`, line(header), ...rows.map(line)].join('\n'), { registry });
  return 0;
}

function reportSteps(steps: StepReport[], emit: PublishEmit): void {
  const mark = { done: 'done    ', failed: 'FAILED  ', 'not-done': 'not done' } as const;
  for (const s of steps) emit('step', `  ${mark[s.status]}  ${s.step}: ${s.detail}`, { ...s });
}

/** A failure, honestly: which steps were done, which were not, and how to finish. */
function reportFailure(command: string, failure: PublishFailure, emit: PublishEmit): number {
  if (failure.steps) {
    emit('failed', `${command} FAILED at step ${failure.step ?? '?'}: ${failure.message}`, { reason: failure.reason, step: failure.step });
    reportSteps(failure.steps, emit);
    emit('failed', `rerun the same command to complete the rest: what is already in place is skipped, nothing is written twice`);
  } else {
    emit('failed', `${command} refused (${failure.reason}): ${failure.message}; nothing was written`, { reason: failure.reason });
  }
  process.stderr.write(`error: ${command} failed: ${failure.reason}\n`);
  return exitCode('publish');
}

function cancelled(command: string, emit: PublishEmit): number {
  emit('cancelled', `${command} cancelled; nothing was written`);
  return exitCode('publish');
}

/** One y/N question on the terminal. */
async function ask(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
