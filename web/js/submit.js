// submit.js - the submit page (#/submit): a form generated from GET /v1/methods (method picker,
// every parameter with its default and help), or raw JSON. The API is the only validator: its
// error is shown next to the field it names ("pretrain.epochs", "evaluations[0].label_fractions").
// Only values that differ from a default go into the spec, so the server's defaults stay in charge.
// Not here: job pages.

import { ApiError, methods, post } from './api.js';
import { h } from './util.js';

// Which model.* keys matter for which encoder (the others are hidden, not sent).
const ENCODER_KEYS = {
  mlp: ['hidden', 'out_dim', 'batchnorm', 'dropout'],
  cnn: ['channels', 'out_dim', 'batchnorm', 'dropout'],
  vit: ['dim', 'depth', 'heads', 'patch', 'mlp_ratio', 'pool', 'out_dim', 'dropout'],
  transformer: ['dim', 'depth', 'heads', 'context', 'mlp_ratio', 'pool', 'out_dim', 'dropout'],
};
const BASIC = ['name', 'dataset.name', 'dataset.limit_train', 'dataset.limit_test', 'pretrain.epochs', 'pretrain.batch_size',
  'pretrain.optimizer.lr', 'seed', 'threads', 'priority'];
const ADVANCED_PRETRAIN = ['pretrain.time_budget_s', 'pretrain.max_steps', 'pretrain.grad_clip', 'pretrain.optimizer.name',
  'pretrain.optimizer.weight_decay', 'pretrain.optimizer.momentum', 'pretrain.optimizer.nesterov', 'pretrain.optimizer.betas',
  'pretrain.optimizer.eps', 'pretrain.optimizer.trust_coef', 'pretrain.schedule.name', 'pretrain.schedule.warmup_epochs',
  'pretrain.schedule.min_lr', 'checkpoint_interval_s'];

// ---- one field ----------------------------------------------------------------------------------

let uid = 0;

function show(v) {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.join(', ');
  return String(v);
}

// A form control for one spec key. Returns { el, path, read() -> [value, isDefault] }.
function field(path, meta, { label, value } = {}) {
  const id = 'f' + (++uid);
  const errId = id + '-err', helpId = id + '-help';
  const type = meta.type || 'string';
  const def = meta.default;
  const initial = value !== undefined ? value : def;
  let input;
  if (type === 'boolean') {
    input = h('input', { type: 'checkbox', id, checked: Boolean(initial) });
  } else if (type === 'enum' || (meta.enum && meta.enum.length)) {
    input = h('select', { id }, (def === null || def === undefined ? [h('option', { value: '' }, '(default)')] : []),
      meta.enum.map((o) => h('option', { value: o, selected: o === initial }, o)));
  } else if (type === '"auto"|boolean') {
    input = h('select', { id }, ['auto', 'true', 'false'].map((o) => h('option', { value: o, selected: String(initial) === o }, o)));
  } else if (type === 'integer' || type === 'number') {
    input = h('input', {
      type: 'number', id, value: show(initial), step: type === 'integer' ? '1' : 'any', inputmode: type === 'integer' ? 'numeric' : 'decimal',
      min: meta.min !== undefined && !meta.exclusive_min ? String(meta.min) : undefined,
      max: meta.max !== undefined ? String(meta.max) : undefined,
    });
  } else {
    const placeholder = typeof def === 'string' && def.includes('<') ? def : (type.startsWith('array') ? 'comma-separated, e.g. 0.01, 0.1, 1' : '');
    input = h('input', { type: 'text', id, value: typeof def === 'string' && def.includes('<') && value === undefined ? '' : show(initial), placeholder, spellcheck: 'false' });
  }
  input.setAttribute('aria-describedby', helpId + ' ' + errId);
  input.name = path;
  const range = meta.min !== undefined || meta.max !== undefined ?
    ` · ${meta.min ?? '−∞'}${meta.exclusive_min ? ' <' : ' ≤'} x ≤ ${meta.max ?? '∞'}` : '';
  const defText = def === null || def === undefined ? '' : ' · default ' + (Array.isArray(def) ? '[' + def.join(', ') + ']' : JSON.stringify(def).replace(/^"|"$/g, ''));
  const el = h('div', { class: 'field' + (type === 'boolean' ? ' bool' : ''), dataset: { field: path } },
    h('label', { for: id }, label || path.split('.').pop()),
    input,
    h('p', { class: 'help', id: helpId }, (meta.help || '') + defText + range),
    h('p', { class: 'field-error', id: errId, role: 'alert' }));

  function read() {
    if (type === 'boolean') return [input.checked, input.checked === Boolean(def)];
    const raw = input.value.trim();
    if (raw === '') return [undefined, true];
    if (type === '"auto"|boolean') { const v = raw === 'auto' ? 'auto' : raw === 'true'; return [v, v === def]; }
    if (type === 'integer' || type === 'number') {
      // Anything that is not a number goes to the API as written, so its message names the field.
      const v = Number(raw);
      const out = raw !== '' && Number.isFinite(v) ? v : raw;
      return [out, out === def];
    }
    if (type.startsWith('array')) {
      const parts = raw.replace(/^\[|\]$/g, '').split(/[\s,]+/).filter(Boolean);
      const v = parts.map((p) => (Number.isFinite(Number(p)) ? Number(p) : p));
      return [v, JSON.stringify(v) === JSON.stringify(def)];
    }
    return [raw, raw === def];
  }
  return { el, path, read, input };
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

export function mount(main) {
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Submit a job')));
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading the method catalogue…'));
  main.append(body);
  let alive = true;
  methods().then((cat) => { if (alive) build(body, cat); }).catch((e) => {
    body.replaceChildren(h('p', { class: 'alert bad' }, 'Cannot load the catalogue: ' + e.message));
  });
  return () => { alive = false; };
}

function build(body, cat) {
  const keys = new Map(cat.spec_keys.map((k) => [k.path, k]));
  const methodList = cat.methods || [];
  const methodEnum = (keys.get('method') || {}).enum || methodList.map((m) => m.name);
  let method = methodList[0] ? methodList[0].name : methodEnum[0];
  let fields = [];          // every live field, for reading and for errors
  let evalRows = [];

  const tabs = h('div', { class: 'seg tabs', role: 'tablist', 'aria-label': 'how to write the job' });
  const formTab = h('button', { type: 'button', role: 'tab', id: 'tab-form', 'aria-selected': 'true', 'aria-controls': 'panel-form' }, 'Form');
  const jsonTab = h('button', { type: 'button', role: 'tab', id: 'tab-json', 'aria-selected': 'false', 'aria-controls': 'panel-json', tabindex: '-1' }, 'JSON');
  tabs.append(formTab, jsonTab);
  const banner = h('div', { class: 'alert bad', role: 'alert', hidden: true });
  const okBox = h('div', { class: 'alert ok', role: 'status', hidden: true });

  // method picker
  const methodFs = h('fieldset', { class: 'methods', dataset: { field: 'method' } }, h('legend', {}, 'Pretext method'));
  const methodErr = h('p', { class: 'field-error', role: 'alert' });
  for (const name of methodEnum) {
    const m = methodList.find((x) => x.name === name);
    const id = 'm-' + name;
    methodFs.append(h('label', { class: 'method-card', for: id },
      h('input', { type: 'radio', name: 'method', id, value: name, checked: name === method, onchange: () => { method = name; rebuildMethodParts(); } }),
      h('span', { class: 'mname' }, name), m ? h('span', { class: 'mfam' }, m.family) : h('span', { class: 'mfam' }, 'no pretraining'),
      h('span', { class: 'msum' }, m ? m.summary : 'no pretext task: only the evaluations (e.g. the supervised baseline)')));
  }
  methodFs.append(methodErr);

  const basics = h('div', { class: 'fields' });
  const paramsBox = h('div', { class: 'fields' });
  const modelBox = h('div', { class: 'fields' });
  const advBox = h('div', { class: 'fields' });
  const augBox = h('div', { class: 'fields' });
  const evalBox = h('div', { class: 'eval-rows' });
  const addEval = h('button', { type: 'button', class: 'ghost', onclick: () => { addEvalRow({ protocol: 'linear_probe', label_fractions: [0.1] }); } }, 'Add evaluation');

  const submitBtn = h('button', { type: 'submit', class: 'primary' }, 'Submit job');
  const form = h('form', { id: 'panel-form', role: 'tabpanel', 'aria-labelledby': 'tab-form', novalidate: true, class: 'submit-form' },
    methodFs,
    h('section', { class: 'card' }, h('h2', {}, 'Basics'), basics),
    h('section', { class: 'card' }, h('h2', {}, 'Method parameters'), paramsBox),
    h('section', { class: 'card' }, h('h2', {}, 'Model'), modelBox),
    h('section', { class: 'card' }, h('h2', {}, 'Augmentation'), augBox),
    h('section', { class: 'card' }, h('h2', {}, 'Evaluations'),
      h('p', { class: 'hint' }, 'Downstream protocols run after pretraining, each at the listed label fractions; add “supervised” for the from-scratch baseline.'),
      h('div', { dataset: { field: 'evaluations' } }, evalBox, h('p', { class: 'field-error', role: 'alert' })), addEval),
    h('details', { class: 'card' }, h('summary', {}, 'Optimizer, schedule and limits'), advBox),
    h('div', { class: 'actions' }, submitBtn));

  const jsonText = h('textarea', { id: 'spec-json', rows: '22', spellcheck: 'false', 'aria-describedby': 'json-help' });
  const exampleSel = h('select', { id: 'example-pick' }, h('option', { value: '' }, 'Load an example…'),
    methodList.map((m) => h('option', { value: m.name }, m.name)));
  exampleSel.addEventListener('change', () => {
    const m = methodList.find((x) => x.name === exampleSel.value);
    if (m && m.example) jsonText.value = JSON.stringify(m.example, null, 2);
    exampleSel.value = '';
  });
  const jsonForm = h('form', { id: 'panel-json', role: 'tabpanel', 'aria-labelledby': 'tab-json', hidden: true, class: 'submit-json', novalidate: true },
    h('div', { class: 'row' }, h('label', { for: 'spec-json' }, 'Job spec'), h('span', { class: 'spacer' }), exampleSel),
    h('p', { class: 'hint', id: 'json-help' }, 'The body of POST /v1/jobs. Switching here from the form copies the form’s spec; edits here do not flow back.'),
    jsonText,
    h('p', { class: 'field-error', id: 'json-err', role: 'alert' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Submit JSON')));

  body.replaceChildren(tabs, banner, okBox, form, jsonForm);

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

  // ---- parts that depend on the method -------------------------------------------------------

  const common = [];
  for (const p of BASIC) if (keys.has(p)) {
    const f = field(p, keys.get(p), { label: p === 'dataset.name' ? 'dataset' : p.replace(/^dataset\./, '').replace(/^pretrain\.(optimizer\.)?/, '') });
    basics.append(f.el);
    common.push(f);
  }
  for (const p of ADVANCED_PRETRAIN) if (keys.has(p)) {
    const f = field(p, keys.get(p), { label: p.replace(/^pretrain\./, '') });
    advBox.append(f.el);
    common.push(f);
  }

  let methodFields = [];
  function rebuildMethodParts() {
    const m = methodList.find((x) => x.name === method);
    methodFields = [];
    paramsBox.replaceChildren();
    for (const p of (m && m.params) || []) {
      const f = field('params.' + p.name, p, { label: p.name });
      paramsBox.append(f.el);
      methodFields.push(f);
    }
    if (!paramsBox.children.length) paramsBox.append(h('p', { class: 'empty' }, m ? 'This method has no parameters.' : 'No pretraining.'));
    // model
    modelBox.replaceChildren();
    const encMeta = { ...(keys.get('model.encoder') || { type: 'enum' }) };
    if (m) { encMeta.enum = m.encoders; encMeta.default = m.default_encoder; }
    const enc = field('model.encoder', encMeta, { label: 'encoder' });
    modelBox.append(enc.el);
    methodFields.push(enc);
    const modelFields = [];
    for (const [p, meta] of keys) {
      if (!p.startsWith('model.') || p === 'model.encoder') continue;
      const f = field(p, meta, { label: p.slice(6) });
      modelFields.push(f);
      modelBox.append(f.el);
    }
    const relevant = () => {
      const e = enc.input.value || (m ? m.default_encoder : 'mlp');
      for (const f of modelFields) {
        const on = !ENCODER_KEYS[e] || ENCODER_KEYS[e].includes(f.path.slice(6));
        f.el.hidden = !on;
        f.off = !on;
      }
    };
    enc.input.addEventListener('change', relevant);
    relevant();
    methodFields.push(...modelFields);
    // augmentation: a preset for methods that see augmented views
    augBox.replaceChildren();
    if (m && m.views > 0) {
      const presets = (keys.get('augment.preset') || {}).enum || ['none', 'simclr', 'light'];
      const a = field('augment', { type: 'enum', enum: presets, default: m.default_augment, help: (keys.get('augment') || {}).help }, { label: 'preset' });
      augBox.append(a.el, h('p', { class: 'hint' }, 'Single transforms (crop, flip, jitter, blur…) can be tuned in the JSON tab as an object.'));
      methodFields.push(a);
    } else {
      augBox.append(h('p', { class: 'empty' }, 'This method does not use augmented views.'));
    }
    // evaluations: start from the method's example, with small fractions
    if (!evalRows.length) {
      const ex = m && m.example && Array.isArray(m.example.evaluations) ? m.example.evaluations : [{ protocol: 'linear_probe', label_fractions: [0.01, 0.1, 1] }];
      ex.forEach((e) => addEvalRow(e));
    }
    fields = [...common, ...methodFields];
    clearErrors();
  }

  function addEvalRow(init) {
    const row = { fields: [] };
    const box = h('fieldset', { class: 'eval-row' });
    const protoMeta = keys.get('evaluations[].protocol') || { type: 'enum', enum: (cat.protocols || []).map((p) => p.name) };
    const rebuild = () => {
      const i = evalRows.indexOf(row);
      const proto = row.protoField ? row.protoField.input.value : init.protocol;
      box.replaceChildren(h('legend', {}, `evaluation ${i + 1}`));
      const pf = field(`evaluations[${i}].protocol`, { ...protoMeta, default: null }, { label: 'protocol', value: proto });
      pf.input.addEventListener('change', rebuild);
      row.protoField = pf;
      const lf = field(`evaluations[${i}].label_fractions`, keys.get('evaluations[].label_fractions') || { type: 'array<number>', default: [1] },
        { label: 'label fractions', value: row.fracs ?? init.label_fractions });
      lf.input.addEventListener('input', () => { row.fracs = lf.input.value; });
      row.fields = [pf, lf];
      const p = (cat.protocols || []).find((x) => x.name === proto);
      const extra = h('div', { class: 'fields' });
      for (const k of (p && p.keys) || []) {
        const f = field(`evaluations[${i}].${k.name}`, k, { label: k.name, value: init[k.name] });
        extra.append(f.el);
        row.fields.push(f);
      }
      const rm = h('button', { type: 'button', class: 'ghost small', 'aria-label': `remove evaluation ${i + 1}`, onclick: () => {
        evalRows.splice(evalRows.indexOf(row), 1);
        box.remove();
        evalRows.forEach((r) => r.rebuild());
      } }, 'Remove');
      box.append(h('div', { class: 'fields' }, pf.el, lf.el), extra.children.length ? h('details', {}, h('summary', {}, `${proto.replace('_', ' ')} options`), extra) : '', rm);
    };
    row.rebuild = rebuild;
    evalRows.push(row);
    evalBox.append(box);
    rebuild();
  }

  function buildSpec() {
    const spec = { method };
    for (const f of fields) {
      if (f.off) continue;
      const [v, isDef] = f.read();
      if (v === undefined || isDef) continue;
      setPath(spec, f.path, v);
    }
    // dataset: the short string form unless a dataset.* option other than the name is set; an
    // object always carries the name (the default one when the picker was left alone).
    if (spec.dataset && typeof spec.dataset === 'object') {
      if (!spec.dataset.name && !spec.dataset.format) {
        const nf = fields.find((f) => f.path === 'dataset.name');
        const name = nf && nf.input.value ? nf.input.value : (keys.get('dataset.name') || {}).default;
        if (name) spec.dataset = { name, ...spec.dataset };
      }
      if (Object.keys(spec.dataset).length === 1 && spec.dataset.name) spec.dataset = spec.dataset.name;
    }
    const evs = [];
    for (const r of evalRows) {
      const e = {};
      for (const f of r.fields) {
        const [v, isDef] = f.read();
        const key = f.path.replace(/^evaluations\[\d+\]\./, '');
        if (v === undefined || (isDef && key !== 'label_fractions')) continue;
        e[key] = v;
      }
      if (e.protocol) evs.push(e);
    }
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
  // "model.hidden", "dataset.limit_train" -> "dataset.name"'s neighbour "dataset" -> ...).
  function findField(path) {
    let p = path;
    while (p) {
      const el = form.querySelector(`[data-field="${CSS.escape(p)}"]`);
      if (el && !el.hidden) return el;
      if (p === 'dataset') return form.querySelector('[data-field="dataset.name"]');
      const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
      p = cut > 0 ? p.slice(0, cut) : '';
    }
    return null;
  }

  function showError(err, inJson) {
    if (inJson) {
      const e = body.querySelector('#json-err');
      e.textContent = (err.field ? err.field + ': ' : '') + err.message.replace(new RegExp('^' + escapeRe(err.field || '') + ':\\s*'), '');
      jsonText.setAttribute('aria-invalid', 'true');
      return;
    }
    const el = err.field ? findField(err.field) : null;
    if (el) {
      el.classList.add('invalid');
      const slot = el.querySelector(':scope > .field-error');
      slot.textContent = err.message;
      const input = el.querySelector('input, select, textarea');
      if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
      el.scrollIntoView({ block: 'center' });
    } else {
      banner.hidden = false;
      banner.textContent = (err.field ? err.field + ': ' : '') + err.message;
      banner.focus?.();
    }
  }

  async function send(spec, inJson) {
    clearErrors();
    okBox.hidden = true;
    body.querySelector('#json-err').textContent = '';
    jsonText.removeAttribute('aria-invalid');
    try {
      const r = await post('/v1/jobs', spec);
      okBox.hidden = false;
      okBox.replaceChildren('Queued as ', h('a', { href: '#/job/' + r.id }, 'job ' + r.id), '.');
      location.hash = '#/job/' + r.id;
    } catch (e) {
      if (e instanceof ApiError && e.status !== 0 && e.status !== 401) showError(e, inJson);
      else { banner.hidden = false; banner.textContent = e.message; }
    }
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); send(buildSpec(), false); });
  jsonForm.addEventListener('submit', (e) => { e.preventDefault(); send(jsonText.value, true); });

  rebuildMethodParts();
}

function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }
