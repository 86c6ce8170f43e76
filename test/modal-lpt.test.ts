import { describe, expect, it } from 'vitest';
import { lpt } from '../src/executors/lpt.ts';
import { ModalBatcher, type BatchItem } from '../src/executors/modal/batcher.ts';

const items = (spec: string) => spec.split(' ').map((s) => ({ name: s[0]!, weight: Number(s.slice(1)) }));
const names = (bins: { name: string }[][]) => bins.map((b) => b.map((i) => i.name));

/** LPT partitioning as the real pipeline's test_local_h5_partitioning pins it down. */
describe('lpt', () => {
  it('A5 B5 C2 D2 over 2 workers -> [[A, C], [B, D]], loads 7 and 7', () => {
    const bins = lpt(items('A5 B5 C2 D2'), 2);
    expect(names(bins)).toEqual([['A', 'C'], ['B', 'D']]);
    expect(bins.map((b) => b.reduce((s, i) => s + i.weight, 0))).toEqual([7, 7]);
  });

  it('is deterministic, never uses more bins than items, and drops empty bins', () => {
    expect(names(lpt(items('A1 B1'), 50))).toEqual([['A'], ['B']]);
    expect(lpt(items('A1 B1'), 0)).toEqual([]);
    expect(lpt([], 8)).toEqual([]);
    const many = items('A7 B1 C52 D11 E1 F9 G3 H1 I1 J4');
    expect(names(lpt(many, 3))).toEqual(names(lpt(many, 3)));
    expect(lpt(many, 3)).toHaveLength(3);
  });

  it('balances the real weights: a state weighs its districts, NYC 11, a district 1', () => {
    const work = [{ name: 'CA', weight: 52 }, { name: 'NYC', weight: 11 }, ...Array.from({ length: 52 }, (_, i) => ({ name: `CA-${i}`, weight: 1 }))];
    const loads = lpt(work, 2).map((b) => b.reduce((s, i) => s + i.weight, 0));
    expect(loads.sort((a, b) => a - b)).toEqual([57, 58]);
  });
});

describe('batcher', () => {
  type Item = BatchItem & { tag?: string };
  const make = (dispatched: string[][][]) =>
    new ModalBatcher<Item>({
      quietMs: 20,
      maxWaitMs: 1000,
      dispatch: async (batches) => {
        dispatched.push(batches.map((b) => b.map((i) => i.name)));
        return new Map(batches.flatMap((b, n) => b.map((i) => [i, n] as const)));
      },
    });

  it('gathers what arrives together, orders by name (not arrival), partitions per group', async () => {
    const dispatched: string[][][] = [];
    const batcher = make(dispatched);
    const add = (name: string, weight: number, group = 'cpu') => batcher.add({ name, weight, group, workers: 2 });
    const settled = await Promise.all([add('D', 2), add('B', 5), add('C', 2), add('A', 5), add('G', 1, 'gpu')]);
    expect(dispatched).toEqual([[['A', 'C'], ['B', 'D'], ['G']]]);
    expect(settled).toEqual([1, 1, 0, 0, 2]);
  });

  it('one late arrival makes a batch of its own', async () => {
    const dispatched: string[][][] = [];
    const batcher = make(dispatched);
    await batcher.add({ name: 'A', weight: 1, group: 'cpu', workers: 8 });
    await batcher.add({ name: 'B', weight: 1, group: 'cpu', workers: 8 });
    expect(dispatched).toEqual([[['A']], [['B']]]);
  });
});
