// jobs.js - the jobs page (#/jobs?state=running): a table of jobs (name, method, state, owner,
// progress with ETA, the key result, age), a state filter, row selection for Compare, and an
// auto-refresh that pauses while the tab is hidden. Rows are updated in place, so nothing jumps.
// Not here: a job's detail (job.js).

import { get, job as jobDetail, qs } from './api.js';
import { headlineText } from './job.js';
import {
  Poller, STATES, fmtAge, fmtPct, fmtNum, h, pollStatus, pool, progressCell, setText, stateBadge, updateProgress,
} from './util.js';

const SELECT_KEY = 'ssld.selected';

export function loadSelection() {
  try { return new Set(JSON.parse(sessionStorage.getItem(SELECT_KEY) || '[]').map(Number)); } catch { return new Set(); }
}
function saveSelection(sel) {
  try { sessionStorage.setItem(SELECT_KEY, JSON.stringify([...sel])); } catch { /* private mode */ }
}

// The one number a person scans the list for: the headline's gain over its baseline at the fewest
// labels ("+7.9 points", "over scratch at 1 % labels"); without one, the linear probe (else the
// first evaluation) at the largest label fraction; else the pretext's final loss.
export function keyResult(j) {
  const r = j.results;
  const t = headlineText(r && r.headline);
  if (t) return { text: t.big, title: `${t.big} ${t.rest}${t.detail ? ' (' + t.detail + ')' : ''}`, sub: t.rest, gain: t.gain };
  if (r && Array.isArray(r.evaluations) && r.evaluations.length) {
    const ev = r.evaluations.filter((e) => Number.isFinite(e.test_accuracy));
    const pick = (p) => ev.filter((e) => e.protocol === p).sort((a, b) => (b.label_fraction ?? 0) - (a.label_fraction ?? 0))[0];
    const e = pick('linear_probe') || pick('finetune') || pick('knn') || ev[0];
    if (e) {
      const frac = e.label_fraction !== undefined && e.label_fraction !== null ? ' @ ' + fmtPct(e.label_fraction).replace('.0%', '%') + ' labels' : '';
      return { text: fmtPct(e.test_accuracy), title: `${e.protocol.replace('_', ' ')} test accuracy${frac}`, sub: e.protocol.replace('_', ' ') + frac };
    }
  }
  if (r && r.pretext) {
    for (const k of ['final_loss', 'bits_per_char', 'reconstruction_mse', 'test_accuracy']) {
      if (Number.isFinite(r.pretext[k])) return { text: fmtNum(r.pretext[k]), title: k.replace(/_/g, ' '), sub: k.replace(/_/g, ' ') };
    }
  }
  return null;
}

export function mount(main, params) {
  let filter = params.state && STATES.includes(params.state) ? params.state : '';
  let limit = 50;
  const selected = loadSelection();
  const rows = new Map();
  const status = pollStatus();

  const compareBtn = h('a', { class: 'button', href: '#/compare', 'aria-disabled': 'true' }, 'Compare');
  const segs = ['', ...STATES].map((s) => h('button', {
    type: 'button', 'aria-pressed': String(s === filter), dataset: { state: s || 'all' },
    onclick: () => {
      filter = s;
      segs.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.state === (s || 'all'))));
      history.replaceState(null, '', '#/jobs' + (s ? '?state=' + s : ''));
      tbody.replaceChildren();
      rows.clear();
      poller.tick();
    },
  }, s || 'all'));
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true });
  const more = h('button', { type: 'button', class: 'ghost', hidden: true, onclick: () => { limit = Math.min(1000, limit + 50); poller.tick(); } }, 'Show older jobs');
  const selectAll = h('input', { type: 'checkbox', 'aria-label': 'select every job shown', onchange: () => {
    for (const [id, r] of rows) { r.check.checked = selectAll.checked; if (selectAll.checked) selected.add(id); else selected.delete(id); }
    syncSelection();
  } });

  main.append(
    h('div', { class: 'page-head' },
      h('h1', {}, 'Jobs'),
      h('div', { class: 'head-actions' }, status.el, compareBtn, h('a', { class: 'button primary', href: '#/submit' }, 'New job'))),
    h('div', { class: 'toolbar' }, h('div', { class: 'seg', role: 'group', 'aria-label': 'show jobs in state' }, segs)),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'jobs' },
        h('caption', { class: 'visually-hidden' }, 'Jobs, newest first'),
        h('colgroup', {}, ...['sel', 'id', 'name', 'method', 'state', 'owner', 'progress', 'result', 'age'].map((c) => h('col', { class: 'c-' + c }))),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, selectAll), h('th', { scope: 'col', class: 'num' }, 'ID'), h('th', { scope: 'col' }, 'Name'),
          h('th', { scope: 'col' }, 'Method'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Owner'),
          h('th', { scope: 'col' }, 'Progress'), h('th', { scope: 'col', class: 'num', title: 'the headline: the best SSL protocol at the fewest labels against its baseline (else the linear probe at the largest label fraction; else the final pretext loss); hover a value for what it is' }, 'Result'), h('th', { scope: 'col', class: 'num' }, 'Age'))),
        tbody)),
    empty, more);

  function syncSelection() {
    saveSelection(selected);
    const ids = [...selected];
    compareBtn.textContent = ids.length ? `Compare ${ids.length}` : 'Compare';
    compareBtn.href = '#/compare' + (ids.length ? '?ids=' + ids.join(',') : '');
    compareBtn.setAttribute('aria-disabled', String(ids.length < 2));
  }

  function makeRow(j) {
    const check = h('input', { type: 'checkbox', 'aria-label': 'select job ' + j.id, checked: selected.has(j.id), onchange: () => {
      if (check.checked) selected.add(j.id); else selected.delete(j.id);
      syncSelection();
    } });
    const link = h('a', { href: '#/job/' + j.id });
    const r = {
      check, link,
      method: h('td'), state: h('td'), owner: h('td', { class: 'owner' }), progress: progressCell(j),
      result: h('td', { class: 'num result' }), age: h('td', { class: 'num age' }),
    };
    r.tr = h('tr', { dataset: { id: j.id } },
      h('td', {}, check), h('td', { class: 'num' }, String(j.id)), h('td', { class: 'name' }, link),
      r.method, r.state, r.owner, h('td', {}, r.progress), r.result, r.age);
    return r;
  }

  function fill(r, j) {
    r.tr.dataset.state = j.state;
    setText(r.link, j.name || 'job ' + j.id);
    setText(r.method, j.method || '—');
    const badgeKey = j.state + (j.cancel_requested ? '!' : '');
    if (r.badgeKey !== badgeKey) { r.state.replaceChildren(stateBadge(j.state, j.cancel_requested)); r.badgeKey = badgeKey; }
    setText(r.owner, j.owner || '—');
    updateProgress(r.progress, j);
    setText(r.age, fmtAge(j.created_at));
    r.age.title = 'created ' + j.created_at;
    if (j.state === 'failed') {
      setText(r.result, 'failed');
      r.result.title = j.error || '';
      r.result.classList.add('bad');
    } else if (j.state === 'succeeded' && !r.resultLoaded) {
      r.resultLoaded = 'pending';
    } else if (j.state !== 'succeeded') {
      setText(r.result, '—');
    }
  }

  async function refresh() {
    const data = await get('/v1/jobs' + qs({ state: filter, limit }));
    const seen = new Set();
    const want = [];
    for (const j of data.jobs) {
      seen.add(j.id);
      let r = rows.get(j.id);
      if (!r) { r = makeRow(j); rows.set(j.id, r); }
      fill(r, j);
      if (r.resultLoaded === 'pending') want.push([j.id, r]);
    }
    for (const [id, r] of rows) if (!seen.has(id)) { r.tr.remove(); rows.delete(id); }
    // Order as the server gave (newest first); append moves existing rows without rebuilding them.
    data.jobs.forEach((j, i) => { const tr = rows.get(j.id).tr; if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null); });
    empty.hidden = data.jobs.length > 0;
    empty.textContent = filter ? `No ${filter} jobs.` : 'No jobs yet. Submit one with “New job”, or POST a spec to /v1/jobs.';
    more.hidden = data.next_before === null || data.next_before === undefined;
    // Results of finished jobs: fetched once each (api.job caches them), four at a time.
    await pool(want.map(([id, r]) => async () => {
      r.resultLoaded = 'yes';
      const full = await jobDetail(id);
      const k = keyResult(full);
      r.result.replaceChildren(k ? k.text : '—');
      if (k && k.gain !== undefined) {
        r.result.classList.add('headline-cell', k.gain === null ? 'plain' : k.gain >= 0 ? 'up' : 'down');
        r.result.append(h('span', { class: 'sub' }, k.sub));
      }
      r.result.title = k ? k.title : '';
      if (k) r.result.dataset.sub = k.sub;
    }), 4);
    tbody.closest('table').dataset.loaded = 'true';
  }

  syncSelection();
  const poller = new Poller(refresh, 2000, status.set).start();
  return () => poller.stop();
}
