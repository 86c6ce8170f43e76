import { existsSync } from 'node:fs';
import type { Argv } from './argv.ts';
import type { Settings } from './settings.ts';
import type { Event } from '../report/events.ts';
import { exitCode } from '../report/failures.ts';
import { openPublishStores, publishConfig, type PublishStores } from '../publish/config.ts';
import type { PublishedDb } from '../publish/published-db.ts';
import { publishEmitter } from '../publish/result.ts';
import { REVIEW_PAGE, storeUrl } from '../publish/layout.ts';
import type { Vars } from '../target.ts';
import { parseVariables } from '../variables.ts';
import { VARIABLES } from '../../tasks/index.ts';

/**
 * What `./build.ts pipeline` does about publishing, decided from validated configuration before
 * any work (so a missing token fails at once, naming the action), and carried out after a
 * completed run: diagnostics and staging on the release store (stage.ts), then, with
 * `--clean-old-runs`, gc of old unpromoted runs (gc-runs.ts). build-command.ts calls the two
 * functions below and nothing else of publishing.
 *
 * Publishing applies to the whole pipeline (`pipeline` with its default goals), not to single
 * targets; PUBLISH=0 turns it off, and a BUILD_TASKS pipeline (the benchmarks) has nothing to
 * publish.
 */
export interface PipelinePublishing {
  /** Publishes a completed run; returns 0, or 1 when publishing failed (the run stays completed). */
  afterRun(runId: string, emit: (event: Event) => void): Promise<number>;
  /** The release store a completed run is staged to (`publish.staging.store` of a staged run), or null when this build does not stage. */
  stagesTo: string | null;
}

/**
 * Validates the publishing configuration and credentials for this command line (before any
 * work); null when the command publishes nothing.
 */
/** Whether this build publishes its run when it completes: the default pipeline, unless PUBLISH=0 (what `-n` reports). */
export function wouldStage(argv: Argv, goals: string[] | 'default', settings: Settings): boolean {
  return goals === 'default' && parseVariables(argv.assignments, VARIABLES).PUBLISH !== '0' && !settings.tasksFile;
}

export async function pipelinePublishing(argv: Argv, goals: string[] | 'default', settings: Settings): Promise<PipelinePublishing | null> {
  const vars = parseVariables(argv.assignments, VARIABLES);
  const stage = wouldStage(argv, goals, settings);
  const clean = argv.flags.cleanOldRuns;
  if ((!stage && !clean) || argv.flags.dryRun) return null;
  const dir = settings.cacheDir;
  const stores = await openPublishStores(
    publishConfig(vars, settings.publish, dir),
    { action: stage ? 'publishing the run (diagnostics and staging at the end of pipeline)' : 'pipeline --clean-old-runs', write: true },
    { env: settings.publish },
  );
  return {
    stagesTo: stage ? String(stores.release.location) : null,
    async afterRun(runId, emitEvent) {
      const emit = publishEmitter(emitEvent, stores.secrets);
      let code = 0;
      if (stage) {
        const { stageAndRecord } = await import('../publish/stage.ts');
        const { pipelineReportPath, reviewPageForStaging } = await import('../review/report.ts');
        const reviewPage = reviewPageForStaging({ cacheDir: dir, runId, stores, threshold: Number(vars.WORSE_BY) / 100, emit });
        const staged = await stageAndRecord({ cacheDir: dir, runId, release: stores.release, emit, reviewPage, modal: settings.modal, hashWorkers: settings.hashWorkers });
        if (staged.ok) {
          const page = existsSync(pipelineReportPath(dir, runId)) ? REVIEW_PAGE : '';
          emit('staged', `review the run at ${storeUrl(stores.release.location, staged.value.diagnosticsPath)}${page}, then: ./build.ts promote RUN_ID=${runId}`);
        } else {
          emit('failed', `publishing FAILED (${staged.failure.reason}): ${staged.failure.message}; the run is completed but not staged: retry with ./build.ts stage RUN_ID=${runId}`, { reason: staged.failure.reason });
          code = exitCode('publish');
        }
      }
      if (clean) code = Math.max(code, await cleanOldRuns(stores, dir, runId, Number(vars.KEEP), emit));
      return code;
    },
  };
}

async function cleanOldRuns(stores: PublishStores, dir: string, runId: string, keep: number, emit: ReturnType<typeof publishEmitter>): Promise<number> {
  const { gcRuns } = await import('../publish/gc-runs.ts');
  const result = await gcRuns({ cacheDir: dir, keep, stores, emit, dryRun: false, protect: [runId] });
  if (result.ok) return 0;
  emit('failed', `--clean-old-runs FAILED (${result.failure.reason}): ${result.failure.message}`, { reason: result.failure.reason });
  return exitCode('publish');
}

/**
 * BUILD_DB=0: the pin of the registered database is resolved before scheduling, and its variables
 * join the build's, so the pin enters the database target's command (see published-input.ts).
 * BUILD_DB defaults to 1 for every checkout, as the real pipeline always rebuilds the database
 * (tasks/variables.ts); the example and a real checkout run the same ETL chain.
 */
export async function resolveBuildDb(vars: Vars, settings: Settings): Promise<{ vars: Vars; published: PublishedDb | null }> {
  const decided = { ...vars, BUILD_DB: vars.BUILD_DB ?? '1' };
  if (decided.BUILD_DB !== '0') return { vars: decided, published: null };
  const { resolvePublishedDb } = await import('../publish/published-db.ts');
  const published = await resolvePublishedDb(publishConfig(decided, settings.publish, settings.cacheDir), settings.publish);
  return { vars: { ...decided, ...published.vars }, published };
}
