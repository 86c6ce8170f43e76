import { z } from 'zod';
import { EVENT_SCHEMA_VERSION } from './schema-version.ts';
import { targetMarks, targetOutcomeSchema } from '../run.ts';

/**
 * The `--json` contract, once: every event any command prints, as zod schemas. events.ts derives
 * the TypeScript types from these (z.infer), `npm run schema` publishes them as JSON Schema
 * (docs/events.schema.json, from z.toJSONSchema), and test/json-contract.test.ts parses every line
 * every command prints with them. The CLI itself only imports the types: building zod schemas
 * costs start-up time, and a no-op build must stay fast (bench/).
 *
 * The wire format: NDJSON, one event per line, the first one always the `schema` header carrying
 * EVENT_SCHEMA_VERSION. Objects are strict (a field not declared here fails the contract test).
 * Field names are the build's: `target`, `runId`, `key`, `outcome`, `status`, `executor`,
 * `durationMs`, `createdAt`. Human text is confined to one-line `message` and `why` fields and to
 * a failure's `error` (its command and log tail); what a command knows is in fields of their own
 * (a cause's before and after, a version's run).
 */

export { EVENT_SCHEMA_VERSION };

const oneLine = z.string().regex(/^[^\n]*$/, 'one line of text');

/** The first line of every `--json` output. `command`: null when the command line named none (it could not be parsed). */
export const schemaHeader = z.strictObject({ event: z.literal('schema'), version: z.literal(EVENT_SCHEMA_VERSION), command: z.string().nullable() });

/** A refused command line or environment (exit 2, or 1 for a full or read-only disk): also printed on stderr. */
const errorEvent = z.strictObject({ event: z.literal('error'), reason: z.string(), message: oneLine });

// ---- why a target would run (`-n`'s plan events, `explain`) ----

const fileChange = z.enum(['added', 'removed', 'changed']);

/**
 * One cause of a rebuild, against the closest cache entry. Digests are the first 8 hex digits;
 * an environment value is never shown, only whether it was set (it may hold a secret).
 */
export const causeSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('never-built') }).describe('The cache holds no entry of this target.'),
  z.strictObject({ kind: z.literal('outputs-missing') }).describe('The entry matches, but its outputs are missing from the store or corrupt.'),
  z.strictObject({ kind: z.literal('always-run') }).describe('The target reads something outside the pinned tree, so it runs in every build.'),
  z.strictObject({ kind: z.literal('upstream-would-run'), target: z.string() }).describe('Its inputs are not known until `target`, upstream, has run.'),
  z.strictObject({ kind: z.literal('items-not-known'), items: z.array(z.string()).optional() }).describe('A fan-out whose inputs would run: its items are not listed yet.'),
  z.strictObject({ kind: z.literal('fan-out'), items: z.number(), cached: z.number(), wouldRun: z.number() }).describe('A fan-out whose items are known: how many are cached and how many would run.'),
  z.strictObject({ kind: z.literal('schema'), before: z.string(), after: z.string() }).describe('The fingerprint format changed (a new build.ts).'),
  z.strictObject({ kind: z.literal('command'), before: z.array(z.string()), after: z.array(z.string()) }).describe('The words of the command that differ, `…` standing for the words that are the same.'),
  z.strictObject({ kind: z.literal('var'), name: z.string(), before: z.string().nullable(), after: z.string().nullable() }).describe('A variable in its key changed (null: unset).'),
  z.strictObject({ kind: z.literal('env'), name: z.string(), before: z.enum(['set', 'unset']), after: z.enum(['set', 'unset']), valueChanged: z.boolean() }).describe('An environment value in its key was set, unset or changed; the value itself is never shown.'),
  z.strictObject({ kind: z.literal('source'), path: z.string(), change: fileChange, before: z.string().optional(), after: z.string().optional(), importedVia: z.array(z.string()).optional() }).describe('`importedVia`: the import chain from the target\'s entry module to this source.'),
  z.strictObject({ kind: z.literal('upstream'), target: z.string(), path: z.string(), change: fileChange, before: z.string().optional(), after: z.string().optional() }).describe('An output of upstream `target` changed (digests: first 8 hex digits).'),
  z.strictObject({ kind: z.literal('files'), of: z.enum(['sources', 'upstream']), target: z.string().optional(), count: z.number(), paths: z.array(z.string()) }).describe('Many changed files of the sources, or of one upstream (`target`), counted: `paths` are the first few.'),
  z.strictObject({ kind: z.literal('outputs'), before: z.array(z.string()), after: z.array(z.string()) }).describe('The declared outputs changed.'),
  z.strictObject({ kind: z.literal('cannot-plan'), reason: z.string().optional(), error: z.string() }).describe('Planning the target failed (`explain` of a target the dry run could not plan).'),
  z.strictObject({ kind: z.literal('not-reached') }).describe('An upstream could not be planned, so the dry run did not reach the target.'),
  z.strictObject({ kind: z.literal('not-comparable'), why: z.enum(['no-key', 'inputs-not-known', 'entry-unreadable']), key: z.string().optional() }).describe('`explain RUN_ID=...`: the run\'s entry cannot be compared with today\'s inputs: the run recorded no key, an upstream would run first, or no cache this machine reads holds entry `key`.'),
]);

const closest = z.strictObject({ key: z.string(), createdAt: z.string() });

/** A target's durations in the earlier runs (run-history.ts), for the live view's estimate. */
export const targetHistory = z.strictObject({
  /** The newest durations (ms) first, at most 5; empty: no earlier run built it. */
  previousMs: z.array(z.number()),
  /** The median of all the durations read (absent when there are none). */
  medianMs: z.number().optional(),
  /** The durations are those of the items of this fan-out (the item itself has none). */
  fromFanout: z.string().optional(),
});

/** The time the run has left, as estimated when the event was emitted (run-estimate.ts says how). */
export const runEstimate = z.strictObject({
  leftMs: z.number(),
  /** Targets still to settle that no earlier run built: they are not in `leftMs`. */
  unestimated: z.number(),
});

// ---- the build (`pipeline`, `<target>...`, `-n`) ----

export const targetOutcomeKind = z.enum(['built', 'cached', 'failed', 'cancelled', 'skipped']);

const buildEvents = [
  z.strictObject({ event: z.literal('run-start'), runId: z.string(), sha: z.string(), branch: z.string(), dirty: z.boolean(), goals: z.array(z.string()), total: z.number(), fanouts: z.array(z.string()).optional() }).describe('A build started its run: `total` counts each fan-out as one target until it expands; `fanouts` names those whose items are not known yet.'),
  z.strictObject({
    event: z.literal('target-start'),
    target: z.string(),
    executor: z.string(),
    logFile: z.string().optional(),
    /** How long it took in the earlier runs that built it (absent: the build read no history). */
    history: targetHistory.optional(),
    /** Its checkpoint directory held what an earlier attempt of the same action left. */
    resumedFromCheckpoint: z.literal(true).optional(),
    runEstimate: runEstimate.optional(),
  }).describe('A target\'s action started; `logFile` is where its output goes (the live view shows its latest line); `history` and `runEstimate` feed the time-left estimate.'),
  z.strictObject({
    event: z.literal('target'),
    target: z.string(),
    outcome: targetOutcomeKind,
    key: z.string().optional(),
    durationMs: z.number().optional(),
    executor: z.string().optional(),
    /** Why it failed (a failed target, a TargetReason code), or why it did not run (a skipped one). */
    reason: z.string().optional(),
    /** A failure's account: the command, then the tail of its log (several lines). */
    error: z.string().optional(),
    ...targetMarks,
    runEstimate: runEstimate.optional(),
  }).describe('A target finished: built, cached (restored from the cache), failed, cancelled (by a signal) or skipped.'),
  z.strictObject({ event: z.literal('expand'), target: z.string(), children: z.number(), childPrefix: z.string() }).describe('A fan-out was expanded into `children` targets named `childPrefix`<item>.'),
  z.strictObject({
    event: z.literal('plan'),
    target: z.string(),
    action: z.enum(['run', 'cached']),
    why: oneLine,
    command: z.string().optional(),
    declared: z.string().optional(),
    causes: z.array(causeSchema).optional(),
    closest: closest.optional(),
    /** Where it would run (`local`, `modal`), and on Modal its resource class (`data`, `cpu`, `T4`...). */
    executor: z.string().optional(),
    resourceClass: z.string().optional(),
  }).describe('Dry run (`-n`; `explain` reads the same events): why a target would run. `causes` lists every cause against `closest`, the nearest cache entry; `why` is their one-line summary.'),
  z.strictObject({ event: z.literal('warning'), message: oneLine }).describe('Something the user should know that does not stop the command.'),
  z.strictObject({ event: z.literal('publish'), step: z.string(), message: oneLine, data: z.record(z.string(), z.unknown()).optional() }).describe('Publishing (stage, promote, rollback, gc): a step\'s one-line account, its details in `data`.'),
  z.strictObject({
    event: z.literal('summary'),
    runId: z.string(),
    status: z.string(),
    built: z.number(),
    cached: z.number(),
    failed: z.number(),
    cancelled: z.number(),
    skipped: z.number(),
    durationMs: z.number(),
    filesHashed: z.number(),
    bytesHashed: z.number(),
    /** The earlier run this one replayed: nothing it depends on had changed (replay.ts). */
    replayedFrom: z.string().optional(),
    /** The targets that failed, by name (the summary line names them). */
    failedTargets: z.array(z.string()).optional(),
    /** A dry run (`status: 'dry-run'`, no run id): how many targets would run, and whether the run would publish. */
    wouldRun: z.number().optional(),
    wouldPublish: z.boolean().optional(),
  }).describe('The last event of a build or dry run: counts by outcome and the run status (`dry-run`, `unchanged`: a no-op that recorded no new run, `completed`, `failed`, `cancelled`).'),
  z.strictObject({
    event: z.literal('detached'),
    runId: z.string(),
    /** A local background build's process. */
    pid: z.number().optional(),
    /** With EXECUTOR=modal: the coordinator's Modal call, the build system's digest it runs, and the bytes uploaded to start it. */
    callId: z.string().optional(),
    buildsys: z.string().optional(),
    uploadedBytes: z.number().optional(),
  }).describe('`--detach`: the run started in the background (with EXECUTOR=modal, its coordinator on Modal).'),
] as const;

// ---- inspection commands ----

const counts = { built: z.number(), cached: z.number(), failed: z.number(), cancelled: z.number(), skipped: z.number() };

const commandEvents = [
  z.strictObject({
    event: z.literal('run'),
    runId: z.string(),
    status: z.string(),
    sha: z.string().optional(),
    branch: z.string().optional(),
    repo: z.string().optional(),
    dirty: z.boolean().optional(),
    goals: z.array(z.string()).optional(),
    variables: z.record(z.string(), z.string()).optional(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    durationMs: z.number().optional(),
    ...Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v.optional()])) as { [K in keyof typeof counts]: z.ZodOptional<(typeof counts)[K]> },
    replayedFrom: z.string().optional(),
    gpuHoursSpent: z.number().optional(),
    gpuHoursSaved: z.number().optional(),
    /** Why the run failed, or (status `corrupt`) why its meta.json cannot be read. */
    error: z.string().optional(),
    /** How long ago a `half-made`/`starting` run (no meta.json) was made, or an `interrupted` one started. */
    ageMs: z.number().optional(),
    /** Where the run lives: `local`, `standin` or `modal:<volume>`. */
    where: z.string().optional(),
    /** A run on the volume whose coordinator died for good: the command that resumes it. */
    resume: z.string().optional(),
  }).describe('`status`: one run as its meta.json records it (`status` as it is now: a dead `running` run is `interrupted`).'),
  // The target's record in meta.json (run.ts), less its outputs, which `cache ls` and the run's files show.
  z.strictObject({ event: z.literal('run-target'), runId: z.string(), target: z.string(), ...targetOutcomeSchema.omit({ outputs: true }).shape }).describe('`status RUN_ID=...`: one target of the run, as recorded (`running` while it runs), with the marks of its `target` event.'),
  z.strictObject({
    event: z.literal('explain'),
    target: z.string(),
    action: z.enum(['run', 'cached', 'failed']),
    causes: z.array(causeSchema),
    key: z.string().optional(),
    /** `cached`: the entry is in the action cache every machine shares, not (yet) in this one. */
    fromSharedCache: z.literal(true).optional(),
    closest: closest.optional(),
    /** `explain <target> RUN_ID=...`: the target as that run recorded it; `causes` are then what changed since its entry. */
    run: z.strictObject({ runId: z.string(), where: z.string(), outcome: z.string(), executor: z.string().optional(), key: z.string().optional(), error: oneLine.optional() }).optional(),
  }).describe('`explain <target>`: one target\'s answer (`cached`: `key` is the entry the build would use; `run`: `closest` is the entry compared with).'),
  z.strictObject({
    event: z.literal('target-info'),
    target: z.string(),
    kind: z.enum(['target', 'fanout']),
    description: z.string(),
    deps: z.array(z.string()),
    executor: z.string().optional(),
    childPrefix: z.string().optional(),
    items: z.array(z.string()).nullable().optional(),
    itemsFrom: z.string().optional(),
  }).describe('`targets`: one target or fan-out of the pipeline (`items`: null until a run has listed them).'),
  z.strictObject({ event: z.literal('check-note'), target: z.string(), message: oneLine }).describe('`check`: a note or a problem of the plan against the pinned tree.'),
  z.strictObject({ event: z.literal('check-problem'), target: z.string(), message: oneLine }).describe('`check`: a problem of the plan (check exits 2).'),
  z.strictObject({ event: z.literal('check-summary'), sha: z.string(), problems: z.number(), notes: z.number(), targets: z.number(), modules: z.number(), paths: z.number() }).describe('`check`: the last event, what was checked and how many problems and notes.'),
  z.strictObject({
    event: z.literal('cache-entry'),
    path: z.string(),
    corrupt: z.boolean(),
    target: z.string().optional(),
    key: z.string().optional(),
    createdAt: z.string().optional(),
    outputs: z.number().optional(),
    size: z.number().optional(),
    executor: z.string().optional(),
  }).describe('`cache ls`: one action entry (`corrupt`: unreadable, only `path` is known).'),
  z.strictObject({
    event: z.literal('cancel'),
    runId: z.string(),
    /** `cancelled`: stopped now; `ended`: it had already ended (`status` says how), nothing was cancelled. */
    outcome: z.enum(['cancelled', 'ended']),
    status: z.string().optional(),
    /** Where the run was: this machine's detached build (its `pid` sent SIGTERM) or the Modal volume (its `calls` cancelled). */
    where: z.enum(['local', 'modal']).optional(),
    pid: z.number().optional(),
    calls: z.array(z.string()).optional(),
  }).describe('`cancel`: what was stopped.'),
  z.strictObject({
    event: z.literal('cache-area'),
    /** blobs, actions, runs, trees, envs, checkpoints, store or other. */
    area: z.string(),
    path: z.string(),
    /** Bytes of the regular files first counted here (a hard-linked file counts once, in the first area holding it). */
    bytes: z.number(),
    /** Bytes of files hard-linked to ones an earlier area counted (run outputs are links to blobs). */
    linkedBytes: z.number(),
    files: z.number(),
    /** What the area holds, in its own unit (blobs, entries, runs, trees, environments, checkpoints, files). */
    count: z.number(),
  }).describe('`cache du`: one area of the cache (and the environments and local store where they live).'),
  z.strictObject({ event: z.literal('cache-total'), bytes: z.number(), files: z.number() }).describe('`cache du`: the last event, what the disk holds for all areas (each hard-linked file once).'),
  z.strictObject({
    event: z.literal('cache-verify'),
    checked: z.number(),
    bytes: z.number(),
    corrupt: z.array(z.string()),
    corruptEntries: z.array(z.string()),
    complete: z.boolean(),
    round: z.string(),
    dryRun: z.boolean(),
  }).describe('`cache verify`: what this pass checked, and what was corrupt (`dryRun`: found, not removed).'),
  z.strictObject({ event: z.literal('cache-remove'), path: z.string(), target: z.string().optional(), key: z.string().optional(), dryRun: z.boolean() }).describe('`cache gc -n`: one action entry that would be removed.'),
  z.strictObject({ event: z.literal('cache-gc'), removedEntries: z.number(), removedBlobs: z.number(), freedBytes: z.number(), dryRun: z.boolean() }).describe('`cache gc`: what was (or, with -n, would be) removed.'),
  z.strictObject({
    event: z.literal('command'),
    name: z.string(),
    usage: z.array(z.string()),
    summary: oneLine,
    options: z.array(z.strictObject({ flag: z.string(), short: z.string().optional(), value: z.string().optional(), help: oneLine })),
  }).describe('`--help --json`: one command of the CLI (every command for `./build.ts --help`), its usage forms and options.'),
  z.strictObject({ event: z.literal('registry'), location: z.string(), current: z.string().nullable(), versions: z.number() }).describe('`versions`: the registry (where, which version is current), then one event per version, newest first.'),
  z.strictObject({
    event: z.literal('version'),
    version: z.string(),
    current: z.boolean(),
    createdAt: z.string(),
    runId: z.string().nullable(),
    hfCommit: z.string().optional(),
    localFiles: z.number().optional(),
    gcsObjects: z.number().optional(),
    /** `roll-back`: the entry republished the files of `rollBackVersion`. */
    specialOperation: z.string().optional(),
    rollBackVersion: z.string().optional(),
  }),
  z.strictObject({ event: z.literal('fetched'), runId: z.string(), where: z.string().optional().describe('where the run lives: local, standin or modal:<volume>'), files: z.number(), bytes: z.number(), downloaded: z.number() }).describe('`fetch`: outputs downloaded from the Modal volume into the cache and linked into the run.'),
  z.strictObject({ event: z.literal('report'), runId: z.string(), path: z.string(), bytes: z.number() }).describe('`report`: the review page written.'),
  z.strictObject({
    event: z.literal('diff'),
    runId: z.string(),
    against: z.string().nullable(),
    threshold: z.number(),
    fits: z.array(z.record(z.string(), z.unknown())),
    files: z.record(z.string(), z.unknown()),
    notes: z.array(z.string()),
  }).describe('`diff`: the review\'s key numbers against `against` (null: nothing to compare with), as src/review/review-numbers.ts computes them.'),
] as const;

/** Every event but the header. */
export const eventSchema = z.discriminatedUnion('event', [...buildEvents, ...commandEvents, errorEvent]);

/** One line of `--json` output: the header or an event. */
export const wireEventSchema = z.discriminatedUnion('event', [schemaHeader, ...buildEvents, ...commandEvents, errorEvent]);

/** The published JSON Schema of one `--json` line (docs/events.schema.json, written by `npm run schema`). */
export function eventsJsonSchema(): Record<string, unknown> {
  return {
    title: `build.ts --json event, schema version ${EVENT_SCHEMA_VERSION}`,
    description: 'One line of ./build.ts --json output (NDJSON). The first line of every output is the `schema` event; generated from src/report/event-schema.ts.',
    ...z.toJSONSchema(wireEventSchema, { target: 'draft-2020-12' }),
  };
}
