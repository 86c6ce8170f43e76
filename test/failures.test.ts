import { describe, expect, it } from 'vitest';
import { callStateSchema, remoteResultSchema } from '../src/executors/modal/protocol.ts';
import { exitCode, REMOTE_REASONS, unreachable, type Layer } from '../src/report/failures.ts';

/**
 * The failure vocabulary (src/report/failures.ts). Exhaustiveness is checked by the compiler
 * (`npx tsc --noEmit` covers this file): a view that leaves a layer out does not compile.
 */
describe('failure vocabulary', () => {
  it('a switch over the layers that leaves one out does not compile', () => {
    function withoutPublish(layer: Layer): number {
      switch (layer) {
        case 'usage':
          return 2;
        case 'target':
        case 'exec':
        case 'remote':
        case 'store':
          return 1;
        default:
          // @ts-expect-error -- 'publish' is not handled, so `layer` is not `never` here.
          return unreachable(layer);
      }
    }
    expect(() => withoutPublish('publish')).toThrow(/unhandled case: "publish"/);
  });

  it('usage failures exit 2, every other layer 1', () => {
    const layers: Layer[] = ['usage', 'target', 'exec', 'remote', 'store', 'publish'];
    expect(Object.fromEntries(layers.map((l) => [l, exitCode(l)]))).toEqual({ usage: 2, target: 1, exec: 1, remote: 1, store: 1, publish: 1 });
  });

  it('remote reasons are kebab-case codes, each once', () => {
    for (const reason of REMOTE_REASONS) expect(reason).toMatch(/^[a-z]+(-[a-z]+)+$/);
    expect(new Set(REMOTE_REASONS).size).toBe(REMOTE_REASONS.length);
  });

  it('a reason the runner sends is typed on arrival; one this build does not know becomes remote-error, message intact', () => {
    expect(callStateSchema.parse({ state: 'failed', reason: 'remote-preempted', message: 'lost' })).toEqual({ state: 'failed', reason: 'remote-preempted', message: 'lost' });
    expect(callStateSchema.parse({ state: 'failed', reason: 'cosmic-ray', message: 'bit flip' })).toEqual({ state: 'failed', reason: 'remote-error', message: 'bit flip' });
    const result = { key: 'k', ok: false, message: 'm', outputs: {}, startedAt: 0, runSeconds: 0, logTail: '' };
    expect(remoteResultSchema.parse({ ...result, reason: 'sha-mismatch' }).reason).toBe('sha-mismatch');
    expect(remoteResultSchema.parse({ ...result, reason: 'new-thing' }).reason).toBe('remote-error');
  });
});
