import type { SkipReason, TargetReason } from './failures.ts';

/**
 * Events are data; loggers are views of them (logger.ts). `--json` prints these objects as NDJSON,
 * one per line, and the tests assert on that stream.
 */
/** `cancelled`: stopped by a signal (Ctrl-C, SIGTERM) while it waited or ran; not a failure of the target. */
export type TargetOutcomeKind = 'built' | 'cached' | 'failed' | 'cancelled' | 'skipped';

export type Event =
  /** `total` counts each fan-out as one target until it expands; `fanouts` names those whose items are not known yet. */
  | { event: 'run-start'; runId: string; sha: string; branch: string; dirty: boolean; goals: string[]; total: number; fanouts?: string[] }
  /** `logFile`: where the action's output goes (the live view shows its latest line). */
  | {
      event: 'target-start';
      target: string;
      executor: string;
      logFile?: string;
      /** How long it took in the earlier runs that built it (absent: the build read no history). */
      history?: TargetHistory;
      /** Its checkpoint directory held what an earlier attempt of the same action left. */
      resumedFromCheckpoint?: true;
      runEstimate?: RunEstimate;
    }
  | {
      event: 'target';
      target: string;
      outcome: TargetOutcomeKind;
      key?: string;
      durationMs?: number;
      executor?: string;
      /** Why it failed (a failed target), or why it did not run (a skipped one). */
      reason?: TargetReason | SkipReason;
      error?: string;
      /** Built, with the same output bytes as the last run that had it: what depends on it can stay cached (early cutoff). */
      identicalOutput?: true;
      /** It ran from its checkpoint directory's content, left by an earlier attempt of the same action. */
      resumedFromCheckpoint?: true;
      runEstimate?: RunEstimate;
    }
  | { event: 'expand'; target: string; children: number; childPrefix: string }
  /**
   * Dry run (`-n`, and `explain`, which is a view of the same events): why a target would run.
   * `causes` lists every cause against `closest`, the nearest cache entry (absent: never built).
   */
  | {
      event: 'plan'; target: string; action: 'run' | 'cached'; why: string; command?: string; declared?: string; causes?: string[]; closest?: { key: string; createdAt: string };
      /** Where it would run (`local`, `modal`), and on Modal its resource class (`data`, `cpu`, `T4`...). */
      executor?: string; resourceClass?: string;
    }
  | { event: 'warning'; message: string }
  /** Publishing (stage, promote, registry, gc): one human line, plus details for --json. */
  | { event: 'publish'; step: string; message: string; data?: Record<string, unknown> }
  | {
      event: 'summary';
      runId: string;
      status: string;
      built: number;
      cached: number;
      failed: number;
      cancelled: number;
      skipped: number;
      durationMs: number;
      filesHashed: number;
      bytesHashed: number;
      /** The earlier run this one replayed: nothing it depends on had changed (replay.ts). */
      replayedFrom?: string;
      /** The targets that failed, by name (the summary line names them). */
      failedTargets?: string[];
      /** A dry run (`status: 'dry-run'`, no run id): how many targets would run, and whether the run would publish. */
      wouldRun?: number;
      wouldPublish?: boolean;
    };

export type Emit = (event: Event) => void;

/** A target's durations in the earlier runs (run-history.ts), for the live view's estimate. */
export interface TargetHistory {
  /** The newest durations (ms) first, at most 5; empty: no earlier run built it. */
  previousMs: number[];
  /** The median of all the durations read (absent when there are none). */
  medianMs?: number;
  /** The durations are those of the items of this fan-out (the item itself has none). */
  fromFanout?: string;
}

/** The time the run has left, as estimated when the event was emitted (run-estimate.ts says how). */
export interface RunEstimate {
  leftMs: number;
  /** Targets still to settle that no earlier run built: they are not in `leftMs`. */
  unestimated: number;
}
