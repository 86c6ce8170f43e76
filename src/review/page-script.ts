/**
 * The review page's own style and script, inlined into the HTML with Chart.js and the data
 * (report-page.ts). The script only reads the embedded JSON (`#report-data`, see report-data.ts)
 * and builds the sections from it: charts are Chart.js configurations, tables and the state tile
 * grid are plain DOM. It is plain ES2019 run by the browser, not by Node, so it lives here as text;
 * test/review-browser.test.ts drives it in a real Chromium. No template placeholders or backticks
 * inside: it is a String.raw literal.
 */

export const PAGE_STYLE = String.raw`
:root { --run: #2563eb; --base: #9ca3af; --bad: #dc2626; --good: #16a34a; --ink: #111827; --mute: #6b7280; --line: #e5e7eb; --card: #f9fafb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: #fff; }
header.top { background: #0f172a; color: #f8fafc; padding: 18px 28px; }
header.top h1 { margin: 0 0 6px; font-size: 20px; font-weight: 600; }
header.top .facts { display: flex; flex-wrap: wrap; gap: 6px 22px; font-size: 13px; color: #cbd5e1; }
header.top .facts b { color: #f8fafc; font-weight: 600; }
header.top a { color: #93c5fd; }
header.top summary { color: #cbd5e1; margin-top: 8px; }
main { max-width: 1240px; margin: 0 auto; padding: 8px 28px 60px; }
section { margin-top: 28px; }
h2 { font-size: 17px; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 14px 0 6px; color: #374151; }
.notes { background: #fffbeb; border: 1px solid #fcd34d; border-radius: 6px; padding: 8px 14px; margin-top: 16px; }
.notes li { margin: 2px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .big { font-size: 26px; font-weight: 650; }
.card .sub { color: var(--mute); font-size: 12.5px; }
.up { color: var(--bad); } .down { color: var(--good); }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.chartbox { position: relative; height: 260px; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
.chartbox.tall { height: 420px; overflow-y: auto; }
.missing { color: var(--mute); font-style: italic; border: 1px dashed var(--line); border-radius: 8px; padding: 18px; margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child, td.l, th.l { text-align: left; }
thead th { position: sticky; top: 0; background: #f3f4f6; cursor: pointer; user-select: none; }
thead th.sorted::after { content: " \25BE"; } thead th.sorted.asc::after { content: " \25B4"; }
td.name { max-width: 330px; overflow: hidden; text-overflow: ellipsis; text-align: left; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 11.5px; }
.tablebox { max-height: 460px; overflow: auto; border: 1px solid var(--line); border-radius: 8px; }
.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin-bottom: 8px; }
.filters label { color: var(--mute); font-size: 12.5px; }
select, input[type=search] { font: inherit; padding: 3px 6px; border: 1px solid #d1d5db; border-radius: 5px; }
.count { color: var(--mute); font-size: 12.5px; }
tr.unachievable td { color: var(--mute); }
.states { display: grid; grid-template-columns: repeat(12, 1fr); grid-template-rows: repeat(8, 54px); gap: 4px; max-width: 760px; }
.tile { border-radius: 5px; display: flex; flex-direction: column; align-items: center; justify-content: center; cursor: pointer; font-weight: 600; font-size: 13px; color: #111; border: 2px solid transparent; }
.tile small { font-weight: 400; font-size: 10.5px; }
.tile.selected { border-color: #111; }
.districts { display: flex; flex-wrap: wrap; gap: 4px; margin: 8px 0; }
.districts .tile { width: 64px; height: 44px; }
.legend { display: flex; gap: 2px; align-items: center; font-size: 11.5px; color: var(--mute); margin: 8px 0; }
.legend span.sw { width: 34px; height: 12px; display: inline-block; }
.statewrap { display: grid; grid-template-columns: minmax(0, 760px) minmax(0, 1fr); gap: 20px; }
details { margin-top: 8px; } summary { cursor: pointer; color: #1f2937; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.vars { display: flex; flex-wrap: wrap; gap: 4px 8px; margin-top: 6px; }
.vars code { background: #1e293b; color: #e2e8f0; padding: 1px 6px; border-radius: 4px; }
`;

export const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var FITS = ['regional', 'national'];
  var RUN = '#2563eb', BASE = '#9ca3af', BAD = '#dc2626';
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = 'system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif';

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'class') e.className = attrs[k];
      else if (k === 'style') e.style.cssText = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (kids || []).forEach(function (c) { if (c != null) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function fin(x) { return x !== null && x !== undefined && isFinite(x); }
  function pct(x) { return fin(x) ? (x * 100).toFixed(1) + '%' : '\u2013'; }
  function pts(x) { return fin(x) ? (x >= 0 ? '+' : '') + (x * 100).toFixed(1) + ' pt' : '\u2013'; }
  function num(x) { return fin(x) ? (Math.abs(x) >= 1e6 ? x.toExponential(3) : x.toLocaleString('en-US', { maximumFractionDigits: 2 })) : '\u2013'; }
  function bytes(n) {
    if (!fin(n)) return '\u2013';
    var u = ['B', 'kB', 'MB', 'GB', 'TB'], v = Math.abs(n), i = 0;
    while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
    return (n < 0 ? '-' : '') + (i === 0 ? v : v.toFixed(1)) + ' ' + u[i];
  }
  function dbytes(n) { return fin(n) ? (n >= 0 ? '+' : '') + bytes(n) : '\u2013'; }
  function secs(ms) { return fin(ms) ? (ms / 1000).toFixed(1) + ' s' : '\u2013'; }
  function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }
  function missing(text) { return el('p', { class: 'missing', text: text }); }
  function chartBox(cls) { var c = el('canvas', { class: 'chart' }); return { box: el('div', { class: 'chartbox' + (cls ? ' ' + cls : '') }, [c]), canvas: c }; }
  function changeClass(x) { return fin(x) ? (x > 0 ? 'up' : x < 0 ? 'down' : '') : ''; }
  function section(id, title) { var s = el('section', { id: id }, [el('h2', { text: title })]); document.querySelector('main').appendChild(s); return s; }

  // Error colour: green at 0, yellow at 10%, red from 50%; grey when unknown.
  var STOPS = [[0, [26, 152, 80]], [0.05, [166, 217, 106]], [0.1, [254, 224, 139]], [0.25, [252, 141, 89]], [0.5, [215, 48, 39]]];
  function errColour(x) {
    if (!fin(x)) return '#e5e7eb';
    x = Math.abs(x);
    for (var i = 1; i < STOPS.length; i++) {
      if (x <= STOPS[i][0]) {
        var a = STOPS[i - 1], b = STOPS[i], t = (x - a[0]) / (b[0] - a[0]);
        return 'rgb(' + [0, 1, 2].map(function (k) { return Math.round(a[1][k] + (b[1][k] - a[1][k]) * t); }).join(',') + ')';
      }
    }
    return 'rgb(215,48,39)';
  }
  // Change colour: blue better, red worse, white unchanged (saturates at 10 points).
  function changeColour(x) {
    if (!fin(x)) return '#e5e7eb';
    var t = Math.min(1, Math.abs(x) / 0.1), c = x > 0 ? [215, 48, 39] : [33, 102, 172];
    return 'rgb(' + c.map(function (v) { return Math.round(255 + (v - 255) * t); }).join(',') + ')';
  }

  // ---- header ----
  var R = D.run, B = D.base;
  var facts = [];
  function fact(k, v) { if (v !== undefined && v !== null && v !== '') facts.push(el('span', {}, [k + ' ', el('b', { text: String(v) })])); }
  fact('version', R.version);
  fact('status', R.status);
  fact('sha', R.sha ? R.sha.slice(0, 12) + (R.dirty ? ' (dirty)' : '') : undefined);
  fact('branch', R.branch);
  fact('started', R.startedAt);
  fact('duration', R.durationMs !== undefined ? secs(R.durationMs) : undefined);
  if (R.counts) fact('targets', R.counts.built + ' built, ' + R.counts.cached + ' cached, ' + R.counts.failed + ' failed');
  if (D.timeline) fact('GPU-hours', D.timeline.gpuHours.spent.toFixed(3) + ' spent, ' + D.timeline.gpuHours.saved.toFixed(3) + ' saved');
  fact('compared with', B ? B.label + (B.runId ? ' (run ' + B.runId + ')' : '') : 'nothing: no registered version yet');
  var vars = el('div', { class: 'vars' }, Object.keys(R.variables || {}).sort().map(function (k) { return el('code', { text: k + '=' + R.variables[k] }); }));
  var logs = (R.logs || []).length ? el('details', {}, [el('summary', { text: R.logs.length + ' log files' })].concat(R.logs.map(function (l) { return el('div', {}, [el('a', { href: l.href, text: l.name })]); }))) : null;
  document.body.insertBefore(el('header', { class: 'top' }, [el('h1', { text: 'Review of ' + R.label }), el('div', { class: 'facts' }, facts), vars, logs]), document.querySelector('main'));
  if (D.notes.length) document.querySelector('main').appendChild(el('div', { class: 'notes', id: 'notes' }, [el('b', { text: 'Not shown or incomplete:' }), el('ul', {}, D.notes.map(function (n) { return el('li', { text: n }); }))]));

  // ---- summary ----
  var sum = section('summary', 'Fits at a glance');
  var cards = el('div', { class: 'cards' });
  D.numbers.fits.forEach(function (f) {
    if (!f.run) { cards.appendChild(el('div', { class: 'card' }, [el('div', { class: 'sub', text: f.fit + ' fit' }), missing('no per-target diagnostics')])); return; }
    var d = f.base ? f.run.mean - f.base.mean : null;
    cards.appendChild(el('div', { class: 'card' }, [
      el('div', { class: 'sub', text: f.fit + ' fit: mean |relative error| over ' + f.run.achievable + ' targets' }),
      el('div', { class: 'big' }, [pct(f.run.mean) + ' ', el('span', { class: changeClass(d), style: 'font-size:15px', text: f.base ? pts(d) + ' vs ' + pct(f.base.mean) : '' })]),
      el('div', { class: 'sub', text: 'median ' + pct(f.run.median) + ', p90 ' + pct(f.run.p90) + ', ' + f.run.over10 + ' more than 10% off, worst ' + (f.run.worst ? pct(f.run.worst.relError) : '\u2013') }),
      el('div', { class: 'sub', text: f.changes ? plural(f.changes.worse, 'target') + ' worse and ' + f.changes.better + ' better by more than ' + (D.numbers.threshold * 100).toFixed(1) + ' pt; ' + f.changes.added + ' new, ' + f.changes.removed + ' gone' : 'no per-target comparison' }),
    ]));
  });
  sum.appendChild(cards);

  // ---- curves ----
  var cur = section('curves', 'Convergence: loss and mean error by epoch (this run vs ' + (B ? B.label : 'no base') + ')');
  FITS.forEach(function (fit) {
    var F = D.fits[fit];
    cur.appendChild(el('h3', { text: fit + ' fit' + (F.curve ? ' (' + F.curve.length + ' logged epochs)' : '') }));
    if (!F.curve || F.curve.length === 0) { cur.appendChild(missing('No calibration_log.csv for the ' + fit + ' fit of this run: its fit was run without --log-freq.')); return; }
    var row = el('div', { class: 'grid2' });
    [['loss', 'loss (sum of squared relative errors)', 'logarithmic'], ['meanRelError', 'mean |relative error|', 'linear']].forEach(function (spec) {
      var b = chartBox();
      row.appendChild(b.box);
      var sets = [{ label: 'this run', data: F.curve.map(function (p) { return { x: p.epoch, y: spec[0] === 'meanRelError' ? p.meanRelError * 100 : p.loss }; }), borderColor: RUN, backgroundColor: RUN, pointRadius: 2, borderWidth: 2 }];
      if (F.baseCurve && F.baseCurve.length) sets.push({ label: B.label, data: F.baseCurve.map(function (p) { return { x: p.epoch, y: spec[0] === 'meanRelError' ? p.meanRelError * 100 : p.loss }; }), borderColor: BASE, backgroundColor: BASE, borderDash: [6, 4], pointRadius: 2, borderWidth: 2 });
      new Chart(b.canvas, { type: 'line', data: { datasets: sets }, options: { parsing: true, scales: { x: { type: 'linear', title: { display: true, text: 'epoch' } }, y: { type: spec[2], title: { display: true, text: spec[0] === 'meanRelError' ? '%' : 'loss' } } }, plugins: { title: { display: true, text: spec[1] }, legend: { labels: { usePointStyle: true, pointStyle: 'line' } } } } });
    });
    cur.appendChild(row);
  });

  // ---- distribution ----
  var dist = section('distribution', 'Distribution of |relative error| (achievable targets)');
  var binLabels = D.bins.map(function (e, i) { return (i === 0 ? '\u2264' : (D.bins[i - 1] * 100) + '\u2013') + (e * 100) + '%'; }).concat(['>' + (D.bins[D.bins.length - 1] * 100) + '%']);
  var drow = el('div', { class: 'grid2' });
  FITS.forEach(function (fit) {
    var F = D.fits[fit];
    if (!F.histogram) { drow.appendChild(missing('No unified_diagnostics.csv for the ' + fit + ' fit.')); return; }
    var b = chartBox();
    drow.appendChild(b.box);
    var sets = [{ label: 'this run', data: F.histogram, backgroundColor: RUN }];
    if (F.baseHistogram) sets.push({ label: B.label, data: F.baseHistogram, backgroundColor: BASE });
    new Chart(b.canvas, { type: 'bar', data: { labels: binLabels, datasets: sets }, options: { plugins: { title: { display: true, text: fit + ' fit: targets per error band' } }, scales: { y: { title: { display: true, text: 'targets' } } } } });
  });
  dist.appendChild(drow);

  // ---- worst targets ----
  var wt = section('targets', 'Targets, worst first (sortable, filterable)');
  var T = D.targets;
  if (!T.length) wt.appendChild(missing('No per-target diagnostics in this run.'));
  else {
    var uniq = function (i) { var s = {}; T.forEach(function (r) { s[r[i]] = 1; }); return Object.keys(s).sort(); };
    var select = function (id, label, values) {
      var s = el('select', { id: id }, [el('option', { value: '', text: 'all' })].concat(values.map(function (v) { return el('option', { value: v, text: v }); })));
      return [el('label', { for: id, text: label }), s];
    };
    var filters = el('div', { class: 'filters' }, [].concat(
      select('filter-fit', 'fit', FITS), select('filter-level', 'geography level', uniq(2)), select('filter-variable', 'variable', uniq(4)),
      [el('label', { for: 'filter-text', text: 'name or area' }), el('input', { type: 'search', id: 'filter-text', placeholder: 'e.g. CA or snap' })],
      [el('label', {}, [el('input', { type: 'checkbox', id: 'filter-worse' }), ' only worse than ' + (B ? B.label : 'base')])],
      [el('span', { class: 'count', id: 'targets-count' })]));
    wt.appendChild(filters);
    // columns: key, label, value of a row, formatter
    var cols = [
      ['fit', 'fit', function (r) { return r[0]; }, String],
      ['name', 'target', function (r) { return r[1]; }, String],
      ['level', 'level', function (r) { return r[2]; }, String],
      ['area', 'area', function (r) { return r[3]; }, String],
      ['variable', 'variable', function (r) { return r[4]; }, String],
      ['value', 'target value', function (r) { return r[5]; }, num],
      ['estimate', 'estimate', function (r) { return r[6]; }, num],
      ['err', 'rel. error', function (r) { return r[7]; }, pct],
      ['abs', '|rel. error|', function (r) { return Math.abs(r[7]); }, pct],
      ['berr', (B ? B.label : 'base') + ' rel. error', function (r) { return r[10]; }, pct],
      ['chg', 'change', function (r) { return r[10] === null ? null : Math.abs(r[7]) - Math.abs(r[10]); }, pts],
    ];
    var sort = { col: 8, asc: false };
    var thead = el('tr', {}, cols.map(function (c, i) { var th = el('th', { class: i < 5 ? 'l' : '', 'data-col': String(i), text: c[1] }); return th; }));
    var tbody = el('tbody');
    var table = el('table', { id: 'targets-table' }, [el('thead', {}, [thead]), tbody]);
    wt.appendChild(el('div', { class: 'tablebox' }, [table]));
    var LIMIT = 300;
    var render = function () {
      var fit = document.getElementById('filter-fit').value, level = document.getElementById('filter-level').value, variable = document.getElementById('filter-variable').value;
      var text = document.getElementById('filter-text').value.trim().toLowerCase(), worse = document.getElementById('filter-worse').checked;
      var rows = T.filter(function (r) {
        return (!fit || r[0] === fit) && (!level || r[2] === level) && (!variable || r[4] === variable) && (!text || r[1].toLowerCase().indexOf(text) >= 0 || r[3].toLowerCase() === text) &&
          (!worse || (r[10] !== null && Math.abs(r[7]) - Math.abs(r[10]) > D.numbers.threshold));
      });
      var key = cols[sort.col][2];
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        var c = x < y ? -1 : x > y ? 1 : 0;
        return sort.asc ? c : -c;
      });
      tbody.textContent = '';
      rows.slice(0, LIMIT).forEach(function (r) {
        tbody.appendChild(el('tr', { class: r[8] ? '' : 'unachievable' }, cols.map(function (c, i) {
          var v = c[2](r), td = el('td', { text: c[3](v) });
          if (i === 1) { td.className = 'name'; td.title = r[1]; }
          else if (i < 5) td.className = 'l';
          if (c[0] === 'chg') td.className = changeClass(v);
          if (c[0] === 'abs') td.style.background = errColour(v);
          return td;
        })));
      });
      document.getElementById('targets-count').textContent = 'showing ' + Math.min(LIMIT, rows.length) + ' of ' + rows.length + ' matching (' + T.length + ' targets)';
      Array.prototype.forEach.call(thead.children, function (th, i) { th.className = (i < 5 ? 'l ' : '') + (i === sort.col ? 'sorted' + (sort.asc ? ' asc' : '') : ''); });
    };
    thead.addEventListener('click', function (e) {
      var i = Number(e.target.getAttribute('data-col'));
      if (!isFinite(i)) return;
      sort = { col: i, asc: sort.col === i ? !sort.asc : i < 5 };
      render();
    });
    ['filter-fit', 'filter-level', 'filter-variable', 'filter-worse'].forEach(function (id) { document.getElementById(id).addEventListener('change', render); });
    document.getElementById('filter-text').addEventListener('input', render);
    render();
  }

  // ---- areas ----
  var ar = section('areas', 'Areas: states coloured by the regional fit\'s mean |relative error| (click a state for its districts)');
  var byArea = {};
  D.areas.forEach(function (a) { byArea[a.area] = a; });
  var mode = el('select', { id: 'tile-mode' }, [el('option', { value: 'error', text: 'mean |relative error|' }), el('option', { value: 'change', text: 'change vs ' + (B ? B.label : 'base') }), el('option', { value: 'size', text: 'file size change vs ' + (B ? B.label : 'base') })]);
  var legend = el('div', { class: 'legend' });
  ar.appendChild(el('div', { class: 'filters' }, [el('label', { for: 'tile-mode', text: 'colour by' }), mode, legend]));
  var grid = el('div', { class: 'states', id: 'state-grid' });
  var panel = el('div', { id: 'district-panel' }, [el('p', { class: 'count', text: 'Click a state to see its districts and area files.' })]);
  ar.appendChild(el('div', { class: 'statewrap' }, [grid, panel]));
  var TILES = D.tiles;
  function tileValue(a) {
    if (!a) return null;
    if (mode.value === 'error') return a.mean;
    if (mode.value === 'change') return fin(a.mean) && fin(a.baseMean) ? a.mean - a.baseMean : null;
    return fin(a.size) && fin(a.baseSize) && a.baseSize > 0 ? (a.size - a.baseSize) / a.baseSize : null;
  }
  function tileColour(v) { return mode.value === 'error' ? errColour(v) : changeColour(v); }
  function tileLabel(v) { return mode.value === 'error' ? pct(v) : mode.value === 'change' ? pts(v) : (fin(v) ? (v >= 0 ? '+' : '') + (v * 100).toFixed(1) + '%' : '\u2013'); }
  function tileTitle(a) {
    return a.area + ': mean |rel. error| ' + pct(a.mean) + ' over ' + a.targets + ' targets; ' + (B ? B.label + ' ' + pct(a.baseMean) + ' (' + pts(fin(a.mean) && fin(a.baseMean) ? a.mean - a.baseMean : null) + '); ' : '') +
      'file ' + bytes(a.size) + (fin(a.baseSize) ? ' (' + dbytes(a.size - a.baseSize) + ')' : '') + (a.changed === false ? ', unchanged' : '');
  }
  var selected = null;
  function drawLegend() {
    legend.textContent = '';
    var steps = mode.value === 'error' ? [0, 0.05, 0.1, 0.25, 0.5] : [-0.1, -0.05, 0, 0.05, 0.1];
    steps.forEach(function (s) { legend.appendChild(el('span', { class: 'sw', style: 'background:' + tileColour(s) })); legend.appendChild(document.createTextNode(' ' + tileLabel(s) + ' ')); });
  }
  function drawTiles() {
    grid.textContent = '';
    TILES.forEach(function (s) {
      var a = byArea[s.abbr], v = tileValue(a);
      var t = el('div', { class: 'tile' + (selected === s.abbr ? ' selected' : ''), 'data-state': s.abbr, style: 'grid-column:' + (s.col + 1) + ';grid-row:' + (s.row + 1) + ';background:' + tileColour(v), title: a ? tileTitle(a) : s.abbr }, [s.abbr, el('small', { text: tileLabel(v) })]);
      t.addEventListener('click', function () { selected = s.abbr; drawTiles(); drawPanel(); });
      grid.appendChild(t);
    });
    drawLegend();
  }
  function drawPanel() {
    panel.textContent = '';
    if (!selected) return;
    var st = byArea[selected];
    var ds = D.areas.filter(function (a) { return a.kind === 'districts' && a.state === selected; });
    panel.appendChild(el('h3', { text: selected + ': ' + ds.length + ' districts' }));
    var dt = el('div', { class: 'districts', id: 'district-tiles' });
    ds.forEach(function (a) { var v = tileValue(a); dt.appendChild(el('div', { class: 'tile', title: tileTitle(a), style: 'background:' + tileColour(v) }, [a.area, el('small', { text: tileLabel(v) })])); });
    panel.appendChild(dt);
    var rows = [st].concat(ds).filter(Boolean).map(function (a) {
      return el('tr', {}, [el('td', { text: a.area }), el('td', { text: String(a.targets) }), el('td', { text: pct(a.mean), style: 'background:' + errColour(a.mean) }), el('td', { text: pct(a.baseMean) }),
        el('td', { class: changeClass(fin(a.mean) && fin(a.baseMean) ? a.mean - a.baseMean : null), text: pts(fin(a.mean) && fin(a.baseMean) ? a.mean - a.baseMean : null) }),
        el('td', { text: bytes(a.size) }), el('td', { text: fin(a.baseSize) ? dbytes(a.size - a.baseSize) : 'new' }), el('td', { text: a.changed === null ? '\u2013' : a.changed ? 'changed' : 'same' })]);
    });
    panel.appendChild(el('div', { class: 'tablebox' }, [el('table', { id: 'area-table' }, [el('thead', {}, [el('tr', {}, ['area', 'targets', 'mean err.', (B ? B.label : 'base'), 'change', 'file', 'size change', 'bytes'].map(function (h, i) { return el('th', { class: i === 0 ? 'l' : '', text: h }); }))]), el('tbody', {}, rows)])]));
  }
  mode.addEventListener('change', function () { drawTiles(); drawPanel(); });
  drawTiles();
  var sized = D.areas.filter(function (a) { return a.kind === 'states' && fin(a.size); });
  if (sized.length) {
    ar.appendChild(el('h3', { text: 'State file sizes (this run vs ' + (B ? B.label : 'no base') + ')' }));
    var sb = chartBox();
    ar.appendChild(sb.box);
    var sets = [{ label: 'this run', data: sized.map(function (a) { return a.size / 1000; }), backgroundColor: RUN }];
    if (B && sized.some(function (a) { return fin(a.baseSize); })) sets.push({ label: B.label, data: sized.map(function (a) { return fin(a.baseSize) ? a.baseSize / 1000 : null; }), backgroundColor: BASE });
    new Chart(sb.canvas, { type: 'bar', data: { labels: sized.map(function (a) { return a.area; }), datasets: sets }, options: { scales: { y: { title: { display: true, text: 'kB' } } } } });
  } else ar.appendChild(missing('No area files listed for this run.'));

  // ---- timeline ----
  var tl = section('timeline', 'Timeline of the run\'s targets');
  if (!D.timeline) tl.appendChild(missing('No meta.json for this run: its targets\' timing is unknown.'));
  else {
    var rowsT = D.timeline.rows;
    // Targets run as one batch (the local area workers) start together and settle when it ends:
    // each batch (or batches started together) is drawn as one bar, from its start to its last member's end.
    var timed = [], batches = {};
    rowsT.forEach(function (r) {
      if (!fin(r.startMs) || !(fin(r.endMs) || fin(r.durationMs))) return;
      // Only fan-out children (h5:...) are batched; other targets may start in the same millisecond.
      var colon = r.target.indexOf(':'), k = colon > 0 ? r.target.slice(0, colon) + '|' + r.startMs + '|' + r.executor : 'target|' + r.target;
      var end = fin(r.endMs) ? r.endMs : r.startMs + r.durationMs, b = batches[k];
      if (b) { b.n++; b.end = Math.max(b.end, end); return; }
      batches[k] = b = { target: r.target, outcome: r.outcome, executor: r.executor, startMs: r.startMs, end: end, queueSeconds: r.queueSeconds, runSeconds: r.runSeconds, n: 1 };
      timed.push(b);
    });
    timed.forEach(function (b) { b.durationMs = b.end - b.startMs; if (b.n > 1) b.target = b.target + ' +' + (b.n - 1) + ' (batched)'; });
    var cached = rowsT.filter(function (r) { return r.cacheHit; }), cut = rowsT.filter(function (r) { return r.earlyCutoff; });
    var remote = rowsT.filter(function (r) { return r.executor !== 'local'; });
    tl.appendChild(el('p', { text: rowsT.length + ' targets: ' + (rowsT.length - cached.length) + ' ran, ' + cached.length + ' cache hits (' + cut.length + ' of them early cutoffs: an upstream target rebuilt with identical outputs), ' + remote.length + ' on a remote executor.' }));
    if (!timed.length) tl.appendChild(missing('No target ran in this run (every target was a cache hit or replayed), so there is no timeline to draw.'));
    else {
      var tb = chartBox('tall');
      tb.box.style.height = Math.max(220, Math.min(560, 80 + timed.length * 16)) + 'px';
      tl.appendChild(el('p', { class: 'count', text: 'bars: local (blue), remote (purple), failed (red); hover for queue and run seconds' }));
      tl.appendChild(tb.box);
      var colour = function (r) { return r.outcome === 'failed' ? BAD : r.executor === 'local' ? RUN : '#7c3aed'; };
      new Chart(tb.canvas, {
        type: 'bar',
        data: { labels: timed.map(function (r) { return r.target; }), datasets: [{ label: 'run time', data: timed.map(function (r) { return [r.startMs / 1000, r.end / 1000]; }), minBarLength: 2, backgroundColor: timed.map(colour), barPercentage: 1, categoryPercentage: 0.9 }] },
        options: {
          indexAxis: 'y',
          scales: { x: { type: 'linear', title: { display: true, text: 'seconds since the run started' } }, y: { ticks: { autoSkip: true, font: { size: 10 } } } },
          plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (ctx) { var r = timed[ctx.dataIndex]; return r.outcome + ' on ' + r.executor + ', ' + secs(r.durationMs) + (fin(r.queueSeconds) ? ', queued ' + r.queueSeconds + ' s' : '') + (fin(r.runSeconds) ? ', ran ' + r.runSeconds + ' s' : ''); } } } },
        },
      });
    }
    var trs = rowsT.map(function (r) { return el('tr', {}, [el('td', { text: r.target }), el('td', { text: r.outcome }), el('td', { text: r.executor }), el('td', { text: secs(r.startMs) }), el('td', { text: secs(r.durationMs) }), el('td', { text: fin(r.queueSeconds) ? r.queueSeconds + ' s' : '\u2013' }), el('td', { text: fin(r.runSeconds) ? r.runSeconds + ' s' : '\u2013' }), el('td', { text: r.cacheHit ? 'hit' : '' }), el('td', { text: r.earlyCutoff ? 'early cutoff' : '' })]); });
    tl.appendChild(el('details', {}, [el('summary', { text: 'every target (' + rowsT.length + ')' }), el('div', { class: 'tablebox' }, [el('table', { id: 'timeline-table' }, [el('thead', {}, [el('tr', {}, ['target', 'outcome', 'executor', 'start', 'duration', 'queue', 'remote run', 'cache', 'cutoff'].map(function (h, i) { return el('th', { class: i === 0 ? 'l' : '', text: h }); }))]), el('tbody', {}, trs)])])]));
  }

  // ---- promote ----
  var pr = section('publish', 'What promote would publish' + (B ? ' (against ' + B.label + ')' : ''));
  var FL = D.numbers.files;
  if (!FL.run) pr.appendChild(missing('The run\'s files are incomplete: what promote would publish is unknown.'));
  else {
    var baseBy = {};
    (FL.base || []).forEach(function (k) { baseBy[k.kind] = k; });
    var krows = FL.run.map(function (k) { var b = baseBy[k.kind]; return el('tr', {}, [el('td', { text: k.kind }), el('td', { text: String(k.files) }), el('td', { text: bytes(k.bytes) }), el('td', { text: b ? String(b.files) : '\u2013' }), el('td', { text: b ? bytes(b.bytes) : '\u2013' }), el('td', { text: b ? dbytes(k.bytes - b.bytes) : 'new' })]); });
    pr.appendChild(el('table', { id: 'kinds-table', style: 'max-width:720px' }, [el('thead', {}, [el('tr', {}, ['kind', 'files', 'bytes', 'base files', 'base bytes', 'change'].map(function (h, i) { return el('th', { class: i === 0 ? 'l' : '', text: h }); }))]), el('tbody', {}, krows)]));
    var C = FL.changes;
    if (!C) pr.appendChild(missing(B ? B.label + ' has no release manifest to compare files with.' : 'Nothing is registered yet: every file is new.'));
    else {
      pr.appendChild(el('p', { text: C.added.length + ' added, ' + C.removed.length + ' removed, ' + C.changed.length + ' changed, ' + C.unchanged + ' unchanged (' + dbytes(C.bytesDelta) + ' in total)' }));
      [['added', C.added], ['removed', C.removed], ['changed', C.changed]].forEach(function (p) {
        if (!p[1].length) return;
        pr.appendChild(el('details', {}, [el('summary', { text: p[1].length + ' ' + p[0] })].concat(p[1].slice(0, 600).map(function (f) { return el('div', {}, [el('code', { text: f.rel }), ' ' + bytes(f.size) + (f.baseSize !== undefined ? ' (' + dbytes(f.size - f.baseSize) + ')' : '')]); }))));
      });
    }
  }
  document.body.setAttribute('data-ready', '1');
})();
`;
