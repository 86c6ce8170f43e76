import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PAGE_SCRIPT, PAGE_STYLE } from './page-script.ts';
import type { ReportData } from './report-data.ts';

/**
 * The review page: one self-contained HTML file, with the charting library, the page's style and
 * script, and the data inline, and a Content-Security-Policy that forbids every network request,
 * so the page shows the same thing from a laptop, a store URL or an archive, offline.
 *
 * Charting library: Chart.js 4 (chart.js on npm, MIT, maintained by the Chart.js organisation,
 * releases every few months). Its UMD build is 210 kB minified (71 kB gzipped) with no
 * dependencies, and it draws everything the page needs on canvas: line charts with logarithmic
 * axes (loss curves beside production's), grouped bars (the error distribution, file sizes) and
 * floating horizontal bars (the target timeline), with tooltips and legends. The alternatives
 * weighed: uPlot is smaller (~50 kB) and faster on huge series, but has no bar/floating-bar
 * charts or tooltips without hand-written plugins; Apache ECharts has everything (maps too) but
 * is ~1 MB minified, five times this page's usual size. The state tile grid and the tables are
 * plain DOM, not charts.
 */

/** The Chart.js UMD bundle shipped in node_modules (the dist/ CLI bundle keeps it external). */
export async function chartLibrary(): Promise<string> {
  const entry = createRequire(import.meta.url).resolve('chart.js');
  return readFile(join(dirname(entry), 'chart.umd.min.js'), 'utf8');
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Inline script text may not contain `</script`. */
const inlineScript = (code: string): string => code.replace(/<\/(script)/gi, '<\\/$1');

/** Renders the page from its data and the charting library's code. */
export function renderReportPage(data: ReportData, chartJs: string): string {
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const title = `Review: ${data.run.label}${data.base ? ` vs ${data.base.label}` : ''}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<main></main>
<noscript><p>This review page draws its tables and charts with JavaScript; enable it to see them.</p></noscript>
<script type="application/json" id="report-data">${json}</script>
<script>${inlineScript(chartJs)}</script>
<script>${inlineScript(PAGE_SCRIPT)}</script>
</body>
</html>
`;
}
