// specdiff.js - how the resolved specs of several jobs differ, for the compare page: each spec
// flattened to dotted paths (`pretrain.optimizer.lr`, `evaluations[1].label_fractions`), the
// paths whose values are not the same in every job, and the jobs grouped by the data they trained
// and were tested on (the whole resolved `dataset`: name or format, files, limits). Results of
// jobs in different groups are unlike things. Pure functions over plain objects; no DOM here
// (compare.js draws them).

// The job's name heads its column already; every other key that differs is listed.
const NOT_A_DIFFERENCE = new Set(['name']);

// {path: value} for every leaf of a spec. An array of scalars is one leaf (compared as a whole);
// an array of objects (evaluations) is walked with its indices; an empty object is a leaf ({}).
export function flatten(spec, prefix = '', out = {}) {
  if (spec === null || typeof spec !== 'object' || (Array.isArray(spec) && !spec.some((v) => v && typeof v === 'object'))) {
    out[prefix] = spec;
    return out;
  }
  const entries = Array.isArray(spec) ? spec.map((v, i) => [`${prefix}[${i}]`, v]) : Object.entries(spec).map(([k, v]) => [prefix ? prefix + '.' + k : k, v]);
  if (!entries.length) out[prefix] = spec;
  for (const [p, v] of entries) flatten(v, p, out);
  return out;
}

// A value written once for comparing: key order does not matter, an absent key is undefined.
export function canon(v) {
  if (v === undefined) return 'undefined';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']';
  return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}';
}

// The paths whose values differ between the specs (one spec per job, null when unknown), in the
// order of the first spec that has them: [{path, values: [v per job]}]. A spec that is null takes
// no part (its column shows nothing).
export function specDiff(specs) {
  const flat = specs.map((s) => (s ? flatten(s) : null));
  const paths = [];
  const seen = new Set();
  for (const f of flat) if (f) for (const p of Object.keys(f)) if (!seen.has(p)) { seen.add(p); paths.push(p); }
  const known = flat.filter(Boolean);
  if (known.length < 2) return [];
  return paths.filter((p) => !NOT_A_DIFFERENCE.has(p))
    .filter((p) => new Set(known.map((f) => canon(f[p]))).size > 1)
    .map((p) => ({ path: p, values: flat.map((f) => (f ? f[p] : undefined)) }));
}

// The jobs grouped by their resolved `dataset`: a group index per job (null for a job whose spec
// is unknown), and the number of groups. One group means the jobs' results are comparable.
export function dataGroups(specs) {
  const keys = [];
  const group = specs.map((s) => {
    if (!s) return null;
    const k = canon(typeof s.dataset === 'string' ? { name: s.dataset } : s.dataset);
    let i = keys.indexOf(k);
    if (i < 0) { keys.push(k); i = keys.length - 1; }
    return i;
  });
  return { group, count: keys.length };
}

// A value as the diff table shows it.
export function showValue(v) {
  if (v === undefined) return '—';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}
