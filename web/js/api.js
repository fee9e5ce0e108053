// api.js - the dashboard's only door to ssld's /v1 API: JSON requests with the bearer token from
// local storage, errors turned into ApiError {status, code, field, message, errors}, a cache of the
// method catalogue and of finished jobs. Not here: rendering, polling policy.

const TOKEN_KEY = 'ssld.token';

// errors: every error of the answer, [{code, message, field}], from its `errors` list when it has
// one (a server that reports all the problems of a spec at once), else the one `error`.
export class ApiError extends Error {
  constructor(status, code, message, field, errors) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
    this.errors = errors && errors.length ? errors : [{ code, message, field: this.field }];
  }
}

function errorList(data) {
  if (!data || !Array.isArray(data.errors)) return null;
  return data.errors.map((e) => (typeof e === 'string' ? { code: 'invalid', message: e, field: null }
    : { code: e.code || 'invalid', message: e.message || String(e.code || 'invalid'), field: e.field || e.path || null }));
}

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

export function setToken(t) {
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lives for this page only */ }
  sessionToken = t;
}

let sessionToken = null;
const listeners = new Set();

// Called with an ApiError whenever a request is refused with 401 (the header opens the token box).
export function onUnauthorized(fn) { listeners.add(fn); return () => listeners.delete(fn); }

export async function request(method, path, body, { signal } = {}) {
  const headers = { Accept: 'application/json' };
  const token = sessionToken !== null ? sessionToken : getToken();
  if (token) headers.Authorization = 'Bearer ' + token;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let resp;
  try {
    // index.html may have started this very read already (a job page's first requests).
    const pre = method === 'GET' && window.ssldPrefetch && window.ssldPrefetch[path];
    if (pre) delete window.ssldPrefetch[path];
    resp = await (pre || fetch(path, { method, headers, body: payload, signal, cache: 'no-cache' }));
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'cannot reach ssld (' + e.message + ')');
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!resp.ok) {
    const list = errorList(data);
    const e = data && data.error && typeof data.error === 'object' ? data.error : (list && list[0]) || {};
    const err = new ApiError(resp.status, e.code || 'http_' + resp.status,
      e.message || resp.status + ' ' + resp.statusText, e.field, list);
    if (resp.status === 401) listeners.forEach((fn) => fn(err));
    throw err;
  }
  if (data === null && text) throw new ApiError(resp.status, 'bad_json', method + ' ' + path + ': the answer is not JSON');
  return data;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body === undefined ? '' : body, opts);

export function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(v).replace(/%2C/g, ','));
  }
  return parts.length ? '?' + parts.join('&') : '';
}

// ---- cached reads ------------------------------------------------------------------------------

let catalog = null;
export function methods() {
  if (!catalog) catalog = get('/v1/methods').catch((e) => { catalog = null; throw e; });
  return catalog;
}

// Finished jobs never change, so their full record is fetched once per page load.
const finished = new Map();
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

export async function job(id) {
  if (finished.has(id)) return finished.get(id);
  const j = await get('/v1/jobs/' + id);
  if (FINAL.has(j.state)) finished.set(id, j);
  return j;
}

export function isFinal(state) { return FINAL.has(state); }

// Methods that can produce samples, and of what kind. The catalogue's own "generates" field wins
// when the server publishes one.
const GENERATIVE = { vae: 'images', autoregressive_lm: 'text' };
export async function generates(method) {
  try {
    const cat = await methods();
    const m = (cat.methods || []).find((x) => x.name === method);
    if (m && 'generates' in m) return m.generates || null;
  } catch { /* fall back to the built-in list */ }
  return GENERATIVE[method] || null;
}
