// docs_screenshot.mjs - regenerates the dashboard's pictures in docs/. Without an option:
// docs/dashboard.png, from one small real SimCLR job (with linear probe, fine-tune, kNN and the
// supervised baseline at three label fractions) trained on a temporary ssld, its job page
// screenshotted in headless Chromium (about a minute on an idle machine). With --submit:
// docs/dashboard-submit.png, the Submit form (its job, dataset, method-parameter and model
// sections, a CNN encoder) on an ssld that only queues (a few seconds). With --compare:
// docs/dashboard-compare.png (three tiny jobs, one on other data: the warning, the spec
// differences, the results) and docs/dashboard-rerun.png (the first job's "Run again with
// changes" form), about half a minute. With --embed-map: docs/dashboard-embed-map.png, the
// embedding map of examples/hello.json's job page with one point's neighbours open (the whole job:
// a few minutes; --job ID --url URL takes a finished job of a running ssld instead). Not a test
// (nothing is asserted).
//
//   node tests/browser/docs_screenshot.mjs build/daemon/ssld [--submit | --compare | --embed-map] [OUT.png]

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ssld, launchChromium, shortJob, sleep, tinyJob, WAIT } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const exe = args.shift();
const mode = /^--(submit|compare|embed-map)$/.test(args[0] || '') ? args.shift().slice(2) : 'job';
const opt = (name) => { const i = args.indexOf(name); return i < 0 ? null : args.splice(i, 2)[1]; };
const givenJob = opt('--job'), givenUrl = opt('--url');
const docs = path.join(here, '..', '..', 'docs');
const out = args[0] || path.join(docs, { job: 'dashboard.png', submit: 'dashboard-submit.png', compare: 'dashboard-compare.png',
  'embed-map': 'dashboard-embed-map.png' }[mode]);
const d = new Ssld(exe, path.join(here, '..', '..', 'web'));
let b;

async function jobPage() {
  await d.start('--workers', '1', '--job-threads', '2');
  const fr = [0.01, 0.1, 1];
  const job = await d.api('POST', '/v1/jobs', shortJob('simclr-mlp-fmnist-4k', {
    epochs: 12, limitTrain: 4096,
    evaluations: [
      { protocol: 'linear_probe', label_fractions: fr },
      { protocol: 'finetune', label_fractions: fr, epochs: 5 },
      { protocol: 'knn', label_fractions: fr },
      { protocol: 'supervised', label_fractions: fr, epochs: 10 },
    ],
    extra: { threads: 2, dataset: { name: 'fashion-mnist', limit_train: 4096, limit_test: 1000 } },
  }));
  const j = await d.waitJob(job.id, (x) => x.state !== 'queued' && x.state !== 'running', 600000);
  console.log(`job ${job.id}: ${j.state}`);
  b = await launchChromium({ width: 1280, height: 900 });
  const page = await b.context.newPage();
  await page.goto(d.url('/#/job/' + job.id));
  await page.waitForFunction(() => document.querySelector('main')?.dataset.ready === 'true' && document.querySelector('.eff-box .uplot'), null, { timeout: WAIT });
  await sleep(800);
  await page.screenshot({ path: out, fullPage: true });
}

async function submitForm() {
  await d.start('--workers', '0');
  b = await launchChromium({ width: 1280, height: 3200 });   // the whole form in the viewport
  const page = await b.context.newPage();
  await page.goto(d.url('/#/submit'));
  await page.locator('#panel-form select[name="model.encoder"]').waitFor({ timeout: WAIT });
  await page.locator('#panel-form select[name="model.encoder"]').selectOption('cnn');
  await page.locator('#panel-form input[name="model.pool_grid"]').fill('2');
  await page.evaluate(() => window.scrollTo(0, 0));
  const top = await page.locator('#panel-form [data-section="job"]').boundingBox();
  const bottom = await page.locator('#panel-form [data-section="model"]').boundingBox();
  await page.screenshot({ path: out, clip: { x: 0, y: top.y - 12, width: 1280, height: bottom.y + bottom.height - top.y + 24 } });
}

async function comparePages() {
  await d.start('--workers', '2', '--job-threads', '1');
  const ids = [];
  for (const spec of [tinyJob('base'), tinyJob('cooler', { extra: { params: { temperature: 0.2 } } }), tinyJob('more-data', { limitTrain: 320 })]) {
    ids.push((await d.api('POST', '/v1/jobs', spec)).id);
  }
  for (const id of ids) await d.waitJob(id, (x) => x.state !== 'queued' && x.state !== 'running', 300000);
  b = await launchChromium({ width: 1280, height: 2400 });   // no scrolling: the header stays on top
  const page = await b.context.newPage();
  await page.goto(d.url('/#/compare?ids=' + ids.join(',')));
  await page.waitForFunction(() => document.querySelector('main')?.dataset.ready === 'true' && document.querySelector('table.spec-diff') &&
    document.querySelectorAll('table.evals tbody tr').length === 3, null, { timeout: WAIT });
  const res = await page.locator('section[aria-labelledby="h-res"]').boundingBox();
  await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 1280, height: res.y + res.height + 16 } });
  await page.goto(d.url('/#/submit?from=' + ids[0]));
  await page.locator('#panel-form [name="params.temperature"]').waitFor({ timeout: WAIT });
  await page.locator('#panel-form [name="pretrain.optimizer.lr"]').fill('0.003');
  await page.waitForFunction(() => document.querySelector('.field.changed'), null, { timeout: WAIT });
  const pre = await page.locator('#panel-form [data-section="pretrain"]').boundingBox();
  const rerun = path.join(path.dirname(out), 'dashboard-rerun.png');
  await page.screenshot({ path: rerun, clip: { x: 0, y: 0, width: 1280, height: pre.y + pre.height + 16 } });
  console.log('wrote ' + rerun);
}

async function embedMapPage() {
  let id = givenJob, url = (p) => givenUrl + p;
  if (!id) {
    await d.start('--workers', '1', '--job-threads', '2');
    const spec = JSON.parse(fs.readFileSync(path.join(here, '..', '..', 'examples', 'hello.json'), 'utf8'));
    id = (await d.api('POST', '/v1/jobs', spec)).id;
    await d.waitJob(id, (x) => x.state !== 'queued' && x.state !== 'running', 1800000);
    url = (p) => d.url(p);
  }
  b = await launchChromium({ width: 1280, height: 900 });
  const page = await b.context.newPage();
  await page.goto(url('/#/job/' + id));
  await page.waitForFunction(() => document.querySelector('section.emap')?.dataset.points, null, { timeout: WAIT });
  const sec = page.locator('section.emap');
  await sec.scrollIntoViewIfNeeded();
  // open the neighbours of the point nearest the middle of the densest class's spread, then hover another
  const pts = await page.evaluate(() => {
    const m = document.querySelector('section.emap').embedMap;
    const n = m.data.x.length, p = (i) => m.screenPos(i);
    let best = 0, bestScore = -1;
    for (let i = 0; i < n; i += 7) {
      const q = p(i);
      let near = 0;
      for (let j = 0; j < n; j++) { const r = p(j); if (Math.hypot(r.x - q.x, r.y - q.y) < 30) near++; }
      if (near > bestScore) { bestScore = near; best = i; }
    }
    const far = p((best + Math.floor(n / 2)) % n);
    return { click: p(best), hover: far };
  });
  const box = await page.locator('.emap-canvas').boundingBox();
  await page.mouse.click(box.x + pts.click.x, box.y + pts.click.y);
  await page.mouse.move(box.x + pts.hover.x, box.y + pts.hover.y);
  await sleep(300);
  await sec.screenshot({ path: out });
}

try {
  await ({ job: jobPage, submit: submitForm, compare: comparePages, 'embed-map': embedMapPage }[mode])();
  console.log('wrote ' + out);
} finally {
  if (b) await b.close();
  await d.stop();
}
