import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Event } from '../src/report/events.ts';
import { jsonLogger, plainLogger, ttyLogger } from '../src/report/logger.ts';

/** A terminal stand-in that records what was written (the views are pure functions of events). */
function terminal(): NodeJS.WriteStream & { text: () => string } {
  let written = '';
  return { columns: 100, write: (s: string) => ((written += s), true), text: () => written } as unknown as NodeJS.WriteStream & { text: () => string };
}

const events: Event[] = [
  { event: 'run-start', runId: 'r', sha: 'a'.repeat(40), branch: 'main', dirty: false, goals: ['manifest'], total: 3 },
  { event: 'target', target: 'database', outcome: 'built', durationMs: 300 },
  { event: 'target', target: 'acs', outcome: 'cached' },
  { event: 'expand', target: 'areas', children: 3, childPrefix: 'h5:' },
  { event: 'target', target: 'h5:states/AL', outcome: 'built' },
  { event: 'target', target: 'h5:states/AK', outcome: 'failed', error: 'worker exited with 1' },
  { event: 'target', target: 'h5:states/AZ', outcome: 'cached' },
  { event: 'summary', runId: 'r', status: 'failed', built: 2, cached: 2, failed: 1, cancelled: 0, skipped: 0, durationMs: 1200, filesHashed: 0, bytesHashed: 0 },
];

describe('loggers', () => {
  it('the terminal view lists built targets, sums a fan-out in one line, and still shows a failed child', () => {
    const out = terminal();
    const log = ttyLogger(out);
    for (const e of events) log.emit(e);
    log.close();
    // Drop the live status line ("[done/total] ...", erased with CR + clear-line before each print).
    const text = out.text().replace(/\[\d+\/\d+\][^\r\n]*/g, '').replace(/\r\x1b\[2K/g, '');
    expect(text).toMatch(/built\s+database 0\.3s/);
    expect(text).not.toMatch(/acs/);
    expect(text).not.toMatch(/h5:states\/AL/);
    expect(text).toMatch(/failed\s+h5:states\/AK\n\s+worker exited with 1/);
    expect(text).toContain('areas: 1 built, 1 cached, 1 failed');
    expect(text).toMatch(/failed: 2 built, 2 cached, 1 failed, 0 skipped in 1\.20s/);
  });

  it('a replayed run names the run it replayed, and its summary line still ends with its own run id', () => {
    const out = terminal();
    plainLogger(out).emit({ event: 'summary', runId: 'new', status: 'completed', built: 0, cached: 5, failed: 0, cancelled: 0, skipped: 0, durationMs: 120, filesHashed: 0, bytesHashed: 0, replayedFrom: 'old' });
    expect(out.text()).toBe('completed: nothing to be done, 5 cached in 0.12s; nothing changed since run old  (run new)\n');
  });

  it('off a terminal, only targets that ran or failed get a line, then the summary', () => {
    const out = terminal();
    const log = plainLogger(out);
    for (const e of events) log.emit(e);
    const text = out.text();
    expect(text).toMatch(/^built\s+database 0\.3s$/m);
    expect(text).toMatch(/^built\s+h5:states\/AL$/m);
    expect(text).toMatch(/^failed\s+h5:states\/AK\n\s+worker exited with 1$/m);
    expect(text).not.toMatch(/acs|AZ/);
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^failed: 2 built, 2 cached, 1 failed, 0 skipped/);
  });

  it('a no-op off a terminal is one line: nothing to be done', () => {
    const out = terminal();
    const log = plainLogger(out);
    for (let i = 0; i < 505; i++) log.emit({ event: 'target', target: `t${i}`, outcome: 'cached' });
    log.emit({ event: 'summary', runId: 'r', status: 'completed', built: 0, cached: 505, failed: 0, cancelled: 0, skipped: 0, durationMs: 300, filesHashed: 0, bytesHashed: 0 });
    expect(out.text()).toBe('completed: nothing to be done, 505 cached in 0.30s  (run r)\n');
  });

  it('the live status shows each running target with its elapsed time and latest log line; a fan-out is counted once its items are known', () => {
    const dir = mkdtempSync(join(tmpdir(), 'logger-'));
    try {
      const log = join(dir, 'fit.log');
      writeFileSync(log, '$ python fit\nepoch 1 loss 0.9\nepoch 2 loss 0.5\n');
      const out = terminal();
      const view = ttyLogger(out);
      view.emit({ event: 'run-start', runId: 'r', sha: 'a'.repeat(40), branch: 'main', dirty: false, goals: ['manifest'], total: 3, fanouts: ['areas'] });
      view.emit({ event: 'target-start', target: 'fit-regional', executor: 'local', logFile: log });
      const before = out.text().split('\r\x1b[2K').at(-1)!;
      expect(before).toMatch(/^\[0\/3 \(\+ items of areas: not known yet\)\] \d+s \| fit-regional \d+s "epoch 2 loss 0\.5"/);
      view.emit({ event: 'target', target: 'fit-regional', outcome: 'built' });
      view.emit({ event: 'expand', target: 'areas', children: 489, childPrefix: 'h5:' });
      const after = out.text().split('\r\x1b[2K').at(-1)!;
      // 3 - the fan-out + its 489 items.
      expect(after).toMatch(/^\[1\/491\] /);
      view.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the live status estimates each running target from its earlier durations, and the run from the walk\'s estimate; it says when there is none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'logger-'));
    try {
      const log = join(dir, 'fit.log');
      writeFileSync(log, 'epoch 3 loss 0.25\n');
      const out = terminal();
      (out as { columns: number }).columns = 160;
      const view = ttyLogger(out);
      view.emit({ event: 'run-start', runId: 'r', sha: 'a'.repeat(40), branch: 'main', dirty: false, goals: ['fit'], total: 3 });
      view.emit({
        event: 'target-start', target: 'fit-regional', executor: 'local', logFile: log,
        history: { previousMs: [600_000, 590_000], medianMs: 595_000 }, runEstimate: { leftMs: 900_000, unestimated: 0 },
      });
      const fit = out.text().split('\r\x1b[2K').at(-1)!;
      // 9m55s median minus the second or so elapsed; the run's 15m counted down likewise.
      expect(fit).toMatch(/^\[0\/3\] \d+s, ~1[45]m\d\ds left \| fit-regional \d+s ~9m5\ds left \(last runs: 10m00s, 9m50s\) "epoch 3 loss 0\.25"$/);
      view.emit({ event: 'target', target: 'fit-regional', outcome: 'built', durationMs: 590_000, runEstimate: { leftMs: 300_000, unestimated: 1 } });
      view.emit({ event: 'target-start', target: 'h5:states/CA', executor: 'local', history: { previousMs: [1500], medianMs: 1500, fromFanout: 'areas' }, runEstimate: { leftMs: 300_000, unestimated: 1 } });
      const area = out.text().split('\r\x1b[2K').at(-1)!;
      expect(area).toContain('(+1 target(s) with no previous run)');
      expect(area).toMatch(/^\[1\/3\] \d+s, ~[45]m\d\ds left \(\+1 target\(s\) with no previous run\) \| h5:states\/CA \d+s ~\ds left \(areas items took 2s\)$/);
      view.emit({ event: 'target', target: 'h5:states/CA', outcome: 'built', durationMs: 1500 });
      view.emit({ event: 'target-start', target: 'manifest', executor: 'local', history: { previousMs: [] }, runEstimate: { leftMs: 0, unestimated: 3 } });
      const none = out.text().split('\r\x1b[2K').at(-1)!;
      expect(none).toMatch(/^\[2\/3\] \d+s, no previous run to estimate from \| manifest \d+s \(no previous run to estimate from\)$/);
      // Nothing left: no estimate at all (not "past the estimate").
      view.emit({ event: 'target', target: 'manifest', outcome: 'built', durationMs: 10, runEstimate: { leftMs: 0, unestimated: 0 } });
      expect(out.text().split('\n').at(-1)!).toMatch(/^\[3\/3\] \d+s$/);
      view.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on a narrow terminal the log line gives way first, and the status never wraps', () => {
    const dir = mkdtempSync(join(tmpdir(), 'logger-'));
    try {
      const log = join(dir, 'fit.log');
      writeFileSync(log, `epoch 3 loss 0.25 ${'x'.repeat(200)}\n`);
      const out = terminal();
      (out as { columns: number }).columns = 90;
      const view = ttyLogger(out);
      view.emit({ event: 'run-start', runId: 'r', sha: 'a'.repeat(40), branch: 'main', dirty: false, goals: ['fit'], total: 3 });
      view.emit({ event: 'target-start', target: 'fit-regional', executor: 'local', logFile: log, history: { previousMs: [600_000], medianMs: 600_000 } });
      const status = out.text().split('\r\x1b[2K').at(-1)!;
      expect(status.length).toBeLessThanOrEqual(89);
      expect(status).toMatch(/fit-regional \d+s ~(10m00s|9m5\ds) left \(last runs: 10m00s\) "epoch 3 loss 0\.25 x+…"$/);
      view.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a target rebuilt with identical output and a fit resumed from its checkpoint say so, on a terminal and off it', () => {
    const done: Event[] = [
      { event: 'target', target: 'area-list', outcome: 'built', durationMs: 1200, identicalOutput: true },
      { event: 'target', target: 'fit-regional', outcome: 'built', durationMs: 4000, resumedFromCheckpoint: true },
    ];
    const plain = terminal();
    const ci = plainLogger(plain);
    for (const e of done) ci.emit(e);
    expect(plain.text()).toBe(
      "built     area-list 1.2s (output identical to the last run's: downstream stays cached (early cutoff))\n" +
        'built     fit-regional 4.0s (resumed from its checkpoint)\n',
    );
    const tty = terminal();
    const view = ttyLogger(tty);
    view.emit({ event: 'target-start', target: 'fit-regional', executor: 'local', resumedFromCheckpoint: true });
    expect(tty.text()).toMatch(/fit-regional \d+s \(resumed from its checkpoint\)/);
    for (const e of done) view.emit(e);
    view.close();
    expect(tty.text()).toContain("built     area-list 1.2s (output identical to the last run's: downstream stays cached (early cutoff))\n");
  });

  it('--json writes the schema header, then one JSON object per event and nothing else', () => {
    const out = terminal();
    const log = jsonLogger('pipeline', out);
    for (const e of events) log.emit(e);
    const lines = out.text().trimEnd().split('\n');
    expect(lines).toHaveLength(events.length + 1);
    expect(JSON.parse(lines[0]!)).toEqual({ event: 'schema', version: 1, command: 'pipeline' });
    expect(lines.slice(1).map((l) => JSON.parse(l).event)).toEqual(events.map((e) => e.event));
  });
});
