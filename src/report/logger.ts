import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Event, SchemaHeader, TargetOutcomeKind } from './events.ts';
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
      return `${e.outcome.padEnd(9)} ${e.target}${where}${time}${why}`;
    }
    case 'expand':
      return `expand  ${e.target}: ${e.children} targets`;
    case 'plan':
      return `${e.action === 'run' ? 'would run' : 'cached   '} ${e.target}  (${e.why})${e.command ? `\n    $ ${e.command}` : ''}`;
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
    case 'cache-usage':
    case 'cache-verify':
    case 'cache-remove':
    case 'cache-gc':
    case 'registry':
    case 'version':
    case 'fetched':
    case 'report':
    case 'diff':
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
  const running = new Map<string, { since: number; logFile?: string }>();
  const unexpanded = new Set<string>();
  const fanouts: ({ name: string; prefix: string; total: number } & Record<TargetOutcomeKind, number>)[] = [];
  let total = 0;
  let done = 0;
  let status = '';
  const clear = () => status && out.write('\r\x1b[2K');
  const draw = () => {
    const now = Date.now();
    const names = [...running].slice(0, 3).map(([name, r]) => {
      const latest = r.logFile ? lastLine(r.logFile) : '';
      return `${name} ${((now - r.since) / 1000).toFixed(0)}s${latest ? ` "${latest.slice(0, 50)}"` : ''}`;
    });
    const more = running.size > 3 ? ` +${running.size - 3}` : '';
    const unknown = unexpanded.size ? ` (+ items of ${[...unexpanded].join(', ')}: not known yet)` : '';
    status = `[${done}/${total}${unknown}] ${((now - started) / 1000).toFixed(0)}s ${names.join(' | ')}${more}`.slice(0, (out.columns || 100) - 1);
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
      if (e.event === 'target-start') running.set(e.target, { since: Date.now(), ...(e.logFile ? { logFile: e.logFile } : {}) });
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
