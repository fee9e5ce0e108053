// submit.js - the submit page (#/submit): a form derived from GET /v1/methods, or raw JSON.
//
// Every field comes from the catalogue: one per leaf row of `spec_keys`, one per method parameter
// (`methods[].params`) and per protocol key (`protocols[].keys`). A row with `only` belongs to
// some variants of its level (`model.*` to encoders, `pretrain.optimizer.*` to optimizers,
// `dataset.*` to formats, `evaluations[].*` to protocols); the key that selects the variant is
// found in the catalogue too (the sibling enum whose choices the `only` lists name), so a field
// is shown exactly when the chosen variant is in its `only`. What this file knows of key names is
// presentation only: which section a key sits in and whether it is "basic" (shown) or under
// "Advanced" (one click away) - no key is ever left out. A type the form cannot edit as a control
// (an object, "string|object" without sub-keys) gets a JSON-value field.
//
// The API is the only validator: each error it names (`errors`, else `error`) is shown next to its
// field. Only values that differ from a default are sent, so the server's defaults stay in charge.
//
// "Run again with changes" (#/submit?from=17) opens the same form prefilled with job 17's resolved
// spec (the job's `spec`, every default spelled out). What is sent is then that spec with the
// fields the user changed written over it, and the keys that no longer apply (a field hidden by a
// change of encoder, optimizer, format or method) taken out: the new job is the old one plus the
// edits, whatever the form can or cannot show. Not here: job pages.

import { ApiError, get, job as jobDetail, methods, post } from './api.js';
import { h } from './util.js';

// ---- presentation: sections, and the keys shown before "Advanced" -------------------------------

const SECTIONS = [
  { id: 'job', title: 'Job', has: (p) => !p.includes('.') },
  { id: 'dataset', title: 'Dataset', has: (p) => p.startsWith('dataset.'), allBasic: true },
  { id: 'params', title: 'Method parameters', has: (p) => p.startsWith('params.'), allBasic: true },
  { id: 'model', title: 'Model', has: (p) => p.startsWith('model.'), allBasic: true },
  { id: 'augment', title: 'Augmentation', has: (p) => /^augment2?(\.|$)/.test(p) },
  { id: 'pretrain', title: 'Pretraining', has: (p) => p.startsWith('pretrain.') },
  { id: 'other', title: 'Other keys', has: () => true },
];
const BASIC = new Set(['name', 'seed', 'threads', 'priority', 'augment.preset', 'pretrain.epochs', 'pretrain.batch_size',
  'pretrain.optimizer.name', 'pretrain.optimizer.lr']);
// Objects with a short string form: {"name": "x"} is sent as "x", {"preset": "simclr"} as "simclr".
const SHORT_FORM = { dataset: 'name', augment: 'preset' };

// ---- the catalogue, read as levels and variants -------------------------------------------------

function parentOf(path) {
  const i = path.lastIndexOf('.');
  return i < 0 ? '' : path.slice(0, i);
}

// For each level whose keys carry `only`: the enum key that selects the variant, and the variants
// that hold when it is left empty (those of `only` that are not among its choices: "named" for a
// dataset without a format).
function findSelectors(rows) {
  const out = new Map();
  for (const lvl of new Set(rows.filter((r) => r.only).map((r) => parentOf(r.path)))) {
    const only = new Set(rows.filter((r) => r.only && parentOf(r.path) === lvl).flatMap((r) => r.only));
    let best = null, score = 0;
    for (const r of rows) {
      if (parentOf(r.path) !== lvl || !r.enum) continue;
      const s = r.enum.filter((v) => only.has(v)).length;
      if (s > score) { best = r; score = s; }
    }
    if (best) out.set(lvl, { path: best.path, unset: [...only].filter((v) => !best.enum.includes(v)) });
  }
  return out;
}

// Rows that are edited as fields: not those that only hold other rows (model, pretrain.optimizer),
// not the method (the picker) nor `params` (its keys are the method's parameters).
function leafRows(rows) {
  const parents = new Set();
  for (const r of rows) {
    const m = /^(.*?)(\[\])?\.[^.]+$/.exec(r.path);
    for (let p = m ? m[1] : ''; p; p = parentOf(p)) parents.add(p);
  }
  return rows.filter((r) => !parents.has(r.path) && r.path !== 'method' && r.path !== 'params');
}

// Cross-field rules the catalogue states per method rather than per key: a method without views
// (no pretraining, "none") takes no pretrain or augment keys; augment2 is the second view's; the
// augmentations are of images, so a method whose data holds none (text) takes none.
const IMAGE_KINDS = ['images', 'captions'];
function methodAllows(path, m) {
  if (!m) return true;
  if (m.views === 0 && /^(pretrain\.|augment)/.test(path)) return false;
  if (m.views < 2 && /^augment2(\.|$)/.test(path)) return false;
  if (m.datasets && !m.datasets.some((k) => IMAGE_KINDS.includes(k)) && /^augment/.test(path)) return false;
  return true;
}

// ---- one field ----------------------------------------------------------------------------------

let uid = 0;

function show(v) {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const SCALAR = /^(boolean|enum|integer|number|string|string\|integer|"auto"\|boolean|array<(number|integer|string)>)$/;

// A form control for one spec key. Returns { el, path, read() -> [value, isDefault], input }.
function field(path, meta, { label, value, emptyLabel } = {}) {
  const id = 'f' + (++uid);
  const errId = id + '-err', helpId = id + '-help';
  let type = meta.type || 'string';
  if (meta.enum && meta.enum.length) type = 'enum';
  const json = !SCALAR.test(type);
  const def = meta.default;
  const initial = value !== undefined ? value : def;
  let input;
  if (type === 'boolean') {
    input = h('input', { type: 'checkbox', id, checked: Boolean(initial) });
  } else if (type === 'enum') {
    input = h('select', { id }, (def === null || def === undefined ? [h('option', { value: '' }, emptyLabel || '(default)')] : []),
      meta.enum.map((o) => h('option', { value: String(o), selected: String(o) === String(initial) }, String(o))));
  } else if (type === '"auto"|boolean') {
    input = h('select', { id }, ['auto', 'true', 'false'].map((o) => h('option', { value: o, selected: String(initial) === o }, o)));
  } else if (type === 'integer' || type === 'number') {
    input = h('input', {
      type: 'number', id, value: show(initial), step: type === 'integer' ? '1' : 'any', inputmode: type === 'integer' ? 'numeric' : 'decimal',
      min: meta.min != null && !meta.exclusive_min ? String(meta.min) : undefined,
      max: meta.max != null && !meta.exclusive_max ? String(meta.max) : undefined,
    });
  } else {
    const shownDef = typeof def === 'string' && def.includes('<');
    const placeholder = shownDef ? def : meta.default_text ? meta.default_text : json ? 'a JSON value' : type === 'array<string>' ? 'comma-separated' :
      type.startsWith('array') ? 'comma-separated, e.g. 0.01, 0.1, 1' : '';
    input = h('input', { type: 'text', id, class: json ? 'json' : undefined, value: shownDef && value === undefined ? '' : show(initial), placeholder, spellcheck: 'false' });
  }
  input.setAttribute('aria-describedby', helpId + ' ' + errId);
  input.name = path;
  // A dataset's file or folder may be an uploaded dataset: offer them (the datalist mount() fills).
  if (input.type === 'text' && /^dataset\./.test(path) && type === 'string') input.setAttribute('list', 'uploaded-datasets');
  const range = meta.min != null || meta.max != null ?
    ` · ${meta.min ?? '−∞'}${meta.exclusive_min ? ' <' : ' ≤'} x ${meta.exclusive_max ? '<' : '≤'} ${meta.max ?? '∞'}` : '';
  const defText = (def === null || def === undefined) && meta.default_text ? ' · default ' + meta.default_text :
    def === null || def === undefined || (typeof def === 'object' && !Array.isArray(def)) ? '' :
    ' · default ' + (Array.isArray(def) ? '[' + def.join(', ') + ']' : JSON.stringify(def).replace(/^"|"$/g, ''));
  const jsonText = json ? ` · ${type}, written as JSON (the JSON tab edits the whole spec)` : '';
  const el = h('div', { class: 'field' + (type === 'boolean' ? ' bool' : ''), dataset: { field: path } },
    h('label', { for: id }, label || path.split('.').pop()),
    input,
    h('p', { class: 'help', id: helpId }, (meta.help || '') + defText + range + jsonText),
    h('p', { class: 'field-error', id: errId, role: 'alert' }));

  function read() {
    if (type === 'boolean') return [input.checked, input.checked === Boolean(def)];
    const raw = input.value.trim();
    if (raw === '') return [undefined, true];
    if (json) {
      // A value that is not JSON goes as a string ("light" without its quotes).
      let v;
      try { v = JSON.parse(raw); } catch { v = raw; }
      return [v, JSON.stringify(v) === JSON.stringify(def)];
    }
    if (type === 'enum') {
      // The choice as the catalogue spells it (a number stays a number).
      const c = meta.enum.find((o) => String(o) === raw);
      const v = c !== undefined ? c : raw;
      return [v, v === def];
    }
    if (type === '"auto"|boolean') { const v = raw === 'auto' ? 'auto' : raw === 'true'; return [v, v === def]; }
    if (type === 'string|integer') { const v = /^-?\d+$/.test(raw) ? Number(raw) : raw; return [v, v === def]; }
    if (type === 'integer' || type === 'number') {
      // Anything that is not a number goes to the API as written, so its message names the field.
      const v = Number(raw);
      const out = Number.isFinite(v) ? v : raw;
      return [out, out === def];
    }
    if (type.startsWith('array')) {
      const strings = type === 'array<string>';
      const parts = raw.replace(/^\[|\]$/g, '').split(strings ? /\s*,\s*/ : /[\s,]+/).filter(Boolean);
      const v = strings ? parts : parts.map((p) => (Number.isFinite(Number(p)) ? Number(p) : p));
      return [v, JSON.stringify(v) === JSON.stringify(def)];
    }
    return [raw, raw === def];
  }
  return { el, path, read, input };
}

function getPath(obj, path) {
  let o = obj;
  for (const k of path.split('.')) {
    if (o === null || typeof o !== 'object') return undefined;
    o = o[k];
  }
  return o;
}

function deletePath(obj, path) {
  const parts = path.split('.');
  const o = parts.length > 1 ? getPath(obj, parts.slice(0, -1).join('.')) : obj;
  if (o && typeof o === 'object') delete o[parts[parts.length - 1]];
}

// A control's state as text, to tell whether the user changed it since it was filled.
function state(f) {
  return f.input.type === 'checkbox' ? String(f.input.checked) : f.input.value;
}

// Puts a spec value in a control (a select's value, a list as "a, b", an object as JSON).
function setControl(f, v) {
  if (f.input.type === 'checkbox') f.input.checked = Boolean(v);
  else if (f.input.tagName === 'SELECT') f.input.value = v === null || v === undefined ? '' : String(v);
  else f.input.value = show(v);
}

function setPath(obj, path, value) {
  const parts = path.split('.');
  let o = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    if (typeof o[parts[i]] !== 'object' || o[parts[i]] === null) o[parts[i]] = {};
    o = o[parts[i]];
  }
  o[parts[parts.length - 1]] = value;
}

// ---- the page ----------------------------------------------------------------------------------

export function mount(main, params = {}) {
  const fromId = /^\d+$/.test(params.from || '') ? Number(params.from) : null;
  main.append(h('div', { class: 'page-head' }, h('h1', {}, fromId ? `Run job ${fromId} again with changes` : 'Submit a job')));
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading the method catalogue…'));
  main.append(body);
  let alive = true;
  const source = fromId ? jobDetail(fromId).catch((e) => { throw new Error(`Cannot load job ${fromId}: ${e.message}`); }) : null;
  // The uploaded datasets, offered in the dataset path fields (best effort: a server that hides
  // them from this client leaves the list empty).
  const uploads = h('datalist', { id: 'uploaded-datasets' });
  main.append(uploads);
  get('/v1/datasets').then((r) => {
    uploads.replaceChildren(...(r.datasets || []).map((d) => h('option', { value: d.ref }, `${d.format}, ${d.files} files, ${d.owner}`)));
  }).catch(() => {});
  Promise.all([methods().catch((e) => { throw new Error('Cannot load the catalogue: ' + e.message); }), source]).then(([cat, j]) => {
    if (alive) build(body, cat, j ? { id: fromId, spec: j.spec || {} } : null);
  }).catch((e) => {
    body.replaceChildren(h('p', { class: 'alert bad' }, e.message));
  });
  return () => { alive = false; };
}

// from: {id, spec} of the job to run again, or null for a blank form.
function build(body, cat, from) {
  const rows = cat.spec_keys || [];
  const keys = new Map(rows.map((k) => [k.path, k]));
  const selectors = findSelectors(rows);
  const selectorPaths = new Set([...selectors.values()].map((s) => s.path));
  const methodList = cat.methods || [];
  const methodEnum = (keys.get('method') || {}).enum || methodList.map((m) => m.name);
  // The spec to run again, its short forms written as objects so fields can be laid over it.
  const base = from ? structuredClone(from.spec) : null;
  if (base) for (const [obj, key] of Object.entries(SHORT_FORM)) if (typeof base[obj] === 'string') base[obj] = { [key]: base[obj] };
  let method = base && methodEnum.includes(base.method) ? base.method : methodList[0] ? methodList[0].name : methodEnum[0];
  const curMethod = () => methodList.find((x) => x.name === method);
  let fields = [];          // every field of the form (evaluation rows apart), for reading and errors
  let evalRows = [];

  const tabs = h('div', { class: 'seg tabs', role: 'tablist', 'aria-label': 'how to write the job' });
  const formTab = h('button', { type: 'button', role: 'tab', id: 'tab-form', 'aria-selected': 'true', 'aria-controls': 'panel-form' }, 'Form');
  const jsonTab = h('button', { type: 'button', role: 'tab', id: 'tab-json', 'aria-selected': 'false', 'aria-controls': 'panel-json', tabindex: '-1' }, 'JSON');
  tabs.append(formTab, jsonTab);
  const banner = h('div', { class: 'alert bad', role: 'alert', hidden: true });
  const okBox = h('div', { class: 'alert ok', role: 'status', hidden: true });

  // method picker
  const methodFs = h('fieldset', { class: 'methods', dataset: { field: 'method' } }, h('legend', {}, 'Pretext method'));
  for (const name of methodEnum) {
    const m = methodList.find((x) => x.name === name);
    const id = 'm-' + name;
    methodFs.append(h('label', { class: 'method-card', for: id },
      h('input', { type: 'radio', name: 'method', id, value: name, checked: name === method, onchange: () => { method = name; rebuildMethodParts(); } }),
      h('span', { class: 'mname' }, name), m ? h('span', { class: 'mfam' }, m.family) : h('span', { class: 'mfam' }, 'no pretraining'),
      h('span', { class: 'msum' }, m ? m.summary : 'no pretext task: only the evaluations (e.g. the supervised baseline)')));
  }
  methodFs.append(h('p', { class: 'field-error', role: 'alert' }));

  // sections: a card each, basic fields first, the rest under "Advanced"; the evaluations after
  // pretraining
  const evalBox = h('div', { class: 'eval-rows' });
  const addEval = h('button', { type: 'button', class: 'ghost', onclick: () => { addEvalRow({ protocol: ((cat.protocols || [])[0] || {}).name || '', label_fractions: [0.1] }); } }, 'Add evaluation');
  const evalCard = h('section', { class: 'card', dataset: { section: 'evaluations' } }, h('h2', {}, 'Evaluations'),
    h('p', { class: 'hint' }, 'Downstream protocols run after pretraining, each at the listed label fractions; add “supervised” for the from-scratch baseline.'),
    h('div', { dataset: { field: 'evaluations' } }, evalBox, h('p', { class: 'field-error', role: 'alert' })), addEval);
  const sections = new Map();
  const cards = [];
  for (const s of SECTIONS) {
    const basic = h('div', { class: 'fields' });
    const adv = h('div', { class: 'fields' });
    const advBox = h('details', { class: 'advanced' }, h('summary', {}, 'Advanced'), adv);
    const note = h('p', { class: 'empty', hidden: true });
    const card = h('section', { class: 'card', dataset: { section: s.id } }, h('h2', {}, s.title), note, basic, advBox);
    sections.set(s.id, { ...s, card, basic, adv, advBox, note });
    cards.push(card);
    if (s.id === 'pretrain') cards.push(evalCard);
  }
  const sectionOf = (path) => sections.get(SECTIONS.find((s) => s.has(path)).id);

  const submitBtn = h('button', { type: 'submit', class: 'primary' }, 'Submit job');
  const form = h('form', { id: 'panel-form', role: 'tabpanel', 'aria-labelledby': 'tab-form', novalidate: true, class: 'submit-form' },
    methodFs, cards, h('div', { class: 'actions' }, submitBtn));

  const jsonText = h('textarea', { id: 'spec-json', rows: '22', spellcheck: 'false', 'aria-describedby': 'json-help' });
  const exampleSel = h('select', { id: 'example-pick' }, h('option', { value: '' }, 'Load an example…'),
    methodList.map((m) => h('option', { value: m.name }, m.name)));
  exampleSel.addEventListener('change', () => {
    const m = methodList.find((x) => x.name === exampleSel.value);
    if (m && m.example) jsonText.value = JSON.stringify(m.example, null, 2);
    exampleSel.value = '';
  });
  const jsonErr = h('p', { class: 'field-error lines', id: 'json-err', role: 'alert' });
  const jsonForm = h('form', { id: 'panel-json', role: 'tabpanel', 'aria-labelledby': 'tab-json', hidden: true, class: 'submit-json', novalidate: true },
    h('div', { class: 'row' }, h('label', { for: 'spec-json' }, 'Job spec'), h('span', { class: 'spacer' }), exampleSel),
    h('p', { class: 'hint', id: 'json-help' }, 'The body of POST /v1/jobs. Switching here from the form copies the form’s spec; edits here do not flow back.'),
    jsonText, jsonErr,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Submit JSON')));

  const fromNote = from ? h('p', { class: 'hint from-note', id: 'from-note' }, 'Prefilled with the resolved spec of ',
    h('a', { href: '#/job/' + from.id }, 'job ' + from.id), ' (every default spelled out). Change what you want: the rest is sent as it was, so the new job is that job with your changes.') : null;
  body.replaceChildren(...[fromNote, tabs, banner, okBox, form, jsonForm].filter(Boolean));

  function selectTab(json) {
    formTab.setAttribute('aria-selected', String(!json));
    jsonTab.setAttribute('aria-selected', String(json));
    formTab.tabIndex = json ? -1 : 0;
    jsonTab.tabIndex = json ? 0 : -1;
    form.hidden = json;
    jsonForm.hidden = !json;
    if (json) jsonText.value = JSON.stringify(buildSpec(), null, 2);
  }
  formTab.addEventListener('click', () => selectTab(false));
  jsonTab.addEventListener('click', () => selectTab(true));
  tabs.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') { const j = formTab.getAttribute('aria-selected') === 'true'; selectTab(j); (j ? jsonTab : formTab).focus(); }
  });

  // ---- fields --------------------------------------------------------------------------------

  const LABEL_TRIM = /^(dataset|model|pretrain|augment)\./;
  // A field goes to its section, basic or "Advanced"; a level's selector comes first.
  function place(f) {
    const s = sectionOf(f.path);
    const box = s.allBasic || BASIC.has(f.path) || selectorPaths.has(f.path) ? s.basic : s.adv;
    if (selectorPaths.has(f.path)) box.prepend(f.el);
    else box.append(f.el);
  }
  function makeField(row, opts = {}) {
    const sel = selectors.get(parentOf(row.path));
    const emptyLabel = sel && sel.path === row.path && sel.unset.length ? `(${sel.unset.join(', ')})` : undefined;
    const f = field(row.path, row, { label: row.path.replace(LABEL_TRIM, ''), emptyLabel, ...opts });
    f.row = row;
    if (selectorPaths.has(row.path)) f.input.addEventListener('change', refresh);
    return f;
  }

  // The fields that do not depend on the method, built once (values survive a change of method);
  // the encoder (its choices) and the augmentation preset (its default) are the method's.
  const METHOD_OWNED = new Set(['model.encoder', 'augment.preset']);
  const common = [];
  for (const row of leafRows(rows)) {
    if (row.path.startsWith('evaluations[]') || METHOD_OWNED.has(row.path)) continue;
    const f = makeField(row);
    place(f);
    common.push(f);
  }
  if (base) {
    for (const f of common) {
      const v = getPath(base, f.path);
      if (v !== undefined) setControl(f, v);
      f.snap = state(f);
    }
  }

  // The variant each level is in now: its selector's value, or the variants of an empty selector.
  function variantsOf(level) {
    const sel = selectors.get(level);
    if (!sel) return null;
    const f = fields.find((x) => x.path === sel.path && !x.off) || fields.find((x) => x.path === sel.path);
    const v = f ? f.input.value : '';
    return v ? [v] : sel.unset;
  }
  function applies(row, m) {
    if (!methodAllows(row.path, m)) return false;
    if (!row.only || selectorPaths.has(row.path)) return true;
    const vs = variantsOf(parentOf(row.path));
    return !vs || row.only.some((v) => vs.includes(v));
  }

  // Shows exactly the fields whose variant is chosen; a card or "Advanced" with nothing left hides.
  function refresh() {
    const m = curMethod();
    for (let pass = 0; pass < 2; pass++) {     // a selector may itself depend on another level
      for (const f of fields) {
        if (!f.row) continue;
        const on = applies(f.row, m);
        f.el.hidden = !on;
        f.off = !on;
      }
    }
    for (const s of sections.values()) {
      const any = (box) => [...box.children].some((e) => !e.hidden);
      s.advBox.hidden = !any(s.adv);
      const none = !any(s.basic) && s.advBox.hidden;
      s.card.hidden = none && s.id !== 'params';
      if (s.id === 'params') {
        s.note.hidden = !none;
        s.note.textContent = m ? 'This method has no parameters.' : 'No pretraining.';
      }
    }
  }

  // Which parts the user has edited (they then keep their values across a change of method); a
  // job run again keeps its own dataset and evaluations.
  const edited = { dataset: Boolean(base), evaluations: Boolean(base) };
  sections.get('dataset').card.addEventListener('input', () => { edited.dataset = true; });
  sections.get('dataset').card.addEventListener('change', () => { edited.dataset = true; });
  for (const t of ['input', 'change', 'click']) evalCard.addEventListener(t, (e) => { if (t !== 'click' || e.target.closest('button')) edited.evaluations = true; });

  // Sets the dataset fields to a spec's dataset (a name, or an object); the others to their defaults.
  function fillDataset(ds) {
    const obj = typeof ds === 'string' ? { name: ds } : ds || {};
    for (const f of common) {
      if (!f.path.startsWith('dataset.')) continue;
      const k = f.path.slice('dataset.'.length);
      const v = k in obj ? obj[k] : f.row.default;
      if (f.input.tagName === 'INPUT' && f.input.type !== 'checkbox' && typeof v === 'string' && v.includes('<')) f.input.value = '';
      else setControl(f, v);
    }
  }

  let methodFields = [];
  function rebuildMethodParts() {
    const m = curMethod();
    for (const f of methodFields) f.el.remove();
    methodFields = [];
    for (const p of (m && m.params) || []) {
      const f = field('params.' + p.name, p, { label: p.name });
      place(f);
      methodFields.push(f);
    }
    const encRow = { ...(keys.get('model.encoder') || { path: 'model.encoder', type: 'enum' }) };
    if (m) { encRow.enum = m.encoders; encRow.default = m.default_encoder; }
    if (encRow.enum) {
      const enc = makeField(encRow);
      sectionOf('model.encoder').basic.prepend(enc.el);
      methodFields.push(enc);
    }
    const presetRow = keys.get('augment.preset');
    if (presetRow) {
      const a = makeField({ ...presetRow, default: m ? m.default_augment : presetRow.default,
        help: (keys.get('augment') || presetRow).help }, { label: 'preset' });
      sectionOf('augment.preset').basic.prepend(a.el);
      methodFields.push(a);
    }
    // Run again: the method's own fields start from the job's values while its method is chosen
    // (the encoder also after a change of method, when the new one offers it; it is then always
    // sent, since the old spec's encoder may not be the new method's default).
    if (base) {
      const same = method === base.method;
      for (const f of methodFields) {
        const keep = same || f.path === 'model.encoder' || f.path === 'augment.preset';
        const v = keep ? getPath(base, f.path) : undefined;
        if (v !== undefined && (f.input.tagName !== 'SELECT' || [...f.input.options].some((o) => o.value === String(v)))) setControl(f, v);
        f.snap = f.path === 'model.encoder' && !same ? null : state(f);
      }
    }
    fields = [...methodFields, ...common];
    // The dataset and the evaluations start from the method's example until the user edits them
    // (a text method's example names a text dataset and evaluations that fit it).
    const ex = (m && m.example) || {};
    if (!edited.dataset && ex.dataset !== undefined) fillDataset(ex.dataset);
    if (!base && (!edited.evaluations || !evalRows.length)) {
      for (const r of evalRows.splice(0)) r.box.remove();
      const evs = Array.isArray(ex.evaluations) && ex.evaluations.length ? ex.evaluations :
        [{ protocol: ((cat.protocols || [])[0] || {}).name || '', label_fractions: [0.01, 0.1, 1] }];
      evs.forEach((e) => addEvalRow(e));
      edited.evaluations = false;
    }
    refresh();
    clearErrors();
  }

  // ---- evaluation rows -----------------------------------------------------------------------

  const evalKeyRows = leafRows(rows).filter((r) => r.path.startsWith('evaluations[].') && r.path !== 'evaluations[].protocol');
  // init: the row's first values; fromBase: it is an evaluation of the job run again (kept as it
  // was, with the edited fields written over it, until its protocol changes).
  function addEvalRow(init, fromBase = false) {
    const row = { fields: [], values: {}, base: fromBase ? structuredClone(init) : null };
    const box = h('fieldset', { class: 'eval-row' });
    const protoMeta = keys.get('evaluations[].protocol') || { type: 'enum', enum: (cat.protocols || []).map((p) => p.name) };
    const rebuild = () => {
      const i = evalRows.indexOf(row);
      // Values typed in (not defaults) survive a change of protocol, for the keys both share.
      for (const f of row.fields) if (!f.read()[1]) row.values[f.key] = f.input.type === 'checkbox' ? f.input.checked : f.input.value;
      const proto = row.protoField ? row.protoField.input.value : init.protocol;
      if (row.base && row.base.protocol !== proto) row.base = null;
      box.replaceChildren(h('legend', {}, `evaluation ${i + 1}`));
      const pf = field(`evaluations[${i}].protocol`, { ...protoMeta, default: null }, { label: 'protocol', value: proto });
      pf.key = 'protocol';
      pf.input.addEventListener('change', rebuild);
      row.protoField = pf;
      row.fields = [pf];
      const main = h('div', { class: 'fields' }, pf.el);
      const extra = h('div', { class: 'fields' });
      const p = (cat.protocols || []).find((x) => x.name === proto);
      const own = (p && p.keys) || [];
      const general = evalKeyRows.filter((r) => (!r.only || r.only.includes(proto)) && !own.some((k) => 'evaluations[].' + k.name === r.path));
      for (const meta of [...general, ...own]) {
        const key = meta.name || meta.path.slice('evaluations[].'.length);
        const f = field(`evaluations[${i}].${key}`, meta, { label: key.replace(/_/g, ' '), value: init[key] });
        f.key = key;
        f.snap = state(f);
        if (key in row.values) setControl(f, row.values[key]);
        (key === 'label_fractions' ? main : extra).append(f.el);
        row.fields.push(f);
      }
      const rm = h('button', { type: 'button', class: 'ghost small', 'aria-label': `remove evaluation ${i + 1}`, onclick: () => {
        evalRows.splice(evalRows.indexOf(row), 1);
        box.remove();
        evalRows.forEach((r) => r.rebuild());
      } }, 'Remove');
      box.append(main, extra.children.length ? h('details', {}, h('summary', {}, `${(proto || 'protocol').replace('_', ' ')} options`), extra) : '', rm);
    };
    row.rebuild = rebuild;
    row.box = box;
    evalRows.push(row);
    evalBox.append(box);
    rebuild();
  }

  // ---- the spec ------------------------------------------------------------------------------

  // The job run again with the user's changes: its spec, less the keys whose fields are hidden
  // now (a whole top-level object when all of its fields are), with every changed field over it.
  function buildFromSpec() {
    const spec = structuredClone(base);
    spec.method = method;
    if (method !== base.method) delete spec.params;
    const allOff = new Map();
    for (const f of fields) {
      const top = f.path.split('.')[0];
      allOff.set(top, (allOff.get(top) ?? true) && Boolean(f.off));
    }
    for (const [top, off] of allOff) if (off) delete spec[top];
    for (const f of fields) if (f.off) deletePath(spec, f.path);
    for (const f of fields) {
      if (f.off || state(f) === f.snap) continue;
      const [v] = f.read();
      if (v === undefined) deletePath(spec, f.path);
      else setPath(spec, f.path, v);
    }
    spec.evaluations = evalRows.map((r) => {
      if (!r.base) return readEvalRow(r);
      const e = structuredClone(r.base);
      for (const f of r.fields) {
        if (state(f) === f.snap) continue;
        const [v] = f.read();
        if (v === undefined) delete e[f.key];
        else e[f.key] = v;
      }
      return e;
    }).filter((e) => e.protocol);
    return spec;
  }

  // An evaluation row as the blank form sends it: its protocol and the values that are not defaults.
  function readEvalRow(r) {
    const e = {};
    for (const f of r.fields) {
      const [v, isDef] = f.read();
      if (v === undefined || (isDef && f.key !== 'protocol')) continue;
      e[f.key] = v;
    }
    return e;
  }

  function buildSpec() {
    if (base) return buildFromSpec();
    const spec = { method };
    const sent = [];
    for (const f of fields) {
      if (f.off) continue;
      const [v, isDef] = f.read();
      if (v === undefined || isDef) continue;
      setPath(spec, f.path, v);
      sent.push(f.path);
    }
    // A level's selector goes along with any key of its level: the fields shown assumed it.
    for (const [lvl, sel] of selectors) {
      if (!lvl || lvl.includes('[]') || sent.includes(sel.path) || !sent.some((p) => parentOf(p) === lvl)) continue;
      const f = fields.find((x) => x.path === sel.path && !x.off);
      if (f && f.input.value) setPath(spec, sel.path, f.input.value);
    }
    // Short forms: an object with only its name (or preset) is sent as that string; an object
    // always carries it (the default one when it was left alone).
    for (const [obj, key] of Object.entries(SHORT_FORM)) {
      const o = spec[obj];
      if (!o || typeof o !== 'object') continue;
      if (!(key in o) && !Object.keys(o).some((k) => selectors.get(obj)?.path === obj + '.' + k)) {
        const f = fields.find((x) => x.path === obj + '.' + key && !x.off);
        const v = f ? f.input.value || (f.row || {}).default : null;
        if (v) spec[obj] = { [key]: v, ...o };
      }
      const keysNow = Object.keys(spec[obj]);
      if (keysNow.length === 1 && keysNow[0] === key) spec[obj] = spec[obj][key];
    }
    const evs = evalRows.map(readEvalRow).filter((e) => e.protocol);
    if (evs.length) spec.evaluations = evs;
    return spec;
  }

  // ---- errors --------------------------------------------------------------------------------

  function clearErrors() {
    banner.hidden = true;
    body.querySelectorAll('.field-error').forEach((e) => { e.textContent = ''; });
    body.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
    body.querySelectorAll('.field.invalid, [data-field].invalid').forEach((e) => e.classList.remove('invalid'));
  }

  // The field element for an API path: exact, else its nearest ancestor ("model.hidden[1]" ->
  // "model.hidden", "evaluations[0].label_fractions[2]" -> "evaluations[0].label_fractions").
  function findField(path) {
    let p = path;
    while (p) {
      const el = [...form.querySelectorAll(`[data-field="${CSS.escape(p)}"]`)].find((e) => !e.closest('[hidden]'));
      if (el) return el;
      if (p === 'dataset') return findField('dataset.name') || findField('dataset.format');
      const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
      p = cut > 0 ? p.slice(0, cut) : '';
    }
    return null;
  }

  const text = (err) => (err.field && !err.message.startsWith(err.field) ? err.field + ': ' : '') + err.message;

  // Every error the API reported: each at its field (the first focused), the others in the banner.
  function showErrors(list, inJson) {
    if (inJson) {
      jsonErr.textContent = list.map(text).join('\n');
      jsonText.setAttribute('aria-invalid', 'true');
      return;
    }
    const loose = [];
    let first = null;
    for (const err of list) {
      const el = err.field ? findField(err.field) : null;
      if (!el) { loose.push(text(err)); continue; }
      el.classList.add('invalid');
      const slot = el.querySelector(':scope > .field-error');
      slot.textContent = slot.textContent ? slot.textContent + '\n' + err.message : err.message;
      const input = el.querySelector('input, select, textarea');
      if (input) input.setAttribute('aria-invalid', 'true');
      for (let d = el.closest('details'); d; d = d.parentElement.closest('details')) d.open = true;
      if (!first) first = { el, input };
    }
    if (loose.length) {
      banner.hidden = false;
      banner.textContent = loose.join('\n');
    }
    if (first) {
      if (first.input) first.input.focus();
      first.el.scrollIntoView({ block: 'center' });
    }
  }

  async function send(spec, inJson) {
    clearErrors();
    okBox.hidden = true;
    jsonErr.textContent = '';
    jsonText.removeAttribute('aria-invalid');
    try {
      const r = await post('/v1/jobs', spec);
      okBox.hidden = false;
      okBox.replaceChildren('Queued as ', h('a', { href: '#/job/' + r.id }, 'job ' + r.id), '.');
      location.hash = '#/job/' + r.id;
    } catch (e) {
      if (e instanceof ApiError && e.status !== 0 && e.status !== 401) showErrors(e.errors, inJson);
      else { banner.hidden = false; banner.textContent = e.message; }
    }
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); send(buildSpec(), false); });
  jsonForm.addEventListener('submit', (e) => { e.preventDefault(); send(jsonText.value, true); });

  // Run again: a field that no longer holds the job's value is marked, so the edits stand out.
  function markChanged() {
    const all = [...fields, ...evalRows.flatMap((r) => (r.base ? r.fields : []))];
    for (const f of all) f.el.classList.toggle('changed', f.snap !== undefined && !f.off && state(f) !== f.snap);
  }

  if (base) for (const e of base.evaluations || []) addEvalRow(e, true);
  rebuildMethodParts();
  if (from) {
    submitBtn.textContent = 'Submit as a new job';
    for (const t of ['input', 'change']) form.addEventListener(t, () => queueMicrotask(markChanged));
  }
}
