// group.js - sweeps: the list of groups (#/groups) and one group (#/group/4): its jobs, a table of
// the settings (the swept values, then each evaluation's mean ± sample std over seeds, the
// headline gain when the jobs have one; sortable by any column, the best setting starred), and the
// label-efficiency curves of every setting overlaid with ± std error bars for a chosen protocol.
// The aggregation is the server's (GET /v1/groups/{id}); this page only lays it out.
// Not here: one job's page (job.js), comparing chosen jobs (compare.js).

import { get, isFinal } from './api.js';
import { palette } from './charts.js';
import { Poller, fmtAge, fmtPct, h, pollStatus, stateBadge } from './util.js';

const SVGNS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const showSetting = (s) => Object.entries(s || {}).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ') || '(base spec)';
const pm = (m, sd) => (m === null || m === undefined ? '—' : fmtPct(m) + (sd === null || sd === undefined ? '' : ' ± ' + (100 * sd).toFixed(2)));

// ---- #/groups ----------------------------------------------------------------------------------

export function mountList(main) {
  const status = pollStatus();
  const body = h('tbody');
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Sweeps'), h('div', { class: 'head-actions' }, status.el)),
    h('p', { class: 'hint' }, 'A job spec with a "sweep" runs a grid of settings × seeds as one group (docs/API.md, Sweeps).'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'groups' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Group'), h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Owner'),
        h('th', { scope: 'col' }, 'Created'), h('th', { scope: 'col' }, 'Jobs'), h('th', { scope: 'col' }, 'States'))), body)));
  const poller = new Poller(async () => {
    const r = await get('/v1/groups?limit=100');
    body.replaceChildren(...(r.groups.length ? r.groups.map((g) => h('tr', {},
      h('td', {}, h('a', { href: '#/group/' + g.id }, '#' + g.id)), h('td', {}, g.name || '—'), h('td', {}, g.owner || '—'),
      h('td', {}, fmtAge(g.created_at)), h('td', { class: 'num' }, String(g.jobs)),
      h('td', {}, ...Object.entries(g.counts).filter(([, n]) => n > 0).map(([s, n]) => h('span', { class: 'count' }, stateBadge(s), ' ' + n + ' '))))) :
      [h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No sweeps yet.'))]));
    main.dataset.ready = 'true';
  }, 3000, status.set).start();
  return () => poller.stop();
}

// ---- #/group/ID ---------------------------------------------------------------------------------

// The columns of the settings table: one per swept path, one per evaluation key, the headline.
function columns(g) {
  const paths = [...new Set(g.settings.flatMap((s) => Object.keys(s.setting || {})))];
  const evals = [];
  for (const s of g.settings) for (const r of s.results) {
    const key = `${r.protocol}@${r.label_fraction}`;
    if (!evals.some((e) => e.key === key)) evals.push({ key, protocol: r.protocol, fraction: r.label_fraction });
  }
  evals.sort((a, b) => a.protocol.localeCompare(b.protocol) || a.fraction - b.fraction);
  const cols = paths.map((p) => ({ id: 'p:' + p, label: p, value: (s) => (s.setting || {})[p], show: (s) => JSON.stringify((s.setting || {})[p]) }));
  for (const e of evals) {
    const find = (s) => s.results.find((r) => r.protocol === e.protocol && r.label_fraction === e.fraction);
    cols.push({ id: 'e:' + e.key, label: `${e.protocol} @ ${fmtPct(e.fraction)}`, num: true,
      value: (s) => (find(s) || {}).mean, show: (s) => { const r = find(s); return r ? pm(r.mean, r.std) + ` (n=${r.n})` : '—'; } });
  }
  if (g.settings.some((s) => s.headline)) {
    cols.push({ id: 'h:gain', label: 'headline gain', num: true, value: (s) => (s.headline || {}).gain_mean,
      show: (s) => (s.headline && s.headline.gain_mean !== null ? (s.headline.gain_mean >= 0 ? '+' : '') + (100 * s.headline.gain_mean).toFixed(1) +
        (s.headline.gain_std !== null ? ' ± ' + (100 * s.headline.gain_std).toFixed(1) : '') + ' pts' : '—') });
  }
  return { cols, evals };
}

// Label-efficiency curves of one protocol: x = label fraction (log scale), y = mean accuracy, a
// vertical bar of ± std at each point; one colour per setting.
function curves(g, protocol, colors) {
  const W = 640, H = 320, L = 56, R = 16, T = 16, B = 44;
  const series = g.settings.map((s, i) => ({ i, pts: s.results.filter((r) => r.protocol === protocol && r.mean !== null).sort((a, b) => a.label_fraction - b.label_fraction) }))
    .filter((s) => s.pts.length);
  const all = series.flatMap((s) => s.pts);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'group-chart', role: 'img', 'aria-label': `test accuracy against labelled fraction, ${protocol}, one line per setting` });
  if (!all.length) return root;
  const xs = all.map((p) => Math.log10(p.label_fraction));
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 - x0 < 1e-9) { x0 -= 0.5; x1 += 0.5; }
  const lo = Math.min(...all.map((p) => p.mean - (p.std || 0))), hi = Math.max(...all.map((p) => p.mean + (p.std || 0)));
  const pad = Math.max(0.01, (hi - lo) * 0.1);
  const y0 = Math.max(0, lo - pad), y1 = Math.min(1, hi + pad);
  const X = (f) => L + (Math.log10(f) - x0) / (x1 - x0) * (W - L - R);
  const Y = (v) => T + (1 - (v - y0) / (y1 - y0 || 1)) * (H - T - B);
  root.append(svg('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }), svg('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }));
  for (let k = 0; k <= 4; k++) {
    const v = y0 + (y1 - y0) * k / 4;
    root.append(svg('text', { x: L - 6, y: Y(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmtPct(v)));
  }
  for (const f of [...new Set(all.map((p) => p.label_fraction))]) root.append(svg('text', { x: X(f), y: H - B + 16, 'text-anchor': 'middle', class: 'tick' }, fmtPct(f)));
  root.append(svg('text', { x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle', class: 'tick' }, 'labelled fraction (log scale)'));
  // Settings side by side at each fraction (a few pixels apart) so their error bars do not hide each other.
  const dodge = (k) => (k - (series.length - 1) / 2) * 7;
  series.forEach((s, k) => {
    const c = colors[s.i % colors.length];
    root.append(svg('polyline', { points: s.pts.map((p) => `${X(p.label_fraction) + dodge(k)},${Y(p.mean)}`).join(' '), fill: 'none', stroke: c, 'stroke-width': 2 }));
    for (const p of s.pts) {
      const x = X(p.label_fraction) + dodge(k);
      if (p.std !== null && p.std !== undefined) {
        root.append(svg('line', { x1: x, x2: x, y1: Y(p.mean - p.std), y2: Y(p.mean + p.std), stroke: c, 'stroke-width': 1.5, class: 'errbar' }),
          svg('line', { x1: x - 4, x2: x + 4, y1: Y(p.mean - p.std), y2: Y(p.mean - p.std), stroke: c }),
          svg('line', { x1: x - 4, x2: x + 4, y1: Y(p.mean + p.std), y2: Y(p.mean + p.std), stroke: c }));
      }
      root.append(svg('circle', { cx: x, cy: Y(p.mean), r: 3.5, fill: c },
        svg('title', {}, `${showSetting(g.settings[s.i].setting)}: ${pm(p.mean, p.std)} at ${fmtPct(p.label_fraction)} labels (n=${p.n})`)));
    }
  });
  return root;
}

export function mount(main, params) {
  const id = params.id;
  const status = pollStatus();
  const title = h('h1', {}, `Sweep #${id}`);
  const summary = h('p', { class: 'sub' });
  const best = h('p', { class: 'best-setting' });
  const tableBox = h('div', { class: 'table-wrap' });
  const protoSel = h('select', { 'aria-label': 'protocol of the curves' });
  const chartBox = h('div', { class: 'group-chart-box' });
  const legend = h('ul', { class: 'legend' });
  const kids = h('tbody');
  main.append(h('div', { class: 'page-head' }, title, h('div', { class: 'head-actions' }, status.el)), summary,
    h('section', { class: 'card', 'aria-labelledby': 'h-settings' }, h('h2', { id: 'h-settings' }, 'Settings'),
      h('p', { class: 'hint' }, 'Mean ± sample standard deviation over seeds of each setting\'s finished jobs; click a column to sort.'), best, tableBox),
    h('section', { class: 'card', 'aria-labelledby': 'h-curves' }, h('div', { class: 'section-head' }, h('h2', { id: 'h-curves' }, 'Label efficiency'),
      h('label', {}, 'protocol ', protoSel)), chartBox, legend),
    h('section', { class: 'card', 'aria-labelledby': 'h-kids' }, h('h2', { id: 'h-kids' }, 'Jobs'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'group-jobs' }, h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Job'), h('th', { scope: 'col' }, 'Setting'), h('th', { scope: 'col' }, 'Seed'), h('th', { scope: 'col' }, 'State'))), kids))));
  const colors = palette();
  let sort = { col: null, dir: -1 };
  let last = null;

  function renderTable(g) {
    const { cols } = columns(g);
    const rows = g.settings.map((s, i) => ({ s, i }));
    if (sort.col) {
      const c = cols.find((x) => x.id === sort.col);
      if (c) rows.sort((a, b) => {
        const va = c.value(a.s), vb = c.value(b.s);
        if (va === undefined || va === null) return 1;
        if (vb === undefined || vb === null) return -1;
        return (va < vb ? -1 : va > vb ? 1 : 0) * sort.dir;
      });
    }
    const bestI = g.best ? g.best.setting_index : -1;
    const head = h('tr', {}, h('th', { scope: 'col' }, ''), ...cols.map((c) => h('th', {
      scope: 'col', class: c.num ? 'num sortable' : 'sortable', tabindex: '0', 'data-col': c.id,
      'aria-sort': sort.col === c.id ? (sort.dir > 0 ? 'ascending' : 'descending') : 'none',
      onclick: () => { sort = { col: c.id, dir: sort.col === c.id ? -sort.dir : -1 }; renderTable(g); },
      onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); e.target.click(); } },
    }, c.label, sort.col === c.id ? (sort.dir > 0 ? ' ▲' : ' ▼') : '')), h('th', { scope: 'col', class: 'num' }, 'Done'));
    const body = rows.map(({ s, i }) => h('tr', { class: i === bestI ? 'best' : '', 'data-setting': String(i) },
      h('td', {}, h('span', { class: 'swatch', style: { background: colors[i % colors.length] } }), i === bestI ? h('span', { title: 'best setting' }, ' ★') : ''),
      ...cols.map((c) => h('td', { class: c.num ? 'num' : '' }, c.show(s))),
      h('td', { class: 'num' }, `${s.succeeded}/${s.jobs.length}`)));
    tableBox.replaceChildren(h('table', { class: 'settings' }, h('thead', {}, head), h('tbody', {}, ...body)));
  }

  function renderChart(g) {
    const { evals } = columns(g);
    const protos = [...new Set(evals.map((e) => e.protocol))];
    if (protoSel.options.length !== protos.length) {
      const keep = protoSel.value;
      protoSel.replaceChildren(...protos.map((p) => h('option', { value: p }, p)));
      if (protos.includes(keep)) protoSel.value = keep;
    }
    chartBox.replaceChildren(protos.length ? curves(g, protoSel.value, colors) : h('p', { class: 'empty' }, 'No finished evaluations yet.'));
    legend.replaceChildren(...g.settings.map((s, i) => h('li', {}, h('span', { class: 'swatch', style: { background: colors[i % colors.length] } }), showSetting(s.setting))));
  }
  protoSel.addEventListener('change', () => last && renderChart(last));

  function render(g) {
    last = g;
    title.textContent = `Sweep #${g.id}${g.name ? ' · ' + g.name : ''}`;
    const counts = Object.entries(g.counts).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(', ');
    summary.textContent = `${g.jobs} jobs (${g.settings.length} settings) · ${counts} · owner ${g.owner || '—'} · created ${fmtAge(g.created_at)}`;
    if (g.best) best.replaceChildren('★ Best setting: ', h('strong', {}, showSetting(g.settings[g.best.setting_index].setting)),
      ` — ${fmtPct(g.best.mean)} mean ${g.best.by === 'headline' ? 'headline accuracy' : g.best.by}`);
    else best.textContent = 'No finished jobs yet.';
    renderTable(g);
    renderChart(g);
    kids.replaceChildren(...g.children.map((k) => h('tr', {}, h('td', {}, h('a', { href: '#/job/' + k.id }, `#${k.id} ${k.name}`)),
      h('td', {}, showSetting(k.setting)), h('td', { class: 'num' }, k.seed === null ? '—' : String(k.seed)),
      h('td', {}, stateBadge(k.state), k.error ? h('span', { class: 'sub bad' }, ' ' + k.error) : ''))));
    main.dataset.ready = 'true';
  }

  const poller = new Poller(async () => {
    const g = await get('/v1/groups/' + id);
    render(g);
    return !g.children.every((k) => isFinal(k.state));
  }, 2000, status.set).start();
  return () => poller.stop();
}
