import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Event, RunEstimate, SchemaHeader, TargetHistory, TargetOutcomeKind } from './events.ts';
import { unreachable } from './failures.ts';
import { EVENT_SCHEMA_VERSION } from './schema-version.ts';

/** The last non-empty line of a log (its final 4 kB), for the live status; '' when unreadable. */
function lastLine(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const buffer = Buffer.alloc(Math.min(size, 4096));
    readSync(fd, buffer, 0, buffer.length, size - buffer.length);
    return buffer.toString('utf8').split(/[\r\n]+/).map((l) => l.trim()).filter(Boolean).at(-1) ?? '';
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A duration as people read it: 45s, 2m05s, 1h20m. */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A running target's estimate: its time left from the median of its earlier durations, or that there is none. */
function targetEstimate(history: TargetHistory, elapsedMs: number): string {
  if (history.medianMs === undefined) return '(no previous run to estimate from)';
  const past = history.fromFanout ? `${history.fromFanout} items took ${humanDuration(history.medianMs)}` : `last runs: ${history.previousMs.slice(0, 3).map(humanDuration).join(', ')}`;
  const left = history.medianMs - elapsedMs;
  return left > 0 ? `~${humanDuration(Math.max(left, 1000))} left (${past})` : `past its usual ${humanDuration(history.medianMs)} (${past})`;
}

/** The run's time left, counted down from the last estimate (received `sinceMs` ago); '' when nothing is left to estimate. */
function runEstimate(e: RunEstimate, sinceMs: number): string {
  const unknown = e.unestimated ? ` (+${e.unestimated} target(s) with no previous run)` : '';
  if (e.leftMs === 0) return e.unestimated ? 'no previous run to estimate from' : '';
  const left = e.leftMs - sinceMs;
  return `${left > 0 ? `~${humanDuration(Math.max(left, 1000))} left` : 'past the estimate'}${unknown}`;
}

/** What a target's line adds (its event, or its record in meta.json for `status RUN_ID=...`): an early cutoff, a resumed checkpoint, a shared-cache hit. */
export function marks(e: Pick<Extract<Event, { event: 'target' }>, 'identicalOutput' | 'resumedFromCheckpoint' | 'fromSharedCache'>): string {
  const said = [
    ...(e.resumedFromCheckpoint ? ['resumed from its checkpoint'] : []),
    ...(e.identicalOutput ? ["output identical to the last run's: downstream stays cached (early cutoff)"] : []),
    ...(e.fromSharedCache ? ['built by another machine: from the shared cache'] : []),
  ];
  return said.length ? ` (${said.join('; ')})` : '';
}

/** A view of the event stream. */
export interface Logger {
  emit(event: Event): void;
  close(): void;
}

/**
 * `--json`: NDJSON only, one event per line, nothing else on stdout; the first line, written at
 * once, is the header `{"event":"schema","version":1,"command":...}` (docs/events.schema.json).
 * A publish event's message is one line on the wire: the lines a terminal shows under it (a
 * promote's plan) are a rendering of its `data`.
 */
export function jsonLogger(command: string | null, out: NodeJS.WritableStream = process.stdout): Logger {
  const write = (e: Event | SchemaHeader) => void out.write(`${JSON.stringify(e)}\n`);
  write({ event: 'schema', version: EVENT_SCHEMA_VERSION, command });
  return {
    emit: (e) => write(e.event === 'publish' ? { ...e, message: e.message.split('\n')[0]! } : e),
    close: () => undefined,
  };
}

function line(e: Event): string | null {
  switch (e.event) {
    case 'run-start':
      return `run ${e.runId}  sha ${e.sha.slice(0, 12)}${e.dirty ? ' (dirty)' : ''}  branch ${e.branch}  ${e.total} targets`;
    case 'target': {
      const time = e.durationMs !== undefined ? ` ${(e.durationMs / 1000).toFixed(1)}s` : '';
      const where = e.executor && e.executor !== 'local' ? ` [${e.executor}]` : '';
      const why = e.error ? `\n${indent(e.error)}` : e.reason ? ` (${e.reason})` : '';
      return `${e.outcome.padEnd(9)} ${e.target}${where}${time}${marks(e)}${why}`;
    }
    case 'expand':
      return `expand  ${e.target}: ${e.children} targets`;
    case 'plan':
      return `${e.action === 'run' ? 'would run' : 'cached   '} ${e.target}${e.executor && e.executor !== 'local' ? ` [${e.executor}${e.resourceClass ? ` ${e.resourceClass}` : ''}]` : ''}  (${e.why})${e.command ? `\n    $ ${e.command}` : ''}`;
    case 'warning':
      return `warning: ${e.message}`;
    case 'publish':
      return e.message;
    case 'summary':
      if (e.status === 'unchanged') {
        return `nothing to be done: nothing changed since run ${e.runId} (${e.cached} targets); no new run recorded. It is the one to promote: ./build.ts promote RUN_ID=${e.runId}  (--new-run records a new one)`;
      }
      if (e.status === 'dry-run') {
        return `dry run: ${e.wouldRun ?? 0} would run, ${e.cached} cached${e.failed ? `, ${e.failed} cannot be planned` : ''}; ${e.wouldPublish ? 'the run would publish' : 'the run would not publish'}`;
      }
      if (e.built + e.failed + e.cancelled === 0 && e.status === 'completed') {
        return `${e.status}: nothing to be done, ${e.cached} cached${e.skipped ? `, ${e.skipped} skipped` : ''} in ${(e.durationMs / 1000).toFixed(2)}s${e.replayedFrom ? `; nothing changed since run ${e.replayedFrom}` : ''}  (run ${e.runId})`;
      }
      return `${e.status}: ${e.built} built, ${e.cached} cached, ${e.failed} failed${e.cancelled ? `, ${e.cancelled} cancelled` : ''}, ${e.skipped} skipped in ${(e.durationMs / 1000).toFixed(2)}s${e.replayedFrom ? `; nothing changed since run ${e.replayedFrom}` : ''}  (run ${e.runId})${e.failedTargets?.length ? `\nfailed targets: ${e.failedTargets.join(', ')}` : ''}`;
    case 'target-start':
      return null;
    // The other commands print their own terminal view and emit these with --json only; an error goes to stderr (main.ts).
    case 'detached':
    case 'error':
    case 'run':
    case 'run-target':
    case 'explain':
    case 'target-info':
    case 'check-note':
    case 'check-problem':
    case 'check-summary':
    case 'cache-entry':
    case 'cancel':
    case 'cache-area':
    case 'cache-total':
    case 'cache-verify':
    case 'cache-remove':
    case 'cache-gc':
    case 'registry':
    case 'version':
    case 'fetched':
    case 'report':
    case 'diff':
    case 'command':
      return null;
    default:
      return unreachable(e);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

/**
 * CI and pipes: one plain line per target that ran (built, failed, cancelled), none for cached or
 * skipped ones (the summary counts them), so a no-op prints one line, as make's "Nothing to be done".
 */
export function plainLogger(out: NodeJS.WritableStream = process.stdout): Logger {
  return {
    emit: (e) => {
      if (e.event === 'target' && (e.outcome === 'cached' || e.outcome === 'skipped')) return;
      const text = line(e);
      if (text !== null) out.write(`${text}\n`);
    },
    close: () => undefined,
  };
}

/**
 * A terminal: finished targets scroll as plain lines under one live status line (done/total,
 * running targets, elapsed). Cached targets are counted, not listed, so a no-op run stays quiet,
 * and a fan-out's children (489 areas) are summed into one line when the last one finishes;
 * a failed child is still listed on its own.
 */
export function ttyLogger(out: NodeJS.WriteStream = process.stdout): Logger {
  const started = Date.now();
  /** Running targets: when each started, and its log (the status shows the latest line). */
  const running = new Map<string, { since: number; logFile?: string; history?: TargetHistory; resumed?: true }>();
  /** The run's time left as last estimated, and when that estimate came. */
  let estimate: { value: RunEstimate; at: number } | null = null;
  const unexpanded = new Set<string>();
  const fanouts: ({ name: string; prefix: string; total: number } & Record<TargetOutcomeKind, number>)[] = [];
  let total = 0;
  let done = 0;
  let status = '';
  const clear = () => status && out.write('\r\x1b[2K');
  const draw = () => {
    const now = Date.now();
    const width = (out.columns || 100) - 1;
    const shown = [...running].slice(0, 3).map(([name, r]) => ({
      head: `${name} ${((now - r.since) / 1000).toFixed(0)}s${r.resumed ? ' (resumed from its checkpoint)' : ''}${r.history ? ` ${targetEstimate(r.history, now - r.since)}` : ''}`,
      latest: r.logFile ? lastLine(r.logFile) : '',
    }));
    const more = running.size > 3 ? ` +${running.size - 3}` : '';
    const unknown = unexpanded.size ? ` (+ items of ${[...unexpanded].join(', ')}: not known yet)` : '';
    const said = estimate ? runEstimate(estimate.value, now - estimate.at) : '';
    const left = said ? `, ${said}` : '';
    const header = `[${done}/${total}${unknown}] ${((now - started) / 1000).toFixed(0)}s${left}`;
    // The log lines give way first on a narrow terminal: each gets an equal share of what is left.
    const fixed = header.length + more.length + shown.reduce((n, p) => n + 3 + p.head.length, 0);
    const share = Math.min(60, Math.floor((width - fixed) / Math.max(shown.length, 1)) - 3);
    const parts = shown.map((p) => (p.latest && share >= 8 ? `${p.head} "${p.latest.length > share ? `${p.latest.slice(0, share - 1)}…` : p.latest}"` : p.head));
    status = `${header}${parts.length ? ` | ${parts.join(' | ')}` : ''}${more}`.slice(0, width);
    out.write(status);
  };
  const timer = setInterval(() => {
    clear();
    draw();
  }, 250);
  timer.unref();
  /** Counts a fan-out child; returns the group's summary line once its last child is in. */
  const child = (e: Extract<Event, { event: 'target' }>): string | null | undefined => {
    const group = fanouts.find((f) => e.target.startsWith(f.prefix));
    if (!group) return undefined;
    group[e.outcome]++;
    const seen = group.built + group.cached + group.failed + group.cancelled + group.skipped;
    if (seen < group.total) return e.outcome === 'failed' || e.outcome === 'cancelled' ? line(e) : null;
    fanouts.splice(fanouts.indexOf(group), 1);
    const summary = `${group.name}: ${group.built} built, ${group.cached} cached${group.failed ? `, ${group.failed} failed` : ''}${group.cancelled ? `, ${group.cancelled} cancelled` : ''}${group.skipped ? `, ${group.skipped} skipped` : ''}`;
    return e.outcome === 'failed' || e.outcome === 'cancelled' ? `${line(e)}\n${summary}` : summary;
  };
  return {
    emit: (e) => {
      clear();
      if (e.event === 'run-start') {
        total = e.total;
        for (const f of e.fanouts ?? []) unexpanded.add(f);
      }
      if (e.event === 'expand') {
        // The fan-out was counted as one target; it is replaced by its items (it has no event of its own).
        total += e.children - (unexpanded.delete(e.target) ? 1 : 0);
        fanouts.push({ name: e.target, prefix: e.childPrefix, total: e.children, built: 0, cached: 0, failed: 0, cancelled: 0, skipped: 0 });
      }
      if (e.event === 'target-start') running.set(e.target, { since: Date.now(), ...(e.logFile ? { logFile: e.logFile } : {}), ...(e.history ? { history: e.history } : {}), ...(e.resumedFromCheckpoint ? { resumed: true as const } : {}) });
      if ((e.event === 'target-start' || e.event === 'target') && e.runEstimate) estimate = { value: e.runEstimate, at: Date.now() };
      let text: string | null;
      if (e.event === 'target') {
        running.delete(e.target);
        done++;
        const grouped = child(e);
        text = grouped !== undefined ? grouped : e.outcome === 'cached' ? null : line(e);
      } else {
        text = e.event === 'expand' ? null : line(e);
      }
      if (text !== null) out.write(`${text}\n`);
      if (e.event !== 'summary') draw();
      else status = '';
    },
    close: () => {
      clearInterval(timer);
      clear();
    },
  };
}
