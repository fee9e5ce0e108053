// series.js - a job's metric curves kept in the browser, filled through the API's cursor: the
// first read asks for downsampled history (max_points per key), later reads ask only for points
// after the cursor. One cursor per job (all keys, or the key list given), so a poll is one request.
// Not here: drawing (charts.js).

import { get, qs } from './api.js';

// Above this many points in the browser a key is re-read as downsampled history.
const REFETCH_FACTOR = 4;

export class MetricStore {
  constructor(jobId, { maxPoints = 2000, keys = null } = {}) {
    this.jobId = jobId;
    this.maxPoints = maxPoints;
    this.keys = keys;
    this.cursor = 0;
    this.series = new Map();     // key -> { x: [step], y: [value], t: [time s] | null, count }
    this.state = null;
    this.requests = 0;
    this.hasTime = false;
  }

  // Reads everything new; returns the set of keys that changed (empty when nothing new).
  async update() {
    const changed = new Set();
    for (let round = 0; round < 8; round++) {
      const r = await get('/v1/jobs/' + this.jobId + '/metrics' + qs({
        after: this.cursor || undefined,
        keys: this.keys ? this.keys.join(',') : undefined,
        max_points: this.maxPoints,
      }));
      this.requests++;
      this.state = r.state;
      for (const [key, s] of Object.entries(r.series || {})) {
        if (!s.points || !s.points.length) continue;
        this.append(key, s.points, s.count);
        changed.add(key);
      }
      if (typeof r.cursor === 'number' && r.cursor > this.cursor) this.cursor = r.cursor;
      if (!r.more) break;
    }
    // A long live run grows its arrays point by point: start again from downsampled history.
    for (const s of this.series.values()) {
      if (s.x.length > REFETCH_FACTOR * this.maxPoints) {
        this.series.clear();
        this.cursor = 0;
        return this.update();
      }
    }
    return changed;
  }

  append(key, points, count) {
    let s = this.series.get(key);
    if (!s) {
      s = { x: [], y: [], t: null, count: 0 };
      this.series.set(key, s);
    }
    s.count += count || points.length;
    for (const p of points) {
      const step = p[0];
      // A job resumed from a checkpoint reports the steps after it again: the new run replaces
      // the tail of the old one, so x stays increasing.
      while (s.x.length && s.x[s.x.length - 1] > step) {
        s.x.pop(); s.y.pop(); if (s.t) s.t.pop();
      }
      const v = p[1] === null ? null : Number(p[1]);
      if (s.x.length && s.x[s.x.length - 1] === step) {
        s.y[s.y.length - 1] = v;
        if (s.t && p.length > 2) s.t[s.t.length - 1] = p[2];
        continue;
      }
      s.x.push(step);
      s.y.push(v);
      if (p.length > 2) {
        if (!s.t) s.t = [];
        s.t.push(typeof p[2] === 'number' ? p[2] : Date.parse(p[2]) / 1000);
        this.hasTime = true;
      } else if (s.t) {
        s.t.push(null);
      }
    }
  }

  keysSorted() {
    return [...this.series.keys()].sort(keyOrder);
  }

  points() {
    let n = 0;
    for (const s of this.series.values()) n += s.x.length;
    return n;
  }
}

// loss first, then the other training curves, SSL health, evaluations; alphabetical within.
export function keyGroup(key) {
  if (key === 'loss' || /(^|[/_])loss$/.test(key) || key.startsWith('loss/')) return 0;
  if (key.startsWith('eval/')) return 3;
  if (key.startsWith('health/') || key === 'collapsed' || key === 'pos_cosine' || key === 'neg_cosine' ||
      /cosine|uniformity|alignment|std|rank|entropy/.test(key)) return 2;
  return 1;
}

export function keyOrder(a, b) {
  const ga = keyGroup(a), gb = keyGroup(b);
  if (ga !== gb) return ga - gb;
  if (a === 'loss') return -1;
  if (b === 'loss') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

// Tensorboard-style EMA with bias correction, so the first points are not pulled towards 0.
export function ema(values, alpha) {
  if (!alpha) return values;
  const out = new Array(values.length);
  let s = 0, w = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || !Number.isFinite(v)) { out[i] = null; continue; }
    s = alpha * s + (1 - alpha) * v;
    w = alpha * w + (1 - alpha);
    out[i] = s / w;
  }
  return out;
}
