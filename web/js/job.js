// job.js - one job's page (#/job/17): state and progress, the result first (the headline: the best
// SSL protocol at the fewest labels against its baseline, then the evaluation table next to every
// baseline with the label-efficiency chart), live curves for every metric key (log y, EMA
// smoothing, x as step or time) fed through the metrics cursor, SSL health, artifact images inline,
// generated samples for generative methods, the event log and a cancel button.
// Not here: the list (jobs.js), overlays of several jobs (compare.js).

import { ApiError, generates, get, isFinal, post, qs } from './api.js';
import { EfficiencyChart, MetricChart } from './charts.js';
import { EmbedMap, SPRITE_FILE } from './embedmap.js';
import { MetricStore, keyGroup } from './series.js';
import {
  Poller, fmtBytes, fmtDuration, fmtNum, fmtPct, h, parseTime, pollStatus, progressCell, setText, stateBadge, updateProgress,
} from './util.js';

const PREFS_KEY = 'ssld.chartPrefs';
const PROTOCOL_ORDER = ['linear_probe', 'finetune', 'knn', 'supervised', 'random_init', 'bag_of_bytes', 'raw_pixels'];
const BASELINE_WORDS = { scratch: 'scratch', random_init: 'the random-init probe', bag_of_bytes: 'bag-of-bytes', raw_pixels: 'raw pixels' };
const BASELINE_LABEL = { supervised: 'supervised (scratch baseline)', random_init: 'random init (baseline)',
  bag_of_bytes: 'bag of bytes (baseline)', raw_pixels: 'raw pixels (baseline)' };

// "1 % labels" / "20 labels per class", as the server's headline summary says it.
function labelsText(x) {
  if (x.label_fraction !== undefined && x.label_fraction !== null) return `${Number((x.label_fraction * 100).toFixed(3))} % labels`;
  return `${x.labels_per_class} labels per class`;
}

// A results headline in words: { big: '+7.9 points', rest: 'over scratch at 1 % labels',
// detail: 'linear probe 81.2% · scratch 73.3%' }; null without one. Shared with the jobs table.
export function headlineText(hl) {
  if (!hl || !Number.isFinite(hl.accuracy)) return null;
  const proto = hl.protocol.replace(/_/g, ' ');
  if (!Number.isFinite(hl.gain)) {
    return { big: fmtPct(hl.accuracy), rest: `${proto} at ${labelsText(hl)} (no baseline ran)`, detail: '', gain: null };
  }
  const pts = hl.gain * 100;
  return {
    big: `${pts >= 0 ? '+' : '−'}${Math.abs(pts).toFixed(1)} points`,
    rest: `${pts >= 0 ? 'over' : 'against'} ${BASELINE_WORDS[hl.baseline] || hl.baseline} at ${labelsText(hl)}`,
    detail: `${proto} ${fmtPct(hl.accuracy)} · ${(BASELINE_WORDS[hl.baseline] || hl.baseline).replace(/^the /, '')} ${fmtPct(hl.baseline_accuracy)}`,
    gain: hl.gain,
  };
}

// Baselines the results list apart from the evaluations (a pretext's bag-of-bytes or raw-pixel
// probe), as rows of the evaluation table.
function featureBaselines(job) {
  const r = job.results;
  if (!r || !Array.isArray(r.baselines)) return [];
  return r.baselines.filter((b) => b.kind === 'bag_of_bytes' || b.kind === 'raw_pixels')
    .map((b) => ({ protocol: b.kind, label_fraction: b.label_fraction ?? null, test_accuracy: b.test_accuracy, baseline: b.kind }));
}
const isBaseline = (p) => p in BASELINE_LABEL;

export function loadPrefs() {
  const d = { log: false, smoothing: 0.6, xMode: 'step' };
  try { return Object.assign(d, JSON.parse(localStorage.getItem(PREFS_KEY) || '{}')); } catch { return d; }
}
function savePrefs(p) {
  try { localStorage.setItem(PREFS_KEY, JSON.stringify(p)); } catch { /* private mode */ }
}

// Chart controls shared with compare.js: x as step/time, log y, EMA smoothing.
export function chartControls(prefs, onchange) {
  const id = Math.random().toString(36).slice(2, 7);
  const out = h('output', { for: 'sm-' + id, class: 'sm-out' }, prefs.smoothing.toFixed(2));
  const radio = (v, label) => h('label', { class: 'radio' },
    h('input', { type: 'radio', name: 'x-' + id, value: v, checked: prefs.xMode === v, onchange: () => { prefs.xMode = v; changed(); } }), label);
  const log = h('input', { type: 'checkbox', id: 'log-' + id, checked: prefs.log, onchange: () => { prefs.log = log.checked; changed(); } });
  const slider = h('input', {
    type: 'range', id: 'sm-' + id, min: '0', max: '0.99', step: '0.01', value: String(prefs.smoothing),
    oninput: () => { prefs.smoothing = Number(slider.value); out.textContent = prefs.smoothing.toFixed(2); changed(); },
  });
  function changed() { savePrefs(prefs); onchange(); }
  return h('div', { class: 'controls', role: 'group', 'aria-label': 'chart options' },
    h('fieldset', { class: 'xmode' }, h('legend', {}, 'x axis'), radio('step', 'step'), radio('time', 'time')),
    h('label', { class: 'check', for: 'log-' + id }, log, 'log y'),
    h('label', { class: 'slider', for: 'sm-' + id }, 'smoothing', slider, out));
}

// Evaluation rows from the final results, or while running from the eval/<protocol>@<fraction> metrics.
export function evalRows(job, store) {
  const r = job.results;
  if (r && Array.isArray(r.evaluations) && r.evaluations.length) {
    return r.evaluations.map((e) => ({ ...e, label_fraction: e.label_fraction ?? (e.labels_per_class ? null : 1) }));
  }
  const rows = [];
  const latest = job.metrics || {};
  const keys = new Set([...Object.keys(latest), ...(store ? store.series.keys() : [])]);
  for (const k of keys) {
    const m = /^eval\/([a-z_]+)@([0-9.eE+-]+)$/.exec(k);
    if (!m) continue;
    const s = store && store.series.get(k);
    const v = s && s.y.length ? s.y[s.y.length - 1] : latest[k] ? latest[k].value : null;
    rows.push({ protocol: m[1], label_fraction: Number(m[2]), test_accuracy: v });
  }
  return rows;
}

function protocolsOf(rows) {
  const ps = [...new Set(rows.map((r) => r.protocol))];
  return ps.sort((a, b) => (PROTOCOL_ORDER.indexOf(a) + 99) % 99 - (PROTOCOL_ORDER.indexOf(b) + 99) % 99 || (a < b ? -1 : 1));
}

// Table: one row per label fraction, one column per protocol, the SSL ones with their gain over
// the supervised-from-scratch baseline at the same labels.
export function evalTable(rows) {
  const protocols = protocolsOf(rows);
  const fracs = [...new Set(rows.map((r) => r.label_fraction))].sort((a, b) => (a ?? 2) - (b ?? 2));
  const cell = (p, f) => rows.find((r) => r.protocol === p && r.label_fraction === f);
  return h('table', { class: 'evals' },
    h('caption', { class: 'visually-hidden' }, 'test accuracy by protocol and labelled fraction'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'labels'),
      protocols.map((p) => h('th', { scope: 'col', class: 'num' + (isBaseline(p) ? ' baseline' : '') },
        BASELINE_LABEL[p] || p.replace('_', ' '))))),
    h('tbody', {}, fracs.map((f) => {
      const base = cell('supervised', f);
      const anyLabels = rows.find((r) => r.label_fraction === f && r.labels);
      return h('tr', {},
        h('th', { scope: 'row' }, f === null ? 'per class' : fmtPct(f).replace('.0%', '%'),
          anyLabels ? h('span', { class: 'sub' }, ' ' + anyLabels.labels.toLocaleString('en-US') + ' labels') : null),
        protocols.map((p) => {
          const c = cell(p, f);
          if (!c || !Number.isFinite(c.test_accuracy)) return h('td', { class: 'num muted' }, '—');
          let delta = null;
          if (!isBaseline(p) && base && Number.isFinite(base.test_accuracy)) {
            const d = (c.test_accuracy - base.test_accuracy) * 100;
            delta = h('span', { class: 'delta ' + (d >= 0 ? 'up' : 'down'), title: 'vs. supervised from scratch on the same labels' },
              (d >= 0 ? '+' : '−') + Math.abs(d).toFixed(1));
          }
          return h('td', { class: 'num' + (isBaseline(p) ? ' baseline' : '') }, fmtPct(c.test_accuracy), delta ? ' ' : null, delta);
        }));
    })));
}

export function mount(main, { id, max_points: mp }) {
  const prefs = loadPrefs();
  // #/job/17?max_points=100000 asks for full resolution (the server's limit is 100000 per key).
  const maxPoints = Math.max(2, Math.min(100000, Number(mp) || 2000));
  const store = new MetricStore(id, { maxPoints });
  const status = pollStatus();
  const charts = new Map();   // key -> MetricChart
  let job = null;
  let eventsCursor = 0;
  let tick = 0;
  let lastArtifacts = '';
  let effChart = null;
  let evalSig = '';
  let generative = null;
  let genRendered = false;
  let lastArtifactList = null;

  const title = h('h1', {}, `Job ${id}`);
  const subtitle = h('p', { class: 'subtitle' });
  const cancelArea = h('div', { class: 'cancel-area' });
  const summary = h('dl', { class: 'summary' });
  const progress = progressCell({ id, state: 'queued', progress: {} });
  progress.classList.add('wide');
  const headline = h('div', { class: 'headline', hidden: true, role: 'status', 'aria-label': 'headline result' });
  const labelsNote = h('div', { class: 'alert warn labels-note', hidden: true });
  const errorBox = h('div', { class: 'alert bad', role: 'alert', hidden: true });
  const collapseBox = h('div', { class: 'alert warn', role: 'status', hidden: true });
  const gridTrain = h('div', { class: 'charts-grid', dataset: { group: 'training' } });
  const gridHealth = h('div', { class: 'charts-grid', dataset: { group: 'health' } });
  const healthSection = h('section', { class: 'card', hidden: true, 'aria-labelledby': 'h-health' },
    h('h2', { id: 'h-health' }, 'SSL health'),
    h('p', { class: 'hint' }, 'Embedding spread (std, effective rank), alignment and uniformity of the views: a collapse shows here long before the evaluations.'),
    collapseBox, gridHealth);
  const evalBox = h('div', { class: 'eval-box' }, h('p', { class: 'empty' }, 'No evaluations yet.'));
  const effBox = h('div', { class: 'eff-box' });
  const pretextBox = h('div', { class: 'pretext-box' });
  const genSection = h('section', { class: 'card', hidden: true, 'aria-labelledby': 'h-gen' }, h('h2', { id: 'h-gen' }, 'Generated samples'));
  const mapSection = h('section', { class: 'card emap', hidden: true, 'aria-labelledby': 'h-emap' });
  const embedMap = new EmbedMap(mapSection);
  const gallery = h('div', { class: 'gallery' });
  const files = h('ul', { class: 'files' });
  const eventsList = h('ol', { class: 'events', 'aria-live': 'polite', 'aria-relevant': 'additions' });
  const eventsBox = h('div', { class: 'events-box', tabindex: '0', role: 'log', 'aria-label': 'event log' }, eventsList);
  const specBox = h('pre', { class: 'spec' });
  const noCurves = h('p', { class: 'empty' }, 'No metrics yet: curves appear with the first training steps.');

  const controls = chartControls(prefs, () => redrawAll());

  main.append(
    h('div', { class: 'page-head' },
      h('div', {}, title, subtitle),
      h('div', { class: 'head-actions' }, status.el, cancelArea, h('a', { class: 'button', href: '#/compare?ids=' + id }, 'Compare…'),
        h('a', { class: 'button', href: '#/submit?from=' + id, title: 'the Submit form, filled with this job’s spec' }, 'Run again with changes'))),
    h('section', { class: 'card overview', 'aria-label': 'overview' }, headline, progress, summary, errorBox),
    h('section', { class: 'card', 'aria-labelledby': 'h-eval' },
      h('h2', { id: 'h-eval' }, 'Evaluation'),
      h('p', { class: 'hint' }, 'Test accuracy of the pretrained encoder under each protocol, next to its baselines on the same labels: the same network trained from scratch, and the probe of the untrained encoder.'),
      labelsNote, h('div', { class: 'eval-layout' }, evalBox, effBox), pretextBox),
    h('section', { class: 'card', 'aria-labelledby': 'h-curves' },
      h('div', { class: 'section-head' }, h('h2', { id: 'h-curves' }, 'Training curves'), controls),
      noCurves, gridTrain),
    healthSection,
    mapSection,
    genSection,
    h('section', { class: 'card', 'aria-labelledby': 'h-art' }, h('h2', { id: 'h-art' }, 'Artifacts'), gallery, files),
    h('section', { class: 'card', 'aria-labelledby': 'h-events' }, h('h2', { id: 'h-events' }, 'Events'), eventsBox),
    h('details', { class: 'card spec-card' }, h('summary', {}, 'Job spec (JSON)'), specBox));

  // ---- overview ------------------------------------------------------------------------------

  function row(label, value) {
    return h('div', {}, h('dt', {}, label), h('dd', {}, value));
  }

  function renderOverview() {
    document.title = `${job.name || 'job ' + id} · ssld`;
    setText(title, job.name || `Job ${id}`);
    subtitle.replaceChildren(stateBadge(job.state, job.cancel_requested), ` job ${id} · ${job.method || 'no pretext'} · ${job.owner || '—'}`);
    updateProgress(progress, job);
    const started = parseTime(job.started_at), finished = parseTime(job.finished_at);
    const ran = started ? ((finished || Date.now() / 1000) - started) : null;
    const p = job.progress || {};
    summary.replaceChildren(
      row('step', p.total ? `${fmtNum(p.step)} / ${fmtNum(p.total)}` : fmtNum(p.step)),
      row('stage', p.stage || '—'),
      row('ETA', job.state === 'running' ? fmtDuration(p.eta_s) : '—'),
      row('run time', ran === null ? '—' : fmtDuration(ran)),
      row('created', new Date(job.created_at).toLocaleString()),
      row('checkpoint', job.checkpoint_step === null || job.checkpoint_step === undefined ? '—' : 'step ' + job.checkpoint_step),
      row('attempts', String(job.attempts ?? '—')),
      row('priority', String(job.priority ?? 0)));
    errorBox.hidden = !job.error;
    if (job.error) setText(errorBox, job.error);
    renderCancel();
    if (!specBox.textContent && job.spec) specBox.textContent = JSON.stringify(job.spec, null, 2);
  }

  function renderCancel(message) {
    const live = job && (job.state === 'queued' || job.state === 'running');
    if (!live) { cancelArea.replaceChildren(message ? h('span', { class: 'msg' }, message) : ''); return; }
    if (job.cancel_requested) { cancelArea.replaceChildren(h('span', { class: 'msg' }, 'Cancelling: the job stops at its next step.')); return; }
    if (cancelArea.dataset.mode === 'confirm') return;
    cancelArea.replaceChildren(h('button', { type: 'button', class: 'danger', onclick: askCancel }, 'Cancel job'),
      message ? h('span', { class: 'msg bad' }, message) : '');
  }

  function askCancel() {
    cancelArea.dataset.mode = 'confirm';
    const yes = h('button', { type: 'button', class: 'danger', onclick: doCancel }, 'Yes, cancel');
    const no = h('button', { type: 'button', class: 'ghost', onclick: () => { cancelArea.dataset.mode = ''; renderCancel(); } }, 'Keep running');
    cancelArea.replaceChildren(h('span', { class: 'msg' }, 'Cancel this job?'), yes, no);
    yes.focus();
  }

  async function doCancel() {
    cancelArea.dataset.mode = '';
    try {
      const r = await post(`/v1/jobs/${id}/cancel`);
      job = { ...job, state: r.state, cancel_requested: true };
      renderOverview();
      poller.tick();
    } catch (e) {
      renderCancel(e.message);
    }
  }

  // ---- curves --------------------------------------------------------------------------------

  // Approximate wall time of a step when the API gives no point times: linear between the start
  // and the last update (exact enough for one uninterrupted run; the axis says "approx.").
  function timeOf(s, step) {
    const t0 = parseTime(job && job.started_at);
    const t1 = parseTime(job && (job.finished_at || job.updated_at));
    const last = Math.max(1, (job && job.progress && job.progress.step) || s.x[s.x.length - 1] || 1);
    if (t0 === null || t1 === null) return step;
    return t0 + (t1 - t0) * Math.min(1, step / last);
  }

  function chartFor(key) {
    let c = charts.get(key);
    if (c) return c;
    const g = keyGroup(key);
    const grid = g === 2 ? gridHealth : gridTrain;
    c = new MetricChart(grid, { title: key, height: key === 'loss' ? 240 : 170 });
    c.el.dataset.key = key;
    if (key === 'loss') c.el.classList.add('wide');
    charts.set(key, c);
    // Keep cards in key order within their grid.
    const order = [...grid.children].sort((a, b) => (a.dataset.key === 'loss' ? -1 : b.dataset.key === 'loss' ? 1 : a.dataset.key < b.dataset.key ? -1 : 1));
    order.forEach((e) => grid.append(e));
    if (g === 2) healthSection.hidden = false;
    noCurves.hidden = true;
    return c;
  }

  function drawKey(key) {
    const s = store.series.get(key);
    if (!s || !s.x.length) return;
    if (keyGroup(key) === 3 && s.x.length < 2) return;     // single evaluation points live in the table
    if (key === 'collapsed') return;                        // a flag, shown as the banner
    // A finished job's one-off measurements (test_* at the end) are in the results list, not charts.
    if (s.x.length === 1 && !charts.has(key) && job && isFinal(job.state)) return;
    const c = chartFor(key);
    // Log y only where it means something: curves that never go negative.
    const logOk = prefs.log && !s.y.some((v) => v !== null && v < 0);
    c.setSeries([{ label: key, x: s.x, y: s.y, t: s.t }], {
      // Sparse curves (health every 50 steps, evaluations) are drawn as measured: an EMA over a
      // few points only lags.
      log: logOk, smoothing: key === 'lr' || s.x.length < 30 ? 0 : prefs.smoothing, xMode: prefs.xMode, timeOf,
    });
  }

  function redrawAll() {
    for (const key of store.series.keys()) drawKey(key);
  }

  function renderCollapse() {
    const s = store.series.get('collapsed');
    const on = s && s.y.length && s.y[s.y.length - 1] >= 1;
    collapseBox.hidden = !on;
    if (on) {
      const std = store.series.get('health/std_mean'), rank = store.series.get('health/eff_rank');
      const lv = (x) => (x && x.y.length ? fmtNum(x.y[x.y.length - 1]) : '—');
      setText(collapseBox, `Embeddings look collapsed at step ${fmtNum(s.x[s.x.length - 1])}: std ${lv(std)}, effective rank ${lv(rank)}.`);
      healthSection.hidden = false;
    }
  }

  // ---- evaluation ----------------------------------------------------------------------------

  function renderPretext() {
    const p = job.results && job.results.pretext;
    if (!p || pretextBox.dataset.done) return;
    pretextBox.dataset.done = '1';
    const items = Object.entries(p).filter(([, v]) => typeof v === 'number');
    pretextBox.replaceChildren(h('h3', {}, 'Pretext results'),
      h('dl', { class: 'summary' }, items.map(([k, v]) => h('div', {}, h('dt', {}, k.replace(/_/g, ' ')), h('dd', {}, fmtNum(v))))));
  }

  function renderHeadline() {
    const t = headlineText(job.results && job.results.headline);
    headline.hidden = !t;
    if (!t || headline.dataset.text === t.big + t.rest) return;
    headline.dataset.text = t.big + t.rest;
    headline.replaceChildren(
      h('span', { class: 'big ' + (t.gain === null ? '' : t.gain >= 0 ? 'up' : 'down') }, t.big), ' ',
      h('span', { class: 'rest' }, t.rest), t.detail ? h('span', { class: 'detail' }, t.detail) : '');
  }

  // A labelled subset that could not be drawn as asked (a class with fewer samples than its share).
  function renderLabels() {
    const notes = ((job.results && job.results.labels) || []).filter((n) => n.classes_short > 0);
    labelsNote.hidden = !notes.length;
    if (notes.length) {
      labelsNote.textContent = notes.map((n) => `${labelsText(n)}: ${fmtNum(n.used)} labels used of ${fmtNum(n.requested)} asked for `
        + `(${n.classes_short} of ${n.classes} classes have fewer than ${n.requested_per_class})`).join('; ') + '.';
    }
  }

  function renderEval() {
    renderPretext();
    renderHeadline();
    renderLabels();
    const rows = evalRows(job, store).concat(featureBaselines(job));
    const sig = JSON.stringify(rows);
    if (sig === evalSig) return;
    evalSig = sig;
    if (!rows.length) return;
    evalBox.replaceChildren(evalTable(rows));
    const fr = new Set(rows.map((r) => r.label_fraction).filter((f) => f > 0));
    if (fr.size >= 1) {
      if (!effChart) effChart = new EfficiencyChart(effBox, { height: 180 });
      effChart.set(rows.filter((r) => r.label_fraction > 0), protocolsOf(rows));
    }
  }

  // ---- artifacts and samples -----------------------------------------------------------------

  async function refreshArtifacts() {
    const r = await get(`/v1/jobs/${id}/artifacts`);
    const list = r.artifacts || [];
    lastArtifactList = list;
    const sig = list.map((a) => a.name + a.sha256).join('|');
    if (sig === lastArtifacts) return list;
    lastArtifacts = sig;
    embedMap.update(list).catch((e) => { mapSection.hidden = false; mapSection.replaceChildren(h('p', { class: 'alert bad' }, 'Embedding map: ' + e.message)); });
    const images = list.filter((a) => (a.content_type || '').startsWith('image/') && a.name !== SPRITE_FILE);
    gallery.replaceChildren(...images.map((a) => h('figure', { class: 'art' },
      h('a', { href: a.url, target: '_blank', rel: 'noopener' },
        h('img', { src: a.url, alt: describeArtifact(a.name), decoding: 'async' })),
      h('figcaption', {}, describeArtifact(a.name)))));
    gallery.hidden = !images.length;
    files.replaceChildren(...(list.length ? list.map((a) => h('li', {},
      h('a', { href: a.url, download: a.name.split('/').pop() }, a.name), h('span', { class: 'sub' }, ' ' + fmtBytes(a.size)))) :
      [h('li', { class: 'empty' }, 'No artifacts yet.')]));
    return list;
  }

  function describeArtifact(name) {
    const base = name.replace(/\.png$/, '');
    const known = { augmented_views: 'augmented views (each column: two views of one image)', reconstructions: 'reconstructions (input above, output below)',
      samples: 'samples from the prior', interpolation: 'latent interpolation', rotations: 'rotation predictions' };
    return known[base] || base.replace(/[-_]/g, ' ');
  }

  function renderGen(artifacts) {
    if (!isFinal(job.state) && !job.checkpoint_step) return;
    genRendered = true;
    genSection.hidden = false;
    const out = h('div', { class: 'gen-out' });
    const msg = h('p', { class: 'msg', role: 'status' });
    const existing = (artifacts || []).filter((a) => /^samples.*\.png$/.test(a.name)).pop();
    if (existing && generative === 'images') out.append(h('img', { src: existing.url, alt: 'generated samples', class: 'samples' }));
    const prompt = h('input', { type: 'text', id: 'gen-prompt', placeholder: 'optional prompt', value: '' });
    const temp = h('input', { type: 'number', id: 'gen-temp', min: '0', max: '5', step: '0.1', value: '1' });
    const btn = h('button', { type: 'button', class: 'primary', onclick: sample }, existing ? 'Sample again' : 'Sample');
    async function sample() {
      btn.disabled = true;
      msg.textContent = 'Sampling…';
      try {
        const body = generative === 'text' ?
          { prompt: prompt.value, max_tokens: 200, temperature: Number(temp.value), seed: Math.floor(Math.random() * 2 ** 31) } :
          { n: 64, seed: Math.floor(Math.random() * 2 ** 31) };
        const r = await post(`/v1/jobs/${id}/generate`, body);
        if (r.artifact) {
          out.replaceChildren(h('img', { src: `/v1/jobs/${id}/artifacts/${encodeURIComponent(r.artifact)}`, alt: `${r.n || ''} generated samples`, class: 'samples' }));
        } else if (typeof r.text === 'string') {
          out.replaceChildren(h('pre', { class: 'gen-text' }, h('strong', {}, r.prompt || ''), r.text));
        }
        msg.textContent = r.seconds ? `Done in ${fmtNum(r.seconds)} s.` : '';
        btn.textContent = 'Sample again';
      } catch (e) {
        const missing = e instanceof ApiError && (e.status === 405 || (e.status === 404 && /endpoint/.test(e.message)));
        msg.textContent = missing ? `This server does not offer sampling yet (POST /v1/jobs/${id}/generate): ${e.message}` : e.message;
      }
      btn.disabled = false;
    }
    const form = generative === 'text' ?
      h('div', { class: 'gen-form' }, h('label', { for: 'gen-prompt' }, 'prompt'), prompt, h('label', { for: 'gen-temp' }, 'temperature'), temp, btn) :
      h('div', { class: 'gen-form' }, btn);
    genSection.append(form, msg, out);
  }

  // ---- events --------------------------------------------------------------------------------

  async function refreshEvents() {
    for (let i = 0; i < 5; i++) {
      const r = await get(`/v1/jobs/${id}/events` + qs({ after: eventsCursor || undefined, limit: 500 }));
      const atBottom = eventsBox.scrollTop + eventsBox.clientHeight >= eventsBox.scrollHeight - 8;
      for (const e of r.events) {
        eventsList.append(h('li', { class: 'lvl-' + e.level },
          h('time', { datetime: e.time }, new Date(e.time).toLocaleTimeString([], { hour12: false })),
          h('span', { class: 'lvl' }, e.level), h('span', { class: 'text' }, e.message)));
      }
      if (r.events.length && atBottom) eventsBox.scrollTop = eventsBox.scrollHeight;
      if (r.cursor > eventsCursor) eventsCursor = r.cursor;
      if (r.events.length < 500) break;
    }
    if (!eventsList.children.length) eventsList.replaceChildren(h('li', { class: 'empty' }, 'No events yet.'));
    else eventsList.querySelector(':scope > .empty')?.remove();
  }

  // ---- the loop ------------------------------------------------------------------------------

  let wasFinal = false;
  // One poll: the job, new metric points, new events (and now and then the artifacts) are asked
  // for at once; each part is drawn as its answer lands.
  async function refresh() {
    const prevState = job && job.state;
    const pJob = get('/v1/jobs/' + id).then(async (j) => {
      job = j;
      renderOverview();
      if (generative === null) generative = (await generates(job.method)) || false;
      if (prevState !== job.state && tick % 5 !== 0) await refreshArtifacts();
    });
    const pMetrics = store.update();
    const pEvents = refreshEvents();
    const pArt = tick % 5 === 0 ? refreshArtifacts() : null;
    const [, changed] = await Promise.all([pJob, pMetrics, pEvents, pArt]);
    for (const key of changed) drawKey(key);
    if (changed.has('collapsed')) renderCollapse();
    renderEval();
    if (generative && !genRendered && lastArtifactList) renderGen(lastArtifactList);
    tick++;
    main.dataset.points = String(store.points());
    main.dataset.state = job.state;
    main.dataset.ready = 'true';
    // Finished: one more pass picks up anything written as it ended, then polling stops.
    if (isFinal(job.state)) {
      if (wasFinal) return false;
      wasFinal = true;
    }
    return true;
  }

  const poller = new Poller(refresh, 2000, (s, e) => {
    status.set(s, e);
    if (s === 'error' && e instanceof ApiError && e.status === 404) {
      poller.stop();
      main.replaceChildren(h('h1', {}, `Job ${id}`), h('p', { class: 'alert bad' }, e.message), h('a', { href: '#/jobs' }, 'Back to the jobs'));
    }
  }).start();

  return () => {
    poller.stop();
    for (const c of charts.values()) c.destroy();
    if (effChart) effChart.destroy();
    embedMap.destroy();
  };
}
