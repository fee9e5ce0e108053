// compare.js - several jobs side by side (#/compare?ids=3,7,9): a picker, the curves of every
// metric key overlaid (one colour per job), and a results table (test accuracy per protocol and
// label fraction, best of each column marked). Running jobs keep updating through their cursors.
// Not here: a single job's detail (job.js).

import { get, isFinal, job as jobDetail } from './api.js';
import { MetricChart, palette } from './charts.js';
import { chartControls, evalRows, loadPrefs } from './job.js';
import { loadSelection } from './jobs.js';
import { MetricStore, keyGroup, keyOrder } from './series.js';
import { Poller, fmtNum, fmtPct, h, pollStatus, stateBadge } from './util.js';

function parseIds(s) {
  return [...new Set((s || '').split(',').map((x) => Number(x.trim())).filter((x) => Number.isInteger(x) && x > 0))].slice(0, 8);
}

export function mount(main, params) {
  const ids = parseIds(params.ids);
  const status = pollStatus();
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Compare jobs'), h('div', { class: 'head-actions' }, status.el)));
  const picker = h('details', { class: 'card picker', open: ids.length < 2 });
  main.append(picker);
  buildPicker(picker, ids);
  if (ids.length === 0) return () => {};

  const prefs = loadPrefs();
  const colors = palette();
  const jobs = new Map();
  const stores = new Map(ids.map((id) => [id, new MetricStore(id, { maxPoints: 1000 })]));
  const charts = new Map();
  const legend = h('ul', { class: 'legend' });
  const results = h('div', { class: 'eval-box' });
  const grid = h('div', { class: 'charts-grid' });
  const controls = chartControls(prefs, () => drawAll());
  main.append(
    h('section', { class: 'card', 'aria-labelledby': 'h-jobs' }, h('h2', { id: 'h-jobs' }, 'Jobs'), legend),
    h('section', { class: 'card', 'aria-labelledby': 'h-res' }, h('h2', { id: 'h-res' }, 'Results'),
      h('p', { class: 'hint' }, 'Test accuracy per protocol and labelled fraction; the best of each column is marked.'), results),
    h('section', { class: 'card', 'aria-labelledby': 'h-cc' },
      h('div', { class: 'section-head' }, h('h2', { id: 'h-cc' }, 'Curves'), controls), grid));

  const color = (id) => colors[ids.indexOf(id) % colors.length];
  const label = (id) => `#${id} ${(jobs.get(id) || {}).name || ''}`.trim();

  function renderLegend() {
    legend.replaceChildren(...ids.map((id) => {
      const j = jobs.get(id);
      return h('li', {}, h('span', { class: 'swatch', style: { background: color(id) } }),
        h('a', { href: '#/job/' + id }, label(id)), ' ',
        j ? stateBadge(j.state, j.cancel_requested) : h('span', { class: 'muted' }, 'loading…'),
        j ? h('span', { class: 'sub' }, ` ${j.method || '—'}`) : null,
        j && j.error ? h('span', { class: 'sub bad' }, ' ' + j.error) : null);
    }));
  }

  function renderResults() {
    const per = ids.map((id) => ({ id, rows: jobs.has(id) ? evalRows(jobs.get(id), stores.get(id)) : [] }));
    const cols = [];
    for (const { rows } of per) for (const r of rows) {
      const k = r.protocol + '@' + r.label_fraction;
      if (!cols.find((c) => c.k === k)) cols.push({ k, protocol: r.protocol, f: r.label_fraction });
    }
    cols.sort((a, b) => (a.protocol === 'supervised') - (b.protocol === 'supervised') || (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : (a.f ?? 2) - (b.f ?? 2)));
    if (!cols.length) { results.replaceChildren(h('p', { class: 'empty' }, 'None of these jobs has evaluation results yet.')); return; }
    const val = (rows, c) => { const r = rows.find((x) => x.protocol === c.protocol && x.label_fraction === c.f); return r ? r.test_accuracy : null; };
    const best = cols.map((c) => Math.max(...per.map((p) => val(p.rows, c)).filter(Number.isFinite)));
    results.replaceChildren(h('table', { class: 'evals' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'job'), h('th', { scope: 'col', class: 'num' }, 'final loss'),
        cols.map((c) => h('th', { scope: 'col', class: 'num' + (c.protocol === 'supervised' ? ' baseline' : '') },
          c.protocol.replace('_', ' '), h('br'), h('span', { class: 'sub' }, c.f === null ? 'per class' : fmtPct(c.f).replace('.0%', '%') + ' labels'))))),
      h('tbody', {}, per.map(({ id, rows }, i) => {
        const j = jobs.get(id);
        const loss = j && j.results && j.results.pretext ? j.results.pretext.final_loss : (j && j.metrics && j.metrics.loss ? j.metrics.loss.value : null);
        return h('tr', {}, h('th', { scope: 'row' }, h('span', { class: 'swatch', style: { background: color(id) } }), h('a', { href: '#/job/' + id }, label(id))),
          h('td', { class: 'num' }, fmtNum(loss)),
          cols.map((c, ci) => {
            const v = val(rows, c);
            const isBest = Number.isFinite(v) && v === best[ci] && per.length > 1;
            return h('td', { class: 'num' + (isBest ? ' best' : '') + (c.protocol === 'supervised' ? ' baseline' : '') }, fmtPct(v), isBest ? h('span', { class: 'visually-hidden' }, ' (best)') : null);
          }));
      }))));
  }

  function drawAll() {
    const keys = new Set();
    for (const s of stores.values()) for (const k of s.series.keys()) keys.add(k);
    const sorted = [...keys].filter((k) => k !== 'collapsed' && !(keyGroup(k) === 3)).sort(keyOrder);
    for (const key of sorted) {
      let c = charts.get(key);
      if (!c) {
        c = new MetricChart(grid, { title: key, height: key === 'loss' ? 240 : 170 });
        c.el.dataset.key = key;
        if (key === 'loss') c.el.classList.add('wide');
        charts.set(key, c);
      }
      const series = [];
      for (const id of ids) {
        const s = stores.get(id).series.get(key);
        if (s && s.x.length) series.push({ label: label(id), x: s.x, y: s.y, t: s.t, color: color(id) });
      }
      if (!series.length) continue;
      const logOk = prefs.log && !series.some((s) => s.y.some((v) => v !== null && v < 0));
      // Overlaid curves of different jobs line up by step; in time mode each job starts at 0.
      const shifted = prefs.xMode === 'time' ? series.map((s) => {
        const j = [...jobs.values()].find((x) => label(x.id) === s.label);
        const t0 = j && j.started_at ? Date.parse(j.started_at) / 1000 : 0;
        const t1 = j && (j.finished_at || j.updated_at) ? Date.parse(j.finished_at || j.updated_at) / 1000 : t0;
        const last = Math.max(1, s.x[s.x.length - 1]);
        return { ...s, x: s.x.map((st) => (t1 - t0) * Math.min(1, st / last)), t: null };
      }) : series;
      const sparse = series.every((s) => s.x.length < 30);
      c.setSeries(shifted, { log: logOk, smoothing: key === 'lr' || sparse ? 0 : prefs.smoothing, xMode: 'step' });
      c.caption.querySelector('.ctitle').textContent = prefs.xMode === 'time' ? key + ' · x: seconds since start (approx.)' : key;
    }
    const order = [...grid.children].sort((a, b) => keyOrder(a.dataset.key, b.dataset.key));
    order.forEach((e) => grid.append(e));
  }

  async function refresh() {
    await Promise.all(ids.map(async (id) => {
      const prev = jobs.get(id);
      if (prev && isFinal(prev.state) && stores.get(id).done) return;
      try {
        const j = await jobDetail(id);
        jobs.set(id, j);
        await stores.get(id).update();
        if (isFinal(j.state)) stores.get(id).done = true;
      } catch (e) {
        jobs.set(id, { id, name: '', state: 'failed', error: e.message });
        stores.get(id).done = true;
      }
    }));
    renderLegend();
    renderResults();
    drawAll();
    main.dataset.ready = 'true';
    return ids.some((id) => !stores.get(id).done);
  }

  renderLegend();
  const poller = new Poller(refresh, 3000, status.set).start();
  return () => {
    poller.stop();
    for (const c of charts.values()) c.destroy();
  };
}

async function buildPicker(picker, ids) {
  const chosen = new Set(ids.length ? ids : loadSelection());
  const list = h('ul', { class: 'pick-list' }, h('li', { class: 'muted' }, 'loading jobs…'));
  const go = h('button', { type: 'submit', class: 'primary' }, 'Compare');
  const form = h('form', { onsubmit: (e) => {
    e.preventDefault();
    const sel = [...form.querySelectorAll('input:checked')].map((i) => i.value);
    location.hash = '#/compare?ids=' + sel.join(',');
  } }, h('fieldset', {}, h('legend', {}, 'Jobs to compare (up to 8)'), list), go);
  picker.append(h('summary', {}, ids.length ? `Comparing ${ids.length} job${ids.length > 1 ? 's' : ''} · change` : 'Choose jobs'), form);
  try {
    const r = await get('/v1/jobs?limit=100');
    list.replaceChildren(...r.jobs.map((j) => h('li', {}, h('label', {},
      h('input', { type: 'checkbox', value: String(j.id), checked: chosen.has(j.id) }),
      ` #${j.id} ${j.name || ''} `, h('span', { class: 'sub' }, `${j.method || '—'} · ${j.state}`)))));
    if (!r.jobs.length) list.replaceChildren(h('li', { class: 'empty' }, 'No jobs yet.'));
  } catch (e) {
    list.replaceChildren(h('li', { class: 'bad' }, e.message));
  }
}
