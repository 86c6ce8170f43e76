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
      expect(before).toMatch(/^\[0\/3 \(\+ items of areas: not known yet\)\] \d+s fit-regional \d+s "epoch 2 loss 0\.5"/);
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
