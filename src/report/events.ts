import type { z } from 'zod';
import type { causeSchema, eventSchema, runEstimate, schemaHeader, targetHistory, targetOutcomeKind } from './event-schema.ts';

/**
 * Events are data; loggers are views of them (logger.ts). `--json` prints them as NDJSON, one per
 * line after a `schema` header, and the tests assert on that stream. The types are derived from the
 * schemas in event-schema.ts, the one definition of the contract (type-only imports: the CLI does
 * not load zod schemas it never parses with).
 */
/** `cancelled`: stopped by a signal (Ctrl-C, SIGTERM) while it waited or ran; not a failure of the target. */
export type TargetOutcomeKind = z.infer<typeof targetOutcomeKind>;

export type Event = z.infer<typeof eventSchema>;

/** The first line of every `--json` output: the schema version and the command. */
export type SchemaHeader = z.infer<typeof schemaHeader>;

/** One cause of a rebuild (stale-reason.ts), as `-n` and `explain` report it. */
export type Cause = z.infer<typeof causeSchema>;

export type Emit = (event: Event) => void;

/** A target's durations in the earlier runs (run-history.ts), for the live view's estimate. */
export type TargetHistory = z.infer<typeof targetHistory>;

/** The time the run has left, as estimated when the event was emitted (run-estimate.ts says how). */
export type RunEstimate = z.infer<typeof runEstimate>;
