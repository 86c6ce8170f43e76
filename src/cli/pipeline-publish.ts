import type { Argv } from './argv.ts';
import { cacheDir } from './settings.ts';
import type { Event } from '../report/events.ts';
import { openPublishStores, publishConfig, type PublishStores } from '../publish/config.ts';
import type { PublishedDb } from '../publish/published-db.ts';
import { publishEmitter } from '../publish/result.ts';
import { storeUrl } from '../publish/layout.ts';
import type { Profile, Vars } from '../target.ts';
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
export function wouldStage(argv: Argv, goals: string[] | 'default'): boolean {
  return goals === 'default' && parseVariables(argv.assignments, VARIABLES).PUBLISH !== '0' && !process.env.BUILD_TASKS;
}

export async function pipelinePublishing(argv: Argv, goals: string[] | 'default'): Promise<PipelinePublishing | null> {
  const vars = parseVariables(argv.assignments, VARIABLES);
  const stage = wouldStage(argv, goals);
  const clean = argv.flags.cleanOldRuns;
  if ((!stage && !clean) || argv.flags.dryRun) return null;
  const dir = cacheDir();
  const stores = await openPublishStores(publishConfig(vars, process.env, dir), {
    action: stage ? 'publishing the run (diagnostics and staging at the end of pipeline)' : 'pipeline --clean-old-runs',
    write: true,
  });
  return {
    stagesTo: stage ? String(stores.release.location) : null,
    async afterRun(runId, emitEvent) {
      const emit = publishEmitter(emitEvent, stores.secrets);
      let code = 0;
      if (stage) {
        const { stageAndRecord } = await import('../publish/stage.ts');
        const staged = await stageAndRecord({ cacheDir: dir, runId, release: stores.release, emit });
        if (staged.ok) {
          emit('staged', `review the diagnostics at ${storeUrl(stores.release.location, staged.value.diagnosticsPath)}, then: ./build.ts promote RUN_ID=${runId}`);
        } else {
          emit('failed', `publishing FAILED (${staged.failure.reason}): ${staged.failure.message}; the run is completed but not staged: retry with ./build.ts stage RUN_ID=${runId}`, { reason: staged.failure.reason });
          code = 1;
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
  return 1;
}

/**
 * BUILD_DB, decided after the tree is pinned: a real checkout takes the registered database by
 * default (the seed's default; the ETL needs API downloads), the example builds its own, and
 * another pipeline declaration (BUILD_TASKS) has no registered database to take. BUILD_DB=0: the
 * pin of the registered database is resolved before scheduling, and its variables join the
 * build's, so the pin enters the database target's command (see published-input.ts).
 */
export async function resolveBuildDb(vars: Vars, profile: Profile): Promise<{ vars: Vars; published: PublishedDb | null }> {
  const decided = { ...vars, BUILD_DB: vars.BUILD_DB ?? (profile === 'real' && !process.env.BUILD_TASKS ? '0' : '1') };
  if (decided.BUILD_DB !== '0') return { vars: decided, published: null };
  const { resolvePublishedDb } = await import('../publish/published-db.ts');
  const published = await resolvePublishedDb(publishConfig(decided, process.env, cacheDir()));
  return { vars: { ...decided, ...published.vars }, published };
}
