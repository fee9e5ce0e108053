// app.js - the dashboard's entry point: hash routing (#/jobs, #/job/17, #/compare?ids=1,2,
// #/submit, #/groups, #/group/4), the API-token box and the health line in the header. Each page module exports
// mount(main, params) returning an unmount function, so leaving a page stops its polling.
// Not here: page content (jobs.js, job.js, compare.js, submit.js).

import { get, getToken, onUnauthorized, setToken } from './api.js';
import * as jobsPage from './jobs.js';
import * as jobPage from './job.js';
import * as comparePage from './compare.js';
import * as submitPage from './submit.js';
import * as groupPages from './group.js';
import * as datasetsPage from './datasets.js';
import { Poller, h } from './util.js';

const main = document.getElementById('main');
let unmount = null;

export function parseHash(hash) {
  const raw = (hash || '').replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const params = Object.fromEntries(new URLSearchParams(query || ''));
  const parts = path.split('/').filter(Boolean);
  return { parts, params };
}

function route() {
  const { parts, params } = parseHash(location.hash);
  let page = null, args = params, name = parts[0] || 'jobs';
  if (name === 'jobs') page = jobsPage;
  else if (name === 'job' && /^\d+$/.test(parts[1] || '')) { page = jobPage; args = { ...params, id: Number(parts[1]) }; }
  else if (name === 'compare') page = comparePage;
  else if (name === 'submit') page = submitPage;
  else if (name === 'datasets') page = datasetsPage;
  else if (name === 'groups') page = { mount: groupPages.mountList };
  else if (name === 'group' && /^\d+$/.test(parts[1] || '')) { page = groupPages; args = { ...params, id: Number(parts[1]) }; }
  if (unmount) {
    try { unmount(); } catch (e) { console.error(e); }
    unmount = null;
  }
  main.replaceChildren();
  document.querySelectorAll('[data-nav]').forEach((a) => {
    if (a.dataset.nav === (name === 'job' ? 'jobs' : name === 'group' ? 'groups' : name)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  if (!page) {
    main.append(h('h1', {}, 'Not found'), h('p', {}, 'No page at ', h('code', {}, location.hash), '. ', h('a', { href: '#/jobs' }, 'Back to the jobs')));
    return;
  }
  unmount = page.mount(main, args) || null;
}

// Moves focus to the new page's heading after navigation, for keyboard and screen-reader users.
function focusMain() {
  const h1 = main.querySelector('h1');
  if (h1) { h1.setAttribute('tabindex', '-1'); h1.focus({ preventScroll: true }); }
}

// ---- token box --------------------------------------------------------------------------------

const box = document.getElementById('token-box');
const toggle = document.getElementById('token-toggle');
const input = document.getElementById('token-input');
const msg = document.getElementById('token-msg');

function showTokenBox(open, message) {
  box.hidden = !open;
  toggle.setAttribute('aria-expanded', String(open));
  if (message !== undefined) msg.textContent = message;
  if (open) { input.value = getToken(); input.focus(); }
}

function markToken() {
  toggle.textContent = getToken() ? 'API token ✓' : 'API token';
}

toggle.addEventListener('click', () => showTokenBox(box.hidden, ''));
box.addEventListener('submit', (e) => {
  e.preventDefault();
  setToken(input.value.trim());
  markToken();
  msg.textContent = input.value.trim() ? 'Saved. It is sent with job submissions and cancels.' : 'No token stored.';
});
document.getElementById('token-clear').addEventListener('click', () => {
  setToken('');
  input.value = '';
  markToken();
  msg.textContent = 'Forgotten.';
});
box.addEventListener('keydown', (e) => { if (e.key === 'Escape') { showTokenBox(false); toggle.focus(); } });
onUnauthorized((err) => {
  showTokenBox(true, (getToken() ? 'The stored token was refused: ' : 'This server requires a token: ') + err.message);
  box.classList.add('attention');
});
markToken();

// ---- health -----------------------------------------------------------------------------------

const health = document.getElementById('health');
new Poller(async () => {
  const r = await get('/v1/health');
  const j = r.jobs || {};
  health.dataset.status = r.status;
  health.textContent = `${r.status === 'ok' ? '●' : '▲'} ${r.busy ?? 0}/${r.workers ?? 0} workers busy · ${j.running ?? 0} running · ${j.queued ?? 0} queued`;
  health.title = 'ssld ' + (r.version || '') + ', database ' + r.database;
  if (r.auth_required && !getToken()) toggle.classList.add('attention');
}, 10000, (s, e) => {
  if (s === 'error') { health.dataset.status = 'down'; health.textContent = '▲ ssld unreachable'; health.title = e && e.message; }
}).start();

window.addEventListener('hashchange', () => { route(); focusMain(); });
if (!location.hash) history.replaceState(null, '', '#/jobs');
route();
