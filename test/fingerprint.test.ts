import { describe, expect, it } from 'vitest';
import { actionKey, diffFingerprints, makeFingerprint } from '../src/fingerprint.ts';
import { digestBytes } from '../src/caching/hash.ts';
import { checkRunId, makeRunId } from '../src/run.ts';

const base = () =>
  makeFingerprint({
    target: 'database',
    command: ['{python}', '-m', 'db', '--year', '2024'],
    vars: { YEAR: '2024' },
    sources: { 'db/etl_age.py': digestBytes('a'), 'db/etl_snap.py': digestBytes('b') },
    upstream: { 'python-env env': digestBytes('env') },
    env: { TOKEN: null },
    outputs: ['artifacts/policy_data.db'],
  });

describe('fingerprint', () => {
  it('the key is stable and independent of record insertion order', () => {
    const a = base();
    const b = makeFingerprint({ ...a, sources: { 'db/etl_snap.py': digestBytes('b'), 'db/etl_age.py': digestBytes('a') } });
    expect(actionKey(a)).toBe(actionKey(b));
    expect(actionKey(a)).toMatch(/^[0-9a-f]{32}$/);
  });

  it('names exactly what changed', () => {
    const before = base();
    const after = makeFingerprint({
      ...before,
      vars: { YEAR: '2025' },
      sources: { 'db/etl_age.py': digestBytes('a2'), 'db/etl_new.py': digestBytes('n') },
      env: { TOKEN: digestBytes('secret') },
    });
    const changes = diffFingerprints(before, after).map((c) => `${c.kind} ${c.name}: ${c.detail}`);
    expect(changes).toContain('var YEAR: 2024 -> 2025');
    expect(changes.some((c) => c.startsWith('source db/etl_age.py: content changed'))).toBe(true);
    expect(changes).toContain('source db/etl_snap.py: removed');
    expect(changes).toContain('source db/etl_new.py: added');
    expect(changes).toContain('env TOKEN: was unset, now set');
    expect(changes.join('\n')).not.toContain('secret');
    expect(actionKey(before)).not.toBe(actionKey(after));
  });

  it('XXH3-128 matches the reference value of xxhsum -H2', () => {
    expect(digestBytes('abc')).toBe('06b05ab6733a618578af5f94892f3950');
  });
});

describe('run ids', () => {
  it('have the real pipeline format', () => {
    expect(makeRunId('1.72.3', 'abc12345ffffffffffffffffffffffffffffffff', new Date(Date.UTC(2026, 2, 19, 12, 0, 0)))).toBe('1.72.3_abc12345_20260319_120000');
  });
  it('refuse path tricks', () => {
    expect(() => checkRunId('../x')).toThrow(/path separator/);
    expect(() => checkRunId('1.0_abc12345_20260101_000000/..')).toThrow(/path separator/);
    expect(checkRunId('1.0_abc12345_20260101_000000')).toBe('1.0_abc12345_20260101_000000');
  });
});
