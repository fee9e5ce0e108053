// compare.js - several jobs side by side (#/compare?ids=3,7,9): a picker, how their specs differ
// (the keys that are not the same in all, one column per job), a warning when they trained on
// different data, the curves of every metric key overlaid (one colour per job), and a results
// table (test accuracy per protocol and label fraction; the best of each column marked among jobs
// on the same data only). Running jobs keep updating through their cursors.
// Not here: a single job's detail (job.js), the diff itself (specdiff.js).

import { get, isFinal, job as jobDetail } from './api.js';
import { MetricChart, palette } from './charts.js';
import { chartControls, evalRows, loadPrefs } from './job.js';
import { loadSelection } from './jobs.js';
import { MetricStore, keyGroup, keyOrder } from './series.js';
import { canon, dataGroups, showValue, specDiff } from './specdiff.js';
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
  const resultsHint = h('p', { class: 'hint' }, 'Test accuracy per protocol and labelled fraction; the best of each column is marked.');
  const dataWarn = h('div', { class: 'alert warn', role: 'status', id: 'data-warning', hidden: true });
  const diffBox = h('div', { class: 'diff-box' }, h('p', { class: 'empty' }, 'Loading the specs…'));
  const grid = h('div', { class: 'charts-grid' });
  const controls = chartControls(prefs, () => drawAll());
  main.append(
    h('section', { class: 'card', 'aria-labelledby': 'h-jobs' }, h('h2', { id: 'h-jobs' }, 'Jobs'), legend, dataWarn),
    h('section', { class: 'card', 'aria-labelledby': 'h-diff' }, h('h2', { id: 'h-diff' }, 'Spec differences'),
      h('p', { class: 'hint' }, 'The keys of the resolved specs (every default spelled out) that are not the same in all these jobs; names aside.'), diffBox),
    h('section', { class: 'card', 'aria-labelledby': 'h-res' }, h('h2', { id: 'h-res' }, 'Results'), resultsHint, results),
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

  // The data groups of the jobs whose specs are known (see specdiff.js); letters name them.
  const groupName = (g) => String.fromCharCode(65 + g);
  let groups = { group: ids.map(() => null), count: 0 };
  let diffSig = null;

  function renderSpecs() {
    const specs = ids.map((id) => (jobs.get(id) && jobs.get(id).spec) || null);
    const sig = canon(specs);
    if (sig === diffSig) return;
    diffSig = sig;
    groups = dataGroups(specs);
    const cols = ids.map((id, i) => ({ id, i })).filter(({ i }) => specs[i]);
    dataWarn.hidden = groups.count < 2;
    if (groups.count >= 2) {
      dataWarn.replaceChildren(h('strong', {}, 'These jobs trained on different data; the best marker compares unlike things.'),
        ' Their datasets (name or format, files, limits) are not the same, so the best of each column is marked only among jobs on the same data: ',
        cols.map(({ id, i }) => `#${id} on data ${groupName(groups.group[i])}`).join(', ') + '.');
    }
    if (cols.length < 2) { diffBox.replaceChildren(h('p', { class: 'empty' }, 'Choose at least two jobs to see how their specs differ.')); return; }
    const rows = specDiff(cols.map(({ i }) => specs[i]));
    if (!rows.length) { diffBox.replaceChildren(h('p', { class: 'empty', id: 'spec-same' }, 'Their specs are the same (names aside).')); return; }
    diffBox.replaceChildren(h('table', { class: 'spec-diff' },
      h('caption', { class: 'visually-hidden' }, 'spec keys that differ, one column per job'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'key'),
        cols.map(({ id }) => h('th', { scope: 'col', dataset: { job: String(id) } }, h('span', { class: 'swatch', style: { background: color(id) } }), label(id))))),
      h('tbody', {}, rows.map((r) => h('tr', { dataset: { path: r.path }, class: r.path === 'dataset' || r.path.startsWith('dataset.') ? 'data' : undefined },
        h('th', { scope: 'row' }, h('code', {}, r.path)),
        r.values.map((v) => h('td', { class: v === undefined ? 'muted' : undefined, title: showValue(v) }, showValue(v))))))));
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
    // Best of each column among the jobs on the same data (all of them when the data agree); a
    // group of one job has no best.
    const mixed = groups.count > 1;
    const groupOf = (i) => groups.group[i];
    const best = cols.map((c) => per.map((p, i) => {
      const same = per.filter((q, k) => groupOf(k) === groupOf(i));
      return same.length > 1 ? Math.max(...same.map((q) => val(q.rows, c)).filter(Number.isFinite)) : NaN;
    }));
    resultsHint.textContent = mixed ?
      'Test accuracy per protocol and labelled fraction; the best of each column is marked among jobs on the same data only (the data column), never across different data.' :
      'Test accuracy per protocol and labelled fraction; the best of each column is marked.';
    results.replaceChildren(h('table', { class: 'evals' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'job'), mixed ? h('th', { scope: 'col' }, 'data') : null, h('th', { scope: 'col', class: 'num' }, 'final loss'),
        cols.map((c) => h('th', { scope: 'col', class: 'num' + (c.protocol === 'supervised' ? ' baseline' : '') },
          c.protocol.replace('_', ' '), h('br'), h('span', { class: 'sub' }, c.f === null ? 'per class' : fmtPct(c.f).replace('.0%', '%') + ' labels'))))),
      h('tbody', {}, per.map(({ id, rows }, i) => {
        const j = jobs.get(id);
        const loss = j && j.results && j.results.pretext ? j.results.pretext.final_loss : (j && j.metrics && j.metrics.loss ? j.metrics.loss.value : null);
        return h('tr', { dataset: { job: String(id) } }, h('th', { scope: 'row' }, h('span', { class: 'swatch', style: { background: color(id) } }), h('a', { href: '#/job/' + id }, label(id))),
          mixed ? h('td', { class: 'data-group' }, groupOf(i) === null ? '—' : groupName(groupOf(i))) : null,
          h('td', { class: 'num' }, fmtNum(loss)),
          cols.map((c, ci) => {
            const v = val(rows, c);
            const isBest = Number.isFinite(v) && v === best[ci][i];
            return h('td', { class: 'num' + (isBest ? ' best' : '') + (c.protocol === 'supervised' ? ' baseline' : '') }, fmtPct(v), isBest ? h('span', { class: 'visually-hidden' }, mixed ? ` (best on data ${groupName(groupOf(i))})` : ' (best)') : null);
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
    renderSpecs();
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
