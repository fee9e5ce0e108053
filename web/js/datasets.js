// datasets.js - #/datasets: the datasets uploaded to the server (GET /v1/datasets), each with its
// format, size and files per class, and its sample grid (a row of images per class) on demand.
// Uploading is `ssld dataset push` (a browser upload of a whole folder is not offered here).
// Not here: jobs (jobs.js), submitting (submit.js).

import { get } from './api.js';
import { Poller, fmtAge, fmtBytes, h, pollStatus } from './util.js';

function details(d) {
  const wrap = h('div', { class: 'dataset-details' }, h('p', { class: 'hint' }, 'Loading…'));
  get(`/v1/datasets/${encodeURIComponent(d.owner)}/${encodeURIComponent(d.name)}`).then((full) => {
    const rows = (full.classes || []).map((c) => h('tr', {},
      h('td', {}, c.split ? `${c.split}/${c.name}` : c.name), h('td', { class: 'num' }, String(c.files))));
    wrap.replaceChildren(
      h('p', {}, 'In a job: ', h('code', {}, JSON.stringify({ dataset: full.use }))),
      rows.length ? h('table', { class: 'classes' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Class'),
        h('th', { scope: 'col' }, 'Files'))), h('tbody', {}, ...rows)) : h('p', { class: 'hint' }, 'No classes (unlabelled, or not images).'),
      full.sample_grid ? h('img', { src: full.sample_grid, alt: `sample images of ${d.owner}/${d.name}, a row per class` }) : '');
  }).catch((e) => wrap.replaceChildren(h('p', { class: 'error' }, e.message)));
  return wrap;
}

export function mount(main) {
  const status = pollStatus();
  const body = h('tbody');
  const open = new Set();
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Datasets'), h('div', { class: 'head-actions' }, status.el)),
    h('p', { class: 'hint' }, 'Upload with ', h('code', {}, 'ssld dataset push DIR NAME'), '; a job names one as ',
      h('code', {}, '"dataset:OWNER/NAME"'), ' (docs/API.md, Datasets).'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'datasets' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Dataset'), h('th', { scope: 'col' }, 'Format'),
        h('th', { scope: 'col' }, 'Classes'), h('th', { scope: 'col' }, 'Files'), h('th', { scope: 'col' }, 'Size'),
        h('th', { scope: 'col' }, 'Uploaded'))), body)));
  const poller = new Poller(async () => {
    const r = await get('/v1/datasets');
    const rows = [];
    for (const d of r.datasets) {
      const id = `${d.owner}/${d.name}`;
      const btn = h('button', { type: 'button', class: 'link', 'aria-expanded': String(open.has(id)) }, id);
      btn.addEventListener('click', () => { if (open.has(id)) open.delete(id); else open.add(id); poller.tick(); });
      rows.push(h('tr', {}, h('td', {}, btn), h('td', {}, d.format), h('td', { class: 'num' }, String(d.classes)),
        h('td', { class: 'num' }, String(d.files)), h('td', { class: 'num' }, fmtBytes(d.bytes)), h('td', {}, fmtAge(d.created_at))));
      if (open.has(id)) rows.push(h('tr', {}, h('td', { colspan: 6 }, details(d))));
    }
    body.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No datasets uploaded yet.'))]));
    main.dataset.ready = 'true';
  }, 10000, status.set).start();
  return () => poller.stop();
}
