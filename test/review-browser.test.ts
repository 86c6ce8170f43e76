import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPublishStores, publishConfig } from '../src/publish/config.ts';
import { readRegistry } from '../src/publish/registry.ts';
import { cleanup, cli, exampleRepo, SMALL, summary, tempDir, type CliResult } from './helpers.ts';

/**
 * The review page as a reviewer sees it, in a real headless Chromium (Debian's package; .ci/run
 * installs it): a first example run is promoted to the local store, a second one is built with
 * another SEED, and `./build.ts report` writes its page against the promoted version. The page
 * must draw every chart, make no network request and log no console error; its targets table
 * filters, its state grid has 51 tiles and opens a state's districts. Also here, on the same
 * runs: the page the pipeline published with the diagnostics, `diff`, and promote's quality gates
 * (refusal with the numbers, FORCE=1 recorded in the registry entry).
 *
 * Without Chromium the browser part fails in CI and is skipped locally, saying so.
 */
const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !process.env.CI) console.warn(`review-browser: skipping the browser test: ${CHROMIUM} is missing (apt-get install -y chromium)`);

let repo: string;
let work: string;
let cache: string;
let runA: string;
let runB: string;

const run = (args: string[]): Promise<CliResult> => cli([...args, `REPO=${repo}`], { cache });
const published = (result: CliResult, step: string) => result.events.filter((e) => e.event === 'publish' && e.step === step);

beforeAll(async () => {
  repo = exampleRepo();
  work = tempDir('review-browser');
  cache = join(work, 'cache');
  const first = await run(['pipeline', ...SMALL, '--json']);
  expect(first.code, first.stderr).toBe(0);
  runA = summary(first).runId as string;
  expect((await run(['promote', `RUN_ID=${runA}`, '--yes'])).code).toBe(0);
  const second = await run(['pipeline', ...SMALL, 'SEED=43', '--json']);
  expect(second.code, second.stderr).toBe(0);
  runB = summary(second).runId as string;
  // The pipeline published the page beside the diagnostics and printed where.
  const report = published(second, 'report')[0];
  expect(report, second.stdout).toBeDefined();
  const url = (report!.data as { url: string }).url;
  expect(url).toBe(`file:${join(cache, 'store')}/calibration/runs/${runB}/diagnostics/report.html`);
  expect(statSync(url.slice('file:'.length)).size).toBeGreaterThan(200_000);
}, 240_000);
afterAll(() => cleanup(repo, work));

describe('review', () => {
  it.skipIf(!haveChromium && !process.env.CI)('the page of a run against the promoted version, in a real browser', async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: .ci/run installs it (apt-get install -y chromium)`);
    const written = await run(['report', `RUN_ID=${runB}`, '--json']);
    expect(written.code, written.stderr).toBe(0);
    const { path, bytes } = written.events.find((e) => e.event === 'report') as { path: string; bytes: number };
    expect(bytes).toBe(statSync(path).size);
    const html = readFileSync(path, 'utf8');
    expect(html.match(/<script[^>]+src=|<link[^>]+href=|<img[^>]+src=/g)).toBeNull(); // everything inline
    expect(html).toContain(`default-src 'none'`); // and the page's policy forbids any request

    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('request', (r) => requests.push(r.url()));
      const own = pathToFileURL(path).href;
      const first = pathToFileURL(join(cache, 'runs', runA, 'review', 'report.html')).href;
      await page.route('**/*', (route) => ([own, first].includes(route.request().url()) ? route.continue() : route.abort()));
      await page.goto(own);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });
      expect(page.url()).toBe(own);

      expect(await page.textContent('header.top h1')).toBe(`Review of run ${runB}`);
      expect(await page.textContent('header.top')).toMatch(/compared with version 1\.72\.3 \(run /);
      // Every chart drew its data: Chart.js has elements for each dataset, and the canvas has coloured pixels.
      const charts = await page.$$eval('canvas.chart', (canvases) =>
        canvases.map((c) => {
          const chart = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): { data: { datasets: unknown[] }; getDatasetMeta(i: number): { data: unknown[] } } } }).Chart.getChart(c as HTMLCanvasElement)!;
          const { data } = (c as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, (c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height);
          let coloured = 0;
          for (let i = 0; i < data.length; i += 4) if (data[i + 3]! > 0 && !(data[i]! > 240 && data[i + 1]! > 240 && data[i + 2]! > 240)) coloured++;
          return { datasets: chart.data.datasets.length, marks: chart.data.datasets.map((_, i) => chart.getDatasetMeta(i).data.length), coloured };
        }),
      );
      // Loss and error curves of both fits (4), the two error distributions, state file sizes, the timeline.
      expect(charts).toHaveLength(8);
      for (const c of charts) {
        expect(c.coloured).toBeGreaterThan(500);
        expect(Math.min(...c.marks)).toBeGreaterThan(0);
      }
      // The curves and distributions show this run beside the promoted version.
      expect(charts.slice(0, 6).map((c) => c.datasets)).toEqual([2, 2, 2, 2, 2, 2]);

      const rows = () => page.$$eval('#targets-table tbody tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent ?? '')));
      const all = await rows();
      expect(all.length).toBeGreaterThan(100);
      const count = async () => (await page.textContent('#targets-count'))!;
      // Unfiltered, every target of both fits matches.
      const counted = /of (\d+) matching \((\d+) targets\)/.exec(await count());
      expect(counted, await count()).not.toBeNull();
      expect(counted![1]).toBe(counted![2]);
      expect(Number(counted![2])).toBeGreaterThan(all.length);
      await page.selectOption('#filter-level', 'national');
      const national = await rows();
      expect(national.length).toBeGreaterThan(0);
      expect(national.length).toBeLessThan(all.length);
      expect(new Set(national.map((r) => r[2]))).toEqual(new Set(['national']));
      expect(national.every((r) => r[9] !== '\u2013')).toBe(true); // the promoted version's number beside each
      await page.selectOption('#filter-fit', 'national');
      expect((await rows()).every((r) => r[0] === 'national')).toBe(true);
      await page.selectOption('#filter-fit', '');
      await page.selectOption('#filter-level', '');
      await page.fill('#filter-text', 'CA-01');
      expect(new Set((await rows()).map((r) => r[3]))).toEqual(new Set(['CA-01']));
      await page.fill('#filter-text', '');
      await page.click('#targets-table thead th:nth-child(6)'); // sort by target value
      expect((await rows()).length).toBe(all.length);

      expect(await page.$$eval('#state-grid .tile', (t) => t.length)).toBe(51);
      await page.click('#state-grid [data-state="CA"]');
      expect(await page.textContent('#district-panel h3')).toMatch(/^CA: \d+ districts$/);
      expect(await page.$$eval('#district-tiles .tile', (t) => t.length)).toBeGreaterThan(10);
      expect(await page.$$eval('#area-table tbody tr', (t) => t.length)).toBeGreaterThan(10);
      await page.selectOption('#tile-mode', 'change');
      expect(await page.$$eval('#state-grid .tile', (t) => t.length)).toBe(51);

      expect(await page.$$eval('#kinds-table tbody tr', (t) => t.map((r) => r.children[0]!.textContent))).toEqual(['national', 'states', 'districts', 'cities', 'calibration', 'datasets']);
      expect(await page.textContent('#publish')).toMatch(/\d+ added, \d+ removed, \d+ changed, \d+ unchanged/);

      const shot = join(work, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      if (process.env.REVIEW_SCREENSHOT) copyFileSync(shot, process.env.REVIEW_SCREENSHOT);
      expect(errors).toEqual([]);
      expect(requests).toEqual([own]);

      // The first run's page, published when nothing was registered yet: it says so, and still draws.
      await page.goto(first);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });
      expect(await page.textContent('#notes')).toContain('nothing to compare with: no version is registered yet');
      expect(await page.textContent('header.top')).toContain('compared with nothing: no registered version yet');
      expect(await page.$$eval('#state-grid .tile', (t) => t.length)).toBe(51);
      expect(await page.$$eval('canvas.chart', (c) => c.length)).toBe(8);
      expect(errors).toEqual([]);
      expect(requests).toEqual([own, first]);
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('diff in the terminal, and promote refuses past a quality gate unless FORCE=1, which the registry records', async () => {
    const diff = await run(['diff', `RUN_ID=${runB}`]);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/^review: run \S+ against version 1\.72\.3$/m);
    expect(diff.stdout).toMatch(/^regional\s+all\s+3725\s/m);
    expect(diff.stdout).toMatch(/^\s+district\s+3052\s/m);
    expect(diff.stdout).toMatch(/files against the base: 0 added, 0 removed, \d+ changed/);
    const json = await run(['diff', `RUN_ID=${runB}`, 'AGAINST=1.72.3', '--json']);
    const numbers = json.events.find((e) => e.event === 'diff') as { against: string; fits: Array<{ run: { mean: number } }> };
    expect(numbers.against).toBe('version 1.72.3');
    const unknown = await run(['diff', `RUN_ID=${runB}`, 'AGAINST=9.9.9']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^error: version 9\.9\.9 is not registered in file:.*; list versions with \.\/build\.ts versions\n$/);

    const plan = await run(['promote', `RUN_ID=${runB}`, 'VERSION=1.72.4', '-n']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/review: run \S+ against version 1\.72\.3/);
    const mean = (numbers.fits[0]!.run.mean * 100).toFixed(1);
    const gated = await run(['promote', `RUN_ID=${runB}`, 'VERSION=1.72.4', 'MAX_MEAN_ERROR=1', '--yes']);
    expect(gated.code).toBe(1);
    expect(gated.stdout).toContain(`promote refused (quality-gate): run ${runB} fails its quality gates: regional fit: mean error ${mean}% exceeds MAX_MEAN_ERROR=1 (`);
    const forced = await run(['promote', `RUN_ID=${runB}`, 'VERSION=1.72.4', 'MAX_MEAN_ERROR=1', 'FORCE=1', '--yes']);
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    const stores = await openPublishStores(publishConfig({}, {}, cache), { action: 'test', write: false });
    const read = await readRegistry(stores.registryHome);
    if (!read.ok) throw new Error(read.failure.message);
    const registry = read.value.registry;
    const entry = registry.versions.find((v) => v.version === '1.72.4')!;
    const national = (numbers.fits[1]!.run.mean * 100).toFixed(1);
    expect(entry.quality_override).toEqual({
      forced: true,
      failed: [expect.stringContaining(`regional fit: mean error ${mean}% exceeds MAX_MEAN_ERROR=1`), expect.stringContaining(`national fit: mean error ${national}% exceeds MAX_MEAN_ERROR=1`)],
    });
    expect(registry.versions.find((v) => v.version === '1.72.3')!.quality_override).toBeUndefined();
  }, 120_000);
});
