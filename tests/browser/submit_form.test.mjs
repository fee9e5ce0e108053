// submit_form.test.mjs - the Submit form (web/js/submit.js) against the catalogue of a real ssld
// that only queues (--workers 0, so nothing trains), in headless Chromium.
//
//   node submit_form.test.mjs SSLD_EXE WEB_DIR OUT_DIR
//
// Checks: (a) for every method x encoder x optimizer the form offers (and every dataset format,
// with method "none"), filling every field the form shows with a valid non-default value derived
// from the catalogue (another enum choice, a number inside min/max, the negated boolean) and
// submitting gives 201, and the posted spec carries every filled key; (b) every key of the
// catalogue (spec_keys, each method's params, each protocol's keys) is a field of the form for
// some variant; init_from from the form; a 400 with an `errors` list shows each message at its
// field; a catalogue giving one path a row per variant, or integer choices, is followed. Exit 77 (with the reason) when Chromium, playwright-core or Fashion-MNIST is missing.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FASHION, Ssld, check, launchChromium, until, testStart, solidPng, WAIT } from './harness.mjs';

const { exe, webDir, outDir, steps, step } = await testStart('submit_form.test.mjs');

// ---- small datasets of every format, under a data root of their own ----------------------------

const data = fs.mkdtempSync(path.join(os.tmpdir(), 'ssld-formdata-'));
function writeData() {
  const rows = ['a,b,c,d,label'];
  for (let i = 0; i < 60; i++) rows.push([i % 7, i % 5, i % 3, i % 2].map((x) => x / 10).join(',') + ',' + (i % 3));
  fs.writeFileSync(path.join(data, 'rows.csv'), rows.join('\n') + '\n');
  fs.writeFileSync(path.join(data, 'a.txt'), 'the quick brown fox jumps over the lazy dog. '.repeat(200));
  fs.writeFileSync(path.join(data, 'b.txt'), 'pack my box with five dozen liquor jugs. '.repeat(200));
  fs.mkdirSync(path.join(data, 'records'));
  for (const c of ['x', 'y']) {
    fs.writeFileSync(path.join(data, 'records', c + '.txt'),
      Array.from({ length: 40 }, (_, i) => `record ${i} of class ${c}`).join('\n%\n') + '\n');
  }
  fs.writeFileSync(path.join(data, 'captions.jsonl'),
    Array.from({ length: 40 }, (_, i) => JSON.stringify({ image: i, caption: `a picture of thing ${i}` })).join('\n') + '\n');
  // An image folder (two classes of 8 colour PNGs, an unlabelled folder, a manifest of the same files).
  const manifest = ['path,label'];
  for (const [dir, cls] of [['train', 'red'], ['train', 'blue'], ['test', 'red'], ['test', 'blue'], ['unlabeled', '']]) {
    const d = path.join(data, 'images', dir, cls);
    fs.mkdirSync(d, { recursive: true });
    for (let i = 0; i < 8; i++) {
      const f = path.join(d, `${i}.png`);
      fs.writeFileSync(f, solidPng(16, 16, cls === 'red' ? [200, 40 + 8 * i, 40] : [40, 40 + 8 * i, 200]));
      if (dir === 'train') manifest.push(`${path.relative(path.join(data, 'images'), f)},${cls}`);
    }
  }
  fs.writeFileSync(path.join(data, 'images', 'manifest.csv'), manifest.join('\n') + '\n');
  // An audio folder of the same shape: 16-bit mono WAVs, a low and a high tone.
  const audioManifest = ['path,label'];
  for (const [dir, cls] of [['train', 'low'], ['train', 'high'], ['test', 'low'], ['test', 'high'], ['unlabeled', '']]) {
    const d = path.join(data, 'audio', dir, cls);
    fs.mkdirSync(d, { recursive: true });
    for (let i = 0; i < 4; i++) {
      const f = path.join(d, `${i}.wav`);
      fs.writeFileSync(f, toneWav(8000, 4000, cls === 'high' ? 2000 + 50 * i : 300 + 20 * i));
      if (dir === 'train') audioManifest.push(`${path.relative(path.join(data, 'audio'), f)},${cls}`);
    }
  }
  fs.writeFileSync(path.join(data, 'audio', 'manifest.csv'), audioManifest.join('\n') + '\n');
}
// A mono 16-bit PCM WAV of n samples of a sine at freq Hz.
function toneWav(rate, n, freq) {
  const b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0); b.writeUInt32LE(36 + 2 * n, 4); b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24); b.writeUInt32LE(2 * rate, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34);
  b.write('data', 36); b.writeUInt32LE(2 * n, 40);
  for (let t = 0; t < n; t++) b.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * freq * t / rate)), 44 + 2 * t);
  return b;
}
writeData();

// Values the catalogue cannot describe: files on this machine, and keys whose value is a JSON
// document rather than a scalar. Keyed by field path (and dataset variant where it matters).
const FILES = {
  'dataset.dir': { named: FASHION, captions: FASHION, text_records: path.join(data, 'records') },
  'dataset.train_images': path.join(FASHION, 'train-images-idx3-ubyte.gz'),
  'dataset.train_labels': path.join(FASHION, 'train-labels-idx1-ubyte.gz'),
  'dataset.test_images': path.join(FASHION, 't10k-images-idx3-ubyte.gz'),
  'dataset.test_labels': path.join(FASHION, 't10k-labels-idx1-ubyte.gz'),
  'dataset.train': { csv: path.join(data, 'rows.csv'), image_folder: path.join(data, 'images', 'train'),
    audio_folder: path.join(data, 'audio', 'train') },
  'dataset.test': { csv: path.join(data, 'rows.csv'), image_folder: path.join(data, 'images', 'test'),
    audio_folder: path.join(data, 'audio', 'test') },
  'dataset.unlabeled': { image_folder: path.join(data, 'images', 'unlabeled'), audio_folder: path.join(data, 'audio', 'unlabeled') },
  'dataset.manifest': { image_folder: path.join(data, 'images', 'manifest.csv'), audio_folder: path.join(data, 'audio', 'manifest.csv') },
  'dataset.files': [path.join(data, 'a.txt'), path.join(data, 'b.txt')].join(', '),
  'dataset.file': path.join(data, 'captions.jsonl'),
  'augment2': '"light"',
};
// Keys filled in a case of their own: init_from (its valid values depend on another job) and the
// distributed keys (valid only in an ssld built with MPI, for the data-parallel methods, with a
// process count dividing the batch: their 400s and runs are tests/mpi's).
const OWN_CASE = new Set(['init_from', 'distributed.processes', 'distributed.hosts']);
// Constraints the catalogue does not publish as min/max/enum yet (only in its help text); an
// enum or range in the catalogue wins over these.
// (A value may depend on the dataset variant: 28-px Fashion-MNIST takes patch 7; the image sizes the
// form fills for an image folder are multiples of 4, whose one patch is the default, left alone.)
// A square spectrogram, 32 mel bands x 32 frames (0.5 s at a 15.625 ms hop), so every pool_grid
// the form offers splits the CNN's last map (a grid needs a square one).
const CONSTRAINTS = { 'model.patch': { named: 7, image_folder: null, audio_folder: null },
  'dataset.n_mels': { named: null, audio_folder: 32 }, 'dataset.hop_ms': { named: null, audio_folder: 15.625 } };
// Pairs the server accepts one at a time (cross-field rules): each combination fills one of them,
// alternating, so both are covered.
const EITHER = [
  ['evaluations[].label_fractions', 'evaluations[].labels_per_class'],
  ['dataset.test', 'dataset.test_fraction'],
  ['dataset.dir', 'dataset.files'],
  ['dataset.train', 'dataset.manifest'],
];
// Which dataset variant suits a method's kind of data, and which encoder a format takes (the
// server's cross-field rules between method, dataset and encoder).
// Plain text is unlabelled: every protocol needs labels, so its combinations carry no evaluation.
const KIND_VARIANT = { images: '', text: 'text_records', captions: 'captions', vectors: 'csv', audio: 'audio_folder' };
const UNLABELLED = new Set(['text']);
// (Method "none" only evaluates, so it cannot take plain text; the text methods cover it.)
const FORMAT_ENCODER = { idx: 'cnn', csv: 'mlp', text_records: 'transformer', captions: 'cnn' };

const d = new Ssld(exe, webDir);
let b;

// ---- values from the catalogue ---------------------------------------------------------------

function inRange(v, m, integer) {
  if (integer && !Number.isInteger(v)) return false;
  if (m.min != null && (m.exclusive_min ? v <= m.min : v < m.min)) return false;
  if (m.max != null && (m.exclusive_max ? v >= m.max : v > m.max)) return false;
  return true;
}

// A valid value other than the default: half the default, else small steps, else inside min..max.
function pickNumber(m, def, integer) {
  const dv = typeof def === 'number' ? def : 0;
  const c = [];
  if (integer) {
    if (dv > 1) c.push(Math.floor(dv / 2));
    c.push(dv + 1, dv * 2);
    if (m.min != null) c.push(m.min + 1, m.min);
  } else {
    if (dv > 0) c.push(dv / 2);
    else if (dv < 0) c.push(0);
    else c.push(1e-4);
    if (m.min != null && m.max != null) c.push(m.min + (m.max - m.min) / 4);
  }
  return c.find((v) => v !== dv && inRange(v, m, integer));
}

// The text to type into a field (a select's option value, 'true'/'false' for a checkbox), or
// null when the field is left alone. f: {name, key, tag, type, options, value}; m: its catalogue row.
function valueFor(f, m, ctx) {
  // A method that needs colour takes 3 channels only (the server's rule, not in the catalogue's enum).
  if (ctx.needsColor && f.key === 'dataset.channels') return null;
  if (f.key in FILES) {
    const v = FILES[f.key];
    return typeof v === 'object' ? (v[ctx.variant || 'named'] ?? null) : v;
  }
  if (OWN_CASE.has(f.key)) return null;
  if (f.key === 'name') return 'sweep-' + ctx.i;
  if (f.type === 'checkbox') return String(!f.checked);
  if (f.tag === 'select') {
    const other = f.options.find((o) => o !== '' && o !== f.value);
    return other === undefined ? null : other;
  }
  if (!m) return undefined;
  if (m.enum && m.enum.length) return m.enum.find((o) => o !== m.default) ?? null;
  if (f.key in CONSTRAINTS) {
    const v = CONSTRAINTS[f.key];
    const c = typeof v === 'object' ? (ctx.variant && ctx.variant in v ? v[ctx.variant] : v.named) : v;
    return c === null ? null : String(c);
  }
  const t = m.type || 'string';
  if (t === 'integer' || t === 'number') {
    const v = pickNumber(m, m.default, t === 'integer');
    return v === undefined ? undefined : String(v);
  }
  if (t === 'array<number>' || t === 'array<integer>') {
    const def = Array.isArray(m.default) ? m.default : [t === 'array<integer>' ? 2 : 1];
    const vs = def.map((x) => pickNumber(m, x, t === 'array<integer>'));
    return vs.some((v) => v === undefined) ? undefined : vs.join(', ');
  }
  if (t === '"auto"|boolean') return 'true';
  return undefined;
}

// ---- the page --------------------------------------------------------------------------------

// A fresh form: away from the page and back (the catalogue stays cached in the page).
async function openForm(page, i) {
  if (page.url().startsWith(d.url('/'))) await page.evaluate(() => { location.hash = '#/jobs'; });
  else await page.goto(d.url('/#/jobs'));
  await page.locator('main h1').filter({ hasText: 'Jobs' }).first().waitFor({ timeout: WAIT });
  await page.evaluate((i) => { location.hash = '#/submit?visit=' + i; }, i);
  await page.locator('#panel-form input[name="name"]').waitFor({ timeout: WAIT });
}

// Selects a control's value when the form has it (returns false when it does not); the control
// may sit in a closed "Advanced" disclosure, so it is set as a script would, with its events.
function choose(page, name, value) {
  return page.evaluate(([name, value]) => {
    const sel = [...document.querySelectorAll(`#panel-form select[name="${name}"]`)].find((x) => !x.closest('[hidden]'));
    if (!sel || ![...sel.options].some((o) => o.value === value)) return false;
    sel.value = value;
    sel.dispatchEvent(new Event('change', { bubbles: true }));
    return true;
  }, [name, value]);
}

// Every field the form would send now: its name and what it is.
function visibleFields(page) {
  return page.evaluate(() => [...document.querySelectorAll('#panel-form [name]')]
    .filter((e) => !e.closest('[hidden]') && e.name !== 'method')
    .map((e) => ({
      name: e.name, tag: e.tagName.toLowerCase(), type: e.type || '', value: e.value, checked: Boolean(e.checked),
      options: e.tagName === 'SELECT' ? [...e.options].map((o) => o.value) : null,
      protocol: (() => {
        const m = /^evaluations\[(\d+)\]\./.exec(e.name);
        return m ? document.querySelector(`#panel-form select[name="evaluations[${m[1]}].protocol"]`)?.value : undefined;
      })(),
    })));
}

// Evaluation rows: none, or one per protocol the form offers (through the form's own buttons,
// clicked in one script: the rows are rebuilt synchronously).
function setRows(page, onePerProtocol) {
  return page.evaluate((one) => {
    const buttons = (text) => [...document.querySelectorAll('#panel-form button')].filter((b) => b.textContent === text);
    for (let b = buttons('Remove')[0]; b; b = buttons('Remove')[0]) b.click();
    if (!one) return [];
    const add = buttons('Add evaluation')[0];
    add.click();
    const protos = [...document.querySelector('#panel-form select[name="evaluations[0].protocol"]').options].map((o) => o.value).filter(Boolean);
    protos.forEach((p, i) => {
      if (i > 0) add.click();
      const sel = document.querySelector(`#panel-form select[name="evaluations[${i}].protocol"]`);
      sel.value = p;
      sel.dispatchEvent(new Event('change', { bubbles: true }));
    });
    return protos;
  }, onePerProtocol);
}

const keyOf = (name) => name.replace(/^evaluations\[\d+\]\./, 'evaluations[].');

function getSent(spec, name) {
  const ev = /^evaluations\[(\d+)\]\.(.+)$/.exec(name);
  if (ev) return ((spec.evaluations || [])[Number(ev[1])] || {})[ev[2]];
  if (name === 'dataset.name' && typeof spec.dataset === 'string') return spec.dataset;
  if ((name === 'augment.preset' || name === 'augment') && typeof spec.augment === 'string') return spec.augment;
  let o = spec;
  for (const p of name.split('.')) { if (o === null || typeof o !== 'object') return undefined; o = o[p]; }
  return o;
}

// ---- run -------------------------------------------------------------------------------------

try {
  await d.start('--workers', '0', '--data-root', '/usr/share/datasets', '--data-root', data);
  const cat = await d.api('GET', '/v1/methods');
  b = await launchChromium();
  const page = await b.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));

  const rows = cat.spec_keys;
  const method = (name) => cat.methods.find((m) => m.name === name);
  function metaFor(f, ctx) {
    if (f.name.startsWith('params.')) return (method(ctx.method).params || []).find((p) => 'params.' + p.name === f.name);
    const ev = /^evaluations\[\d+\]\.(.+)$/.exec(f.name);
    if (ev) {
      const pk = ((cat.protocols || []).find((p) => p.name === f.protocol) || { keys: [] }).keys.find((k) => k.name === ev[1]);
      if (pk) return pk;
    }
    const key = keyOf(f.name);
    const all = rows.filter((r) => r.path === key);
    const variants = [ctx.encoder, ctx.optimizer, ctx.variant || 'named', f.protocol];
    return all.find((r) => !r.only || r.only.some((v) => variants.includes(v))) || all[0];
  }

  // (a) the sweep
  const combos = [];
  const seen = new Map();      // key -> Set of the variants it was seen under ('params.x' per method)
  const note = (key, v) => { if (!seen.has(key)) seen.set(key, new Set()); seen.get(key).add(v); };
  await steps.run('every combination of method, encoder and optimizer the form offers is accepted with every field filled', async () => {
    await openForm(page, 0);
    const methodsOffered = await page.locator('#panel-form input[name="method"]').evaluateAll((es) => es.map((e) => e.value));
    check(JSON.stringify([...methodsOffered].sort()) === JSON.stringify(cat.methods.map((m) => m.name).sort()),
      `the form offers the catalogue's methods: ${methodsOffered} vs ${cat.methods.map((m) => m.name)}`);
    for (const m of cat.methods) {
      await page.locator(`#panel-form input[name="method"][value="${m.name}"]`).check();
      const encs = (await page.locator('#panel-form select[name="model.encoder"] option').evaluateAll((os) => os.map((o) => o.value))).filter(Boolean);
      check(JSON.stringify(encs) === JSON.stringify(m.encoders), `${m.name}: the form offers its encoders ${m.encoders}, got ${encs}`);
      const opts = (await page.locator('#panel-form select[name="pretrain.optimizer.name"] option').evaluateAll((os) => os.map((o) => o.value))).filter(Boolean);
      check(opts.length > 0, `${m.name}: an optimizer choice`);
      // A method that needs colour takes the colour image folder.
      const variant = m.needs_color ? 'image_folder' : KIND_VARIANT[(m.datasets || ['images'])[0]] ?? '';
      for (const e of encs) for (const o of opts) combos.push({ method: m.name, encoder: e, optimizer: o, variant, needsColor: m.needs_color });
      if (m.views > 0 && (m.datasets || []).includes('text')) for (const alt of [0, 1]) combos.push({ method: m.name, encoder: encs[0], optimizer: opts[0], variant: 'text', alt });
      if (m.name === 'none') {
        for (const [fmt, enc] of Object.entries(FORMAT_ENCODER)) for (const alt of [0, 1]) combos.push({ method: 'none', encoder: enc, optimizer: opts[0], variant: fmt, alt });
      }
    }
    const failures = [];
    const misfits = [];        // encoders the catalogue lists for a method whose data they do not fit
    const accepted = new Set();
    for (let i = 0; i < combos.length; i++) {
      const c = { ...combos[i], i, alt: combos[i].alt ?? i };
      const label = `${c.method}/${c.encoder}/${c.optimizer}${c.variant ? '/' + c.variant : ''}`;
      await openForm(page, i + 1);
      await page.evaluate((m) => document.querySelector(`#panel-form input[name="method"][value="${m}"]`).click(), c.method);
      if (c.variant && !(await choose(page, 'dataset.format', c.variant))) { failures.push(`${label}: the form offers no dataset.format`); continue; }
      await choose(page, 'model.encoder', c.encoder);
      await choose(page, 'pretrain.optimizer.name', c.optimizer);
      const protos = await setRows(page, !UNLABELLED.has(c.variant));
      const fields = await visibleFields(page);
      const names = new Set(fields.map((f) => keyOf(f.name)));
      const fill = {};
      const missing = [];
      for (const f of fields) {
        f.key = keyOf(f.name);
        note(f.key, f.key.startsWith('params.') ? c.method : f.protocol || '*');
        if (['model.encoder', 'pretrain.optimizer.name', 'dataset.format'].includes(f.name) || /^evaluations\[\d+\]\.protocol$/.test(f.name)) continue;
        const pair = EITHER.find((p) => p.includes(f.key) && p.every((k) => names.has(k)));
        if (pair && pair[c.alt % 2] !== f.key) { fill[f.name] = ''; continue; }
        const v = valueFor(f, metaFor(f, c), c);
        if (v === undefined) missing.push(f.name);
        else if (v !== null) fill[f.name] = v;
      }
      if (missing.length) { failures.push(`${label}: no valid value derivable for ${missing.join(', ')}`); continue; }
      await page.evaluate((fill) => {
        for (const [name, v] of Object.entries(fill)) {
          // The shown one: two rows may share a path (one per variant), one field each.
          const e = [...document.querySelectorAll(`#panel-form [name="${CSS.escape(name)}"]:not([type=radio])`)].find((x) => !x.closest('[hidden]'));
          if (e.type === 'checkbox') e.checked = v === 'true';
          else e.value = v;
          e.dispatchEvent(new Event('input', { bubbles: true }));
          e.dispatchEvent(new Event('change', { bubbles: true }));
        }
      }, fill);
      const posted = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/v1/jobs', { timeout: WAIT });
      await page.locator('#panel-form button[type=submit]').click();
      const resp = await posted;
      const sent = JSON.parse(resp.request().postData());
      if (resp.status() !== 201) {
        const body = await resp.json().catch(() => ({}));
        const err = body.error || {};
        if (resp.status() === 400 && !c.variant && err.field === 'model.encoder' && /does not fit a .* dataset/.test(err.message)) {
          misfits.push(`${c.method}/${c.encoder}`);
          continue;
        }
        failures.push(`${label}: ${resp.status()} ${JSON.stringify(body.errors || body.error)}`);
        continue;
      }
      // The page goes to the new job's page; wait for that, so it cannot land after the next visit.
      const { id } = await resp.json();
      await until(page, (id) => location.hash === '#/job/' + id, id, 30000, `the page of job ${id}`);
      accepted.add(c.encoder);
      const lost = Object.entries(fill).filter(([n, v]) => v !== '' && getSent(sent, n) === undefined).map(([n]) => n);
      if (lost.length) failures.push(`${label}: filled but not sent: ${lost.join(', ')}`);
      if (protos.length && (sent.evaluations || []).length !== protos.length) failures.push(`${label}: ${protos.length} evaluation rows, ${(sent.evaluations || []).length} sent`);
    }
    console.log(`     ${combos.length} combinations submitted`);
    // The catalogue's methods[].encoders lists encoders that no dataset kind of the method fits
    // (the server refuses them, naming model.encoder); each must still be accepted elsewhere, so
    // its fields are covered.
    if (misfits.length) console.log(`     NOTE the catalogue offers encoders the method's data does not fit: ${[...new Set(misfits)].join(', ')}`);
    for (const e of new Set(misfits.map((x) => x.split('/')[1]))) if (!accepted.has(e)) failures.push(`encoder ${e}: accepted for no method`);
    check(!failures.length, `${failures.length} of ${combos.length} combinations:\n  ` + failures.join('\n  '));
  });

  // Formats the submitting sweep has no files for (image folders, CIFAR/STL binaries; their
  // loading is tests/data/test_format_registry.c's): their keys must still be fields of the form.
  await steps.run('every dataset format offers its keys', async () => {
    const formats = (cat.formats || []).filter((f) => !f.named && !(f.name in FORMAT_ENCODER)).map((f) => f.name);
    for (const fmt of formats) {
      await openForm(page, 'format-' + fmt);
      await page.evaluate(() => document.querySelector('#panel-form input[name="method"][value="none"]').click());
      check(await choose(page, 'dataset.format', fmt), `the form offers dataset.format ${fmt}`);
      for (const f of await visibleFields(page)) note(keyOf(f.name), '*');
    }
  });

  // (b) every key of the catalogue is a field of the form for some variant
  await steps.run('every key of the catalogue is reachable in the form', async () => {
    check(seen.size > 0, 'the sweep saw fields');
    const containers = (p) => rows.some((r) => r.path.startsWith(p + '.') || r.path.startsWith(p + '[].'));
    const missing = [];
    for (const r of rows) if (r.path !== 'method' && r.path !== 'params' && !containers(r.path) && !seen.has(r.path)) missing.push(r.path);
    for (const m of cat.methods) for (const p of m.params || []) if (!seen.get('params.' + p.name)?.has(m.name)) missing.push(`params.${p.name} (${m.name})`);
    for (const p of cat.protocols || []) for (const k of p.keys || []) if (!seen.get('evaluations[].' + k.name)?.has(p.name)) missing.push(`evaluations[].${k.name} (${p.name})`);
    check(!missing.length, 'not in the form for any variant: ' + missing.join(', '));
  });

  await steps.run('init_from from the form', async () => {
    const src = await d.api('POST', '/v1/jobs', { name: 'source', method: 'simclr', evaluations: [] });
    await openForm(page, 'init');
    await page.locator('#panel-form input[name="method"][value="simclr"]').check();
    const box = page.locator('#panel-form [name="init_from"]');
    check(await box.count() === 1, 'an init_from field');
    await box.evaluate((e, id) => { e.value = String(id); e.dispatchEvent(new Event('input', { bubbles: true })); }, src.id);
    const posted = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/v1/jobs', { timeout: WAIT });
    await page.locator('#panel-form button[type=submit]').click();
    const resp = await posted;
    const sent = JSON.parse(resp.request().postData());
    check(resp.status() === 201, `201, got ${resp.status()} ${await resp.text()}`);
    check(sent.init_from === src.id, 'init_from sent as the job id: ' + JSON.stringify(sent.init_from));
  });

  // A server that reports every error at once: each message lands at its own field.
  await steps.run('a 400 with an errors list shows each message at its field', async () => {
    await openForm(page, 'errors');
    await page.locator('#panel-form input[name="method"][value="simclr"]').check();
    const list = [
      { code: 'invalid_field', field: 'params.temperature', message: 'params.temperature: must be > 0, got -1' },
      { code: 'invalid_field', field: 'pretrain.epochs', message: 'pretrain.epochs: must be >= 0, got -3' },
      { code: 'invalid_field', field: 'no.such.field', message: 'no.such.field: a message with no field in the form' },
    ];
    await page.route('**/v1/jobs', (route) => route.request().method() === 'POST'
      ? route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ error: list[0], errors: list }) })
      : route.continue());
    try {
      await page.locator('#panel-form button[type=submit]').click();
      await until(page, () => document.querySelector('[data-field="pretrain.epochs"] .field-error')?.textContent.length > 0, null, 10000, 'the second error at its field');
      const t1 = await page.locator('[data-field="params.temperature"] .field-error').textContent();
      const t2 = await page.locator('[data-field="pretrain.epochs"] .field-error').textContent();
      check(/must be > 0/.test(t1) && /must be >= 0/.test(t2), `both messages at their fields: "${t1}", "${t2}"`);
      check(await page.locator('input[name="pretrain.epochs"]').getAttribute('aria-invalid') === 'true', 'second field marked invalid');
      check(await page.evaluate(() => document.activeElement?.name) === 'params.temperature', 'focus on the first');
      const banner = await page.locator('.alert.bad').first().textContent();
      check(/no\.such\.field/.test(banner), 'an error without a field goes to the banner: ' + banner);
      // JSON tab: every message listed
      await page.getByRole('tab', { name: 'JSON' }).click();
      await page.getByRole('button', { name: 'Submit JSON' }).click();
      await until(page, () => (document.querySelector('#json-err')?.textContent || '').includes('pretrain.epochs'), null, 10000, 'the JSON error list');
      const tj = await page.locator('#json-err').textContent();
      check(tj.includes('params.temperature') && tj.includes('no.such.field'), 'all three in the JSON error: ' + tj);
    } finally {
      await page.unroute('**/v1/jobs');
    }
  });

  // The catalogue may give one path a row per variant (its own range and help each) and integer
  // choices as an enum: the form shows the row of the chosen variant and sends a number.
  await steps.run('a path with a row per variant, integer choices', async () => {
    const mod = JSON.parse(JSON.stringify(cat));
    const i = mod.spec_keys.findIndex((r) => r.path === 'model.out_dim');
    check(i >= 0, 'the catalogue has model.out_dim');
    const base = mod.spec_keys[i];
    mod.spec_keys.splice(i, 1,
      { ...base, only: ['mlp'], min: 1, help: 'ROW-MLP' }, { ...base, only: ['cnn'], min: 0, help: 'ROW-CNN' });
    const patch = mod.spec_keys.find((r) => r.path === 'model.patch');
    patch.enum = [4, 7];
    const p2 = await b.context.newPage();
    await p2.route('**/v1/methods', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(mod) }));
    try {
      await p2.goto(d.url('/#/submit'));
      await p2.locator('#panel-form input[name="name"]').waitFor({ timeout: WAIT });
      await p2.evaluate(() => document.querySelector('#panel-form input[name="method"][value="simclr"]').click());
      const shown = () => p2.evaluate(() => [...document.querySelectorAll('#panel-form [data-field="model.out_dim"]')]
        .filter((e) => !e.closest('[hidden]')).map((e) => e.querySelector('.help').textContent));
      for (const [enc, want] of [['mlp', /ROW-MLP/], ['cnn', /ROW-CNN/], ['vit', null]]) {
        await choose(p2, 'model.encoder', enc);
        const h = await shown();
        check(want ? h.length === 1 && want.test(h[0]) : h.length === 0, `${enc}: out_dim rows shown: ${JSON.stringify(h)}`);
      }
      await choose(p2, 'model.encoder', 'vit');
      check(await choose(p2, 'model.patch', '7'), 'model.patch is a select of 4 and 7');
      await p2.getByRole('tab', { name: 'JSON' }).click();
      const spec = JSON.parse(await p2.locator('#spec-json').inputValue());
      check(spec.model && spec.model.patch === 7 && spec.model.encoder === 'vit', 'patch sent as the number 7 with its encoder: ' + JSON.stringify(spec.model));
    } finally {
      await p2.close();
    }
  });

  await steps.run('no script errors in the page', async () => check(!errors.length, '\n  ' + errors.join('\n  ')));
  await openForm(page, 'shot');
  await page.screenshot({ path: path.join(outDir, 'submit-form.png'), fullPage: true });
} catch (e) {
  steps.fail('setup', e.stack || e);
} finally {
  if (b) await b.close();
  await d.stop();
  fs.rmSync(data, { recursive: true, force: true });
}
steps.finish();
