// util.js - DOM building, number/time formatting and a polling loop that pauses while the tab is
// hidden. Not here: anything that knows the API (api.js) or draws charts (charts.js).

// h('div', {class: 'x', onclick: fn}, child, 'text', [more]) -> Element. Text is always set as
// text (never parsed as HTML), so job names and event messages cannot inject markup.
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'style' && typeof v === 'object') Object.assign(e.style, v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k in e && typeof v !== 'string') e[k] = v;     // value, checked, disabled as properties
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else e.append(c instanceof Node ? c : String(c));
  }
}

export function clear(e) {
  while (e.firstChild) e.removeChild(e.firstChild);
  return e;
}

// Replaces the children of e only when the text differs, so live refreshes do not reflow.
export function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

// ---- formatting --------------------------------------------------------------------------------

export function fmtNum(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return Number(v.toPrecision(digits)).toString();
}

export function fmtPct(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return (v * 100).toFixed(1) + '%';
}

export function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s) || s < 0) return '—';
  s = Math.round(s);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + String(s % 60).padStart(2, '0') + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor(s / 3600) % 24 + 'h';
}

export function parseTime(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t / 1000;
}

// "3m ago" from an ISO time.
export function fmtAge(iso, now = Date.now() / 1000) {
  const t = parseTime(iso);
  if (t === null) return '—';
  const d = Math.max(0, now - t);
  if (d < 45) return 'just now';
  return fmtDuration(d).split(' ')[0] + ' ago';
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '—';
  if (n < 1024) return n + ' B';
  if (n < 1 << 20) return (n / 1024).toFixed(1) + ' KiB';
  return (n / (1 << 20)).toFixed(1) + ' MiB';
}

export function fmtClock(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
}

// ---- polling -----------------------------------------------------------------------------------

// Calls fn every intervalMs while the document is visible; never overlaps calls; stops on stop().
// When the tab is hidden the timer is not re-armed; becoming visible runs fn at once. onstate(s)
// is told 'live', 'paused' or 'error' for the status line.
export class Poller {
  constructor(fn, intervalMs, onstate) {
    this.fn = fn;
    this.interval = intervalMs;
    this.onstate = onstate || (() => {});
    this.timer = null;
    this.running = false;
    this.stopped = false;
    this.onvis = () => {
      if (document.hidden) {
        this.onstate('paused');
        clearTimeout(this.timer);
        this.timer = null;
      } else if (!this.running) {
        this.tick();
      }
    };
    document.addEventListener('visibilitychange', this.onvis);
  }

  start() { this.tick(); return this; }

  async tick() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = null;
    if (document.hidden) { this.onstate('paused'); return; }
    this.running = true;
    let again = true;
    try {
      again = (await this.fn()) !== false;
      this.onstate(document.hidden ? 'paused' : 'live');   // the tab may have been hidden meanwhile
    } catch (e) {
      this.onstate('error', e);
    }
    this.running = false;
    if (!this.stopped && again && !document.hidden) this.timer = setTimeout(() => this.tick(), this.interval);
    else if (!again) this.onstate('done');
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onvis);
  }
}

// A status element for a Poller: "Live · updated 12:03:04", "Paused while the tab is hidden".
export function pollStatus() {
  const e = h('span', { class: 'poll-status', role: 'status' });
  const set = (state, err) => {
    e.dataset.state = state;
    if (state === 'live') e.textContent = 'Live · updated ' + fmtClock(Date.now() / 1000);
    else if (state === 'paused') e.textContent = 'Paused while the tab is hidden';
    else if (state === 'done') e.textContent = 'Finished · not polling';
    else if (state === 'error') e.textContent = 'Update failed: ' + (err && err.message ? err.message : err) + ' · retrying';
  };
  return { el: e, set };
}

// Runs tasks (functions returning promises) with at most `limit` in flight.
export async function pool(tasks, limit) {
  const out = new Array(tasks.length);
  let next = 0;
  async function worker() {
    while (next < tasks.length) {
      const i = next++;
      try { out[i] = await tasks[i](); } catch (e) { out[i] = e; }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}

export const STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

export function stateBadge(state, cancelRequested) {
  const label = cancelRequested && state === 'running' ? 'cancelling' : state;
  return h('span', { class: 'badge state-' + state }, label);
}

// Progress bar with text; width fixed by CSS so refreshes never move the table.
export function progressCell(job) {
  const p = job.progress || {};
  const frac = p.fraction;
  const wrap = h('div', { class: 'progress' });
  const bar = h('div', {
    class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100',
    'aria-label': 'progress of job ' + job.id,
  });
  const fill = h('div', { class: 'fill' });
  bar.append(fill);
  const txt = h('span', { class: 'ptext' });
  wrap.append(bar, txt);
  updateProgress(wrap, job);
  return wrap;
}

export function updateProgress(wrap, job) {
  const p = job.progress || {};
  const bar = wrap.querySelector('.bar');
  const fill = wrap.querySelector('.fill');
  const txt = wrap.querySelector('.ptext');
  let frac = typeof p.fraction === 'number' ? Math.max(0, Math.min(1, p.fraction)) : null;
  if (job.state === 'succeeded') frac = 1;
  wrap.dataset.state = job.state;
  fill.style.width = frac === null ? '0%' : (frac * 100).toFixed(1) + '%';
  if (frac === null) bar.removeAttribute('aria-valuenow');
  else bar.setAttribute('aria-valuenow', (frac * 100).toFixed(0));
  let t;
  if (job.state === 'running') {
    t = frac === null ? (p.stage || 'starting') : (frac * 100).toFixed(0) + '%';
    if (p.stage && frac !== null) t += ' · ' + p.stage;
    if (p.eta_s !== null && p.eta_s !== undefined) t += ' · ETA ' + fmtDuration(p.eta_s);
  } else if (job.state === 'queued') {
    t = job.checkpoint_step !== null && job.checkpoint_step !== undefined ? 'queued · resumes at step ' + job.checkpoint_step : 'waiting';
  } else if (job.state === 'succeeded') {
    t = 'done';
  } else {
    t = frac === null ? job.state : job.state + ' at ' + (frac * 100).toFixed(0) + '%';
  }
  setText(txt, t);
}
