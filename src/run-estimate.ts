import type { Event, RunEstimate, TargetHistory } from './report/events.ts';
import type { Graph } from './graph.ts';
import { median, type RunHistory } from './run-history.ts';

/** How many earlier durations a target-start event carries (the median is over all those read). */
const SHOWN = 5;
/** The run's time left is recomputed at most this often (each pass walks every unsettled target). */
const REFRESH_MS = 250;

export interface RunEstimatorOptions {
  history: RunHistory;
  graph: Graph;
  /** `-j`: the local actions that run at once. */
  jobs: number;
  /** The walk's targets not settled yet (waiting, queued, in flight), and fan-outs not expanded yet. */
  unsettled: () => Iterable<string>;
}

/**
 * Estimates from earlier runs' durations (run-history.ts), added to the walk's events once an
 * action is about to run (before that the history is not read: a no-op stays as fast as it was).
 *
 * Each target-start carries its target's earlier durations and their median, by its own name, or
 * for a fan-out item with none of its own, its fan-out's items'. Every target event after that
 * carries the run's time left, estimated as
 *
 *   max(the longest time left of a running target, (Σ running targets' time left + Σ waiting
 *   targets' medians) / -j)
 *
 * where a running target's time left is its median minus its elapsed time (never below 0), and a
 * fan-out not expanded yet counts as its items' median times their number in the newest earlier run.
 * It assumes every target still to settle runs (a cache hit or an early cutoff makes it shorter),
 * that remote actions share `-j` like local ones, and a batch's members (started together) each
 * count their own share. Targets with no earlier duration are counted apart (`unestimated`).
 * It is recomputed at most every 250 ms: an event in between carries none, and the view counts
 * the last one down.
 */
export class RunEstimator {
  private readonly o: RunEstimatorOptions;
  private readonly running = new Map<string, { since: number; medianMs?: number }>();
  private readonly settled = new Set<string>();
  private readonly histories = new Map<string, TargetHistory>();
  private readonly medians = new Map<string, number>();
  private lastEstimate = -Infinity;

  constructor(o: RunEstimatorOptions) {
    this.o = o;
  }

  /** The event with the estimates added (unchanged until the history is read, and for other kinds). */
  decorate(e: Event): Event {
    if (e.event === 'target') {
      this.running.delete(e.target);
      this.settled.add(e.target);
    }
    if (!this.o.history.loaded || (e.event !== 'target-start' && e.event !== 'target')) return e;
    if (e.event === 'target-start') {
      const history = this.historyOf(e.target);
      this.running.set(e.target, { since: Date.now(), ...(history.medianMs !== undefined ? { medianMs: history.medianMs } : {}) });
      const runEstimate = this.left();
      return { ...e, history, ...(runEstimate ? { runEstimate } : {}) };
    }
    const runEstimate = this.left();
    return runEstimate ? { ...e, runEstimate } : e;
  }

  private historyOf(target: string): TargetHistory {
    const known = this.histories.get(target);
    if (known) return known;
    const fanout = this.o.graph.fanoutFor(target);
    const past = this.o.history.durations(target, fanout && { name: fanout.name, prefix: fanout.childPrefix });
    const history: TargetHistory = {
      previousMs: past.previousMs.slice(0, SHOWN),
      ...(past.previousMs.length ? { medianMs: this.medianOf(past.fromFanout ?? target, past.previousMs) } : {}),
      ...(past.fromFanout ? { fromFanout: past.fromFanout } : {}),
    };
    this.histories.set(target, history);
    return history;
  }

  /** Medians by target or fan-out: the 489 items of a fan-out share one. */
  private medianOf(name: string, values: number[]): number {
    let m = this.medians.get(name);
    if (m === undefined) this.medians.set(name, (m = median(values)));
    return m;
  }

  /** The run's time left, or null when it was computed less than REFRESH_MS ago (the view counts that one down). */
  private left(): RunEstimate | null {
    const now = Date.now();
    if (now - this.lastEstimate < REFRESH_MS) return null;
    this.lastEstimate = now;
    let longest = 0;
    let work = 0;
    let unestimated = 0;
    for (const name of this.o.unsettled()) {
      if (this.settled.has(name)) continue;
      const running = this.running.get(name);
      if (running) {
        if (running.medianMs === undefined) unestimated++;
        const left = Math.max((running.medianMs ?? 0) - (now - running.since), 0);
        longest = Math.max(longest, left);
        work += left;
        continue;
      }
      const node = this.o.graph.nodes.get(name);
      if (node?.kind === 'fanout') {
        const items = this.o.history.items({ name, prefix: node.fanout.childPrefix });
        if (items.previousMs.length) work += this.medianOf(name, items.previousMs) * items.count;
        else unestimated++;
        continue;
      }
      const history = this.historyOf(name);
      if (history.medianMs !== undefined) work += history.medianMs;
      else unestimated++;
    }
    return { leftMs: Math.round(Math.max(longest, work / this.o.jobs)), unestimated };
  }
}
