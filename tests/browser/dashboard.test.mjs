// dashboard.test.mjs - the dashboard (web/) in real headless Chromium against a real ssld on
// loopback (temporary state directory, free port), driven by playwright-core.
//
//   node dashboard.test.mjs SSLD_EXE WEB_DIR OUT_DIR
//
// Checks: the job list shows a running job; its page's loss chart gains points, read through the
// metrics cursor (after=...); polling stops while the tab is hidden; a job submitted through the
// form appears in the list; a bad spec shows the API's message at the field it names (form and
// JSON); cancel works from the keyboard; a finished job shows its headline and evaluation table on
// the first screen (above the charts), its label-efficiency chart and artifact images, and the jobs
// table leads with the headline; compare overlays two jobs; a server with tokens asks for one and the
// stored token is sent. Screenshots go to OUT_DIR. Exit 77 (with the reason) when Chromium,
// playwright-core or Fashion-MNIST is missing.

import fs from 'node:fs';
import path from 'node:path';
import { Ssld, check, launchChromium, shortJob, sleep, until, testStart, pageErrors, WAIT } from './harness.mjs';
import crypto from 'node:crypto';

const { exe, webDir, outDir, steps, step } = await testStart('dashboard.test.mjs');


async function shot(page, name, fullPage = true) {
  const f = path.join(outDir, name + '.png');
  await page.screenshot({ path: f, fullPage });
  console.log(`     screenshot ${f}`);
}

const d = new Ssld(exe, webDir);
let b;
try {
  await d.start('--workers', '2', '--job-threads', '1', '--flush-interval', '0.25');
  b = await launchChromium();
  const page = await b.context.newPage();
  const errors = pageErrors(page, /status of (400|401|404|409)/);
  const requests = [];
  page.on('request', (r) => requests.push({ url: r.url(), t: Date.now() }));
  const inflight = new Set();   // API requests sent and not yet answered
  page.on('request', (r) => { if (r.url().includes('/v1/')) inflight.add(r); });
  page.on('requestfinished', (r) => inflight.delete(r));
  page.on('requestfailed', (r) => inflight.delete(r));

  // A job that runs long enough to watch (cancelled at the end) and a short one with evaluations.
  // 200 epochs (6,400 steps, ~20 s alone on one core) could finish before the cancel step on an
  // idle machine; 5,000 epochs outlast the whole test however fast the machine is.
  const long = await d.api('POST', '/v1/jobs', shortJob('long-running', { epochs: 5000, limitTrain: 2048 }));
  const short = await d.api('POST', '/v1/jobs', shortJob('finished-with-evals', {
    epochs: 4, limitTrain: 1024,
    evaluations: [
      { protocol: 'linear_probe', label_fractions: [0.05, 0.2, 1] },
      { protocol: 'knn', label_fractions: [0.05, 0.2, 1] },
      { protocol: 'supervised', label_fractions: [0.05, 0.2, 1], epochs: 10 },
    ],
  }));
  const vae = await d.api('POST', '/v1/jobs', {
    name: 'vae-small', method: 'vae', dataset: { name: 'fashion-mnist', limit_train: 256, limit_test: 128 },
    model: { encoder: 'mlp', hidden: [64] }, pretrain: { epochs: 1, batch_size: 64 }, threads: 1, seed: 1,
  });
  await d.waitJob(long.id, (j) => j.state === 'running' && j.progress.step > 0, 60000);

  await step('jobs page lists the running job with progress', async () => {
    await page.goto(d.url('/#/jobs'));
    const row = page.locator(`tr[data-id="${long.id}"]`);
    await row.waitFor({ timeout: WAIT });
    await until(page, (id) => document.querySelector(`tr[data-id="${id}"]`)?.dataset.state === 'running', long.id, 10000, 'the row to say running');
    check((await row.locator('td.name a').textContent()) === 'long-running', 'row name');
    check((await row.locator('.badge').textContent()) === 'running', 'state badge');
    await until(page, (id) => Number(document.querySelector(`tr[data-id="${id}"] [role=progressbar]`)?.getAttribute('aria-valuenow')) >= 0, long.id, 10000, 'a progress value');
    const ptext = await row.locator('.ptext').textContent();
    check(/%/.test(ptext), `progress text shows a percentage: "${ptext}"`);
    // filter by state
    await page.getByRole('button', { name: 'succeeded' }).click();
    await until(page, () => location.hash === '#/jobs?state=succeeded', null, 5000, 'the filter in the URL');
    await until(page, (id) => !document.querySelector(`tr[data-id="${id}"]`), long.id, 5000, 'the running job to leave the succeeded filter');
    await page.getByRole('button', { name: 'running' }).click();
    await row.waitFor({ timeout: WAIT });
    await page.getByRole('button', { name: 'all' }).click();
    await shot(page, 'jobs');
  });

  await step('job page: the loss chart gains points through the metrics cursor', async () => {
    requests.length = 0;
    await page.goto(d.url('/#/job/' + long.id));
    await until(page, () => Number(document.querySelector('[data-key="loss"]')?.dataset.points) > 0, null, 15000, 'loss points');
    const first = Number(await page.locator('[data-key="loss"]').getAttribute('data-points'));
    await until(page, (n) => Number(document.querySelector('[data-key="loss"]')?.dataset.points) > n, first, 20000, 'more loss points');
    const later = Number(await page.locator('[data-key="loss"]').getAttribute('data-points'));
    check(later > first, `points grew: ${first} -> ${later}`);
    const metricReqs = requests.filter((r) => r.url.includes(`/v1/jobs/${long.id}/metrics`)).map((r) => new URL(r.url));
    check(metricReqs.length >= 2, `at least two metrics requests, got ${metricReqs.length}`);
    check(!metricReqs[0].searchParams.has('after') && metricReqs[0].searchParams.get('max_points'), 'the first read asks for downsampled history (max_points, no cursor)');
    check(metricReqs.slice(1).every((u) => Number(u.searchParams.get('after')) > 0), 'later reads pass the cursor: ' + metricReqs.map((u) => u.search).join(' '));
    check(await page.locator('.uplot canvas').count() > 0, 'uPlot drew canvases');
    check((await page.locator('.badge').first().textContent()) === 'running', 'state badge running');
    await until(page, () => document.querySelectorAll('ol.events li:not(.empty)').length >= 3, null, 10000, 'events');
    await shot(page, 'job-running');
  });

  await step('chart controls: log scale, smoothing, x as time', async () => {
    await page.getByLabel('log y').check();
    await page.getByLabel('time').check();
    const slider = page.locator('input[type=range]');
    await slider.fill('0.9');
    await until(page, () => Number(document.querySelector('[data-key="loss"]')?.dataset.points) > 0 && document.querySelector('[data-key="loss"] .u-legend th')?.textContent.includes('time'),
      null, 5000, 'the x axis to switch to time');
    const prefs = JSON.parse(await page.evaluate(() => localStorage.getItem('ssld.chartPrefs')));
    check(prefs.log === true && prefs.xMode === 'time' && prefs.smoothing === 0.9, 'prefs stored: ' + JSON.stringify(prefs));
    await page.getByLabel('log y').uncheck();
    await page.getByLabel('step').check();
  });

  await step('polling pauses while the tab is hidden', async () => {
    await sleep(2500);
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    try {
      // A poll already in flight may finish (on a busy box it takes a while); then none may start.
      for (let t = 0; inflight.size > 0; t += 50) {
        check(t < WAIT, `API requests still in flight after ${WAIT} ms: ${[...inflight].join(', ')}`);
        await sleep(50);
      }
      const n0 = requests.length;
      await sleep(5000);   // longer than any polling interval
      const during = requests.slice(n0).filter((r) => r.url.includes('/v1/'));
      check(during.length === 0, `no API requests while hidden, saw ${during.map((r) => r.url).join(', ')}`);
      const status = await page.locator('.poll-status').first().textContent();
      check(/Paused/.test(status), `status says paused: "${status}"`);
    } finally {
      await page.evaluate(() => {
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
        document.dispatchEvent(new Event('visibilitychange'));
      });
    }
    const n1 = requests.length;
    await until(page, () => /Live/.test(document.querySelector('.poll-status')?.textContent || ''), null, 5000, 'live again');
    for (let t = 0; t < WAIT && requests.length <= n1; t += 100) await sleep(100);   // request events arrive asynchronously
    check(requests.length > n1, 'polling resumed');
  });

  await step('a bad spec shows the API message at the field it names', async () => {
    await page.goto(d.url('/#/submit'));
    await page.locator('input[name="params.temperature"]').waitFor({ timeout: WAIT });
    await page.locator('input[name="params.temperature"]').fill('-1');
    await page.getByRole('button', { name: 'Submit job' }).click();
    const err = page.locator('[data-field="params.temperature"] .field-error');
    await until(page, () => document.querySelector('[data-field="params.temperature"] .field-error')?.textContent.length > 0, null, 5000, 'the field error');
    const text = await err.textContent();
    check(/params\.temperature: must be > 0/.test(text), `message from the API next to the field: "${text}"`);
    check(await page.locator('input[name="params.temperature"]').getAttribute('aria-invalid') === 'true', 'input marked invalid');
    check(await page.evaluate(() => document.activeElement?.name) === 'params.temperature', 'focus moved to the field');
    await shot(page, 'submit-error', false);
    // A nested path: evaluations[0].label_fractions[...] lands on the first evaluation's fractions.
    await page.locator('input[name="params.temperature"]').fill('0.5');
    await page.locator('input[name="evaluations[0].label_fractions"]').fill('0.1, 2');
    await page.getByRole('button', { name: 'Submit job' }).click();
    await until(page, () => document.querySelector('[data-field="evaluations[0].label_fractions"] .field-error')?.textContent.length > 0, null, 5000, 'the evaluation field error');
    const t2 = await page.locator('[data-field="evaluations[0].label_fractions"] .field-error').textContent();
    check(/label_fractions/.test(t2), `evaluation error shown at its row: "${t2}"`);
    check(await page.locator('[data-field="params.temperature"] .field-error').textContent() === '', 'the old error was cleared');
    // JSON mode
    await page.getByRole('tab', { name: 'JSON' }).click();
    await page.locator('#spec-json').fill('{"method":"simclr","pretrain":{"batch_size":1}}');
    await page.getByRole('button', { name: 'Submit JSON' }).click();
    await until(page, () => document.querySelector('#json-err')?.textContent.length > 0, null, 5000, 'the JSON error');
    const t3 = await page.locator('#json-err').textContent();
    check(/^pretrain\.batch_size: /.test(t3), `JSON error names the field: "${t3}"`);
  });

  let formJob = null;
  await step('a job submitted through the form appears in the list', async () => {
    await page.goto(d.url('/#/jobs'));
    await page.goto(d.url('/#/submit'));
    await page.locator('input[name="name"]').waitFor({ timeout: WAIT });
    await page.locator('input[name="method"][value="autoencoder"]').check();
    await page.locator('input[name="params.latent_dim"]').waitFor({ timeout: WAIT });
    await page.locator('input[name="name"]').fill('from-the-form');
    await page.locator('input[name="dataset.limit_train"]').fill('256');
    await page.locator('input[name="dataset.limit_test"]').fill('128');
    await page.locator('input[name="pretrain.epochs"]').fill('1');
    await page.locator('input[name="pretrain.batch_size"]').fill('64');
    await page.locator('input[name="model.hidden"]').fill('32');
    await page.locator('input[name="threads"]').fill('1');
    await page.locator('input[name="evaluations[0].label_fractions"]').fill('0.5');
    // Keep one evaluation.
    while (await page.getByRole('button', { name: /remove evaluation 2/ }).count()) await page.getByRole('button', { name: /remove evaluation 2/ }).click();
    // What the form sends (the server stores the resolved spec, every default filled in).
    const posted = page.waitForRequest((q) => q.method() === 'POST' && new URL(q.url()).pathname === '/v1/jobs');
    await page.getByRole('button', { name: 'Submit job' }).click();
    const sent = JSON.parse((await posted).postData());
    await until(page, () => /^#\/job\/\d+$/.test(location.hash), null, 10000, 'navigation to the new job');
    formJob = Number((await page.evaluate(() => location.hash)).split('/').pop());
    // The encoder goes along with a model key (the fields shown are that encoder's); nothing else.
    check(JSON.stringify(sent.model) === '{"hidden":[32],"encoder":"mlp"}', 'model as filled plus its encoder: ' + JSON.stringify(sent.model));
    check(JSON.stringify(sent.dataset) === '{"name":"fashion-mnist","limit_train":256,"limit_test":128}', 'dataset object with its name: ' + JSON.stringify(sent.dataset));
    check(sent.pretrain && sent.pretrain.optimizer === undefined, 'default optimizer not sent: ' + JSON.stringify(sent.pretrain));
    check(sent.params === undefined, 'default parameters are not sent: ' + JSON.stringify(sent.params));
    const spec = (await d.api('GET', '/v1/jobs/' + formJob)).spec;
    check(spec.method === 'autoencoder' && spec.name === 'from-the-form' && spec.pretrain.epochs === 1, 'spec as filled: ' + JSON.stringify(spec));
    check(JSON.stringify(spec.model.hidden) === '[32]' && spec.model.encoder === 'mlp', 'stored spec: the filled width and the default encoder: ' + JSON.stringify(spec.model));
    await page.goto(d.url('/#/jobs'));
    const row = page.locator(`tr[data-id="${formJob}"]`);
    await row.waitFor({ timeout: WAIT });
    check((await row.locator('td.name a').textContent()) === 'from-the-form', 'listed under its name');
  });

  await step('cancel works (keyboard)', async () => {
    await page.goto(d.url('/#/job/' + long.id));
    const btn = page.getByRole('button', { name: 'Cancel job' });
    await btn.waitFor({ timeout: WAIT });
    await btn.focus();
    await page.keyboard.press('Enter');
    const yes = page.getByRole('button', { name: 'Yes, cancel' });
    await yes.waitFor({ timeout: WAIT });
    check(await yes.evaluate((e) => e === document.activeElement), 'confirmation button focused');
    await page.keyboard.press('Enter');
    await until(page, () => document.querySelector('main')?.dataset.state === 'cancelled', null, 30000, 'the page to show cancelled');
    const j = await d.api('GET', '/v1/jobs/' + long.id);
    check(j.state === 'cancelled', 'API says cancelled: ' + j.state);
    check(!(await page.getByRole('button', { name: 'Cancel job' }).count()), 'no cancel button on a cancelled job');
    await shot(page, 'job-cancelled', false);
  });

  await step('finished job: evaluation table, label-efficiency chart, artifact images', async () => {
    await d.waitJob(short.id, (j) => j.state === 'succeeded' || j.state === 'failed', 120000);
    await page.goto(d.url('/#/job/' + short.id));
    await until(page, () => document.querySelector('main')?.dataset.state === 'succeeded' && document.querySelector('table.evals tbody tr'), null, 15000, 'the evaluation table');
    const rows = await page.locator('table.evals tbody tr').count();
    check(rows === 3, 'one row per label fraction: ' + rows);
    const head = await page.locator('table.evals thead').textContent();
    check(/linear probe/.test(head) && /knn/.test(head) && /supervised \(scratch baseline\)/.test(head)
      && /random init \(baseline\)/.test(head), 'protocol and baseline columns: ' + head);
    check(await page.locator('table.evals .delta').count() >= 3, 'gains over the baseline shown');
    check(await page.locator('.eff-box .uplot').count() === 1, 'label-efficiency chart drawn');
    await until(page, () => [...document.querySelectorAll('.gallery img')].some((i) => i.complete && i.naturalWidth > 0), null, 10000, 'an artifact image to load');
    await page.evaluate(() => document.querySelector('details.spec-card')?.removeAttribute('open'));
    await sleep(300);
    await shot(page, 'job-finished');
  });

  await step('results first: the headline and the evaluation table above the charts; the jobs table leads with it', async () => {
    const hl = (await d.api('GET', '/v1/jobs/' + short.id)).results.headline;
    const pts = (hl.gain >= 0 ? '+' : '−') + Math.abs(hl.gain * 100).toFixed(1) + ' points';
    const text = await page.locator('.overview .headline').textContent();
    check(text.startsWith(pts + ' ' + (hl.gain >= 0 ? 'over' : 'against') + ' scratch at 5 % labels'), `headline "${text}", API ${JSON.stringify(hl)}`);
    await page.evaluate(() => window.scrollTo(0, 0));
    const box = (sel) => page.locator(sel).first().boundingBox();
    const [head, table, chart] = [await box('.overview .headline'), await box('table.evals'), await box('.charts-grid [data-key]')];
    check(head.y + head.height <= 900 && table.y < 900, `headline and table on the first screen: ${head.y}, ${table.y}`);
    check(table.y < chart.y, `evaluation table (y ${table.y}) above the charts (y ${chart.y})`);
    await shot(page, 'job-headline', false);
    await page.goto(d.url('/#/jobs'));
    const cell = page.locator(`tr[data-id="${short.id}"] td.result`);
    await until(page, (id) => /points/.test(document.querySelector(`tr[data-id="${id}"] td.result`)?.textContent), short.id, 10000, 'the headline in the result column');
    check((await cell.locator('.sub').textContent()) === (hl.gain >= 0 ? 'over' : 'against') + ' scratch at 5 % labels', 'result column: ' + await cell.textContent());
    await shot(page, 'jobs-headline', false);
    await page.goto(d.url('/#/job/' + short.id));
    await until(page, () => document.querySelector('main')?.dataset.ready === 'true' && document.querySelector('.eff-box .uplot'), null, 15000, 'the job page again');
    // dark mode, for the record
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.reload();
    await until(page, () => document.querySelector('main')?.dataset.ready === 'true' && document.querySelector('.eff-box .uplot'), null, 15000, 'the page in dark mode');
    await sleep(500);
    await shot(page, 'job-finished-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  await step('generative job: samples inline, "Sample again" asks the API', async () => {
    await d.waitJob(vae.id, (j) => j.state === 'succeeded' || j.state === 'failed', 120000);
    await page.goto(d.url('/#/job/' + vae.id));
    await until(page, () => document.querySelector('img.samples')?.naturalWidth > 0, null, 15000, 'the samples image');
    check(await page.locator('.pretext-box dt').count() > 0, 'pretext results listed');
    const before = await page.locator('img.samples').getAttribute('src');
    requests.length = 0;
    await page.getByRole('button', { name: 'Sample again' }).click();
    await until(page, () => !document.querySelector('.gen-form button').disabled && !/Sampling/.test(document.querySelector('#h-gen').parentElement.querySelector('.msg').textContent), null, 60000, 'the sampling answer');
    check(requests.some((r) => r.url.endsWith(`/v1/jobs/${vae.id}/generate`)), 'POST /generate was sent');
    const after = await page.locator('img.samples').getAttribute('src').catch(() => null);
    const msg = await page.locator('#h-gen ~ .msg').textContent();
    if (/does not offer sampling/.test(msg)) console.log('     (this ssld has no /generate yet: the page says so)');
    else check(after && after !== before, `new samples shown (src ${before} -> ${after}, message "${msg}")`);
    await shot(page, 'job-generative');
  });

  await step('compare overlays two jobs', async () => {
    await page.goto(d.url(`/#/compare?ids=${long.id},${short.id}`));
    await until(page, () => document.querySelector('main')?.dataset.ready === 'true' && document.querySelector('[data-key="loss"] .uplot'), null, 15000, 'the overlaid loss chart');
    const series = await page.locator('[data-key="loss"] .u-legend .u-series').count();
    check(series === 3, 'x + two job series in the loss legend: ' + series);
    check(await page.locator('table.evals tbody tr').count() === 2, 'a results row per job');
    // The two jobs trained on different slices (limit_train 2048 and 1024): no best across them.
    check(await page.locator('#data-warning').isVisible(), 'the different-data warning shows');
    check(await page.locator('table.evals td.best').count() === 0, 'no best marked across different data');
    await shot(page, 'compare');
  });

  await step('narrow screen: no horizontal page overflow', async () => {
    await page.setViewportSize({ width: 760, height: 900 });
    await page.goto(d.url('/#/job/' + short.id));
    await until(page, () => document.querySelector('main')?.dataset.ready === 'true', null, 10000, 'the page');
    await sleep(300);
    const over = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    check(over <= 0, 'page wider than the viewport by ' + over + ' px');
    await shot(page, 'job-narrow', false);
    await page.setViewportSize({ width: 1360, height: 900 });
  });

  await step('no script errors in the page', async () => check(!errors.length, '\n  ' + errors.join('\n  ')));
  await page.close();
} catch (e) {
  steps.fail('setup', e.stack || e);
} finally {
  if (b) await b.close();
  await d.stop();
}

// ---- a server with tokens --------------------------------------------------------------------
{
  const token = crypto.randomBytes(16).toString('hex');
  const d2 = new Ssld(exe, webDir);
  const tokFile = path.join(d2.stateDir, 'tokens');
  fs.writeFileSync(tokFile, 'alice ' + crypto.createHash('sha256').update(token).digest('hex') + '\n');
  let b2;
  try {
    await d2.start('--workers', '0', '--tokens-file', tokFile);
    b2 = await launchChromium();
    const page = await b2.context.newPage();
    await step('tokens: a 401 opens the token box; the stored token is sent', async () => {
      await page.goto(d2.url('/#/submit'));
      await page.locator('#tab-json').click();
      await page.locator('#spec-json').fill(JSON.stringify(shortJob('with-token', { epochs: 1 })));
      await page.getByRole('button', { name: 'Submit JSON' }).click();
      await page.locator('#token-box').waitFor({ state: 'visible', timeout: WAIT });
      const msg = await page.locator('#token-msg').textContent();
      check(/requires a token/.test(msg), 'token box says why: ' + msg);
      check(await page.evaluate(() => document.activeElement?.id) === 'token-input', 'focus in the token field');
      await page.keyboard.type(token);
      await page.keyboard.press('Enter');
      check(await page.evaluate(() => localStorage.getItem('ssld.token')) === token, 'token kept in local storage');
      await page.getByRole('button', { name: 'Submit JSON' }).click();
      await until(page, () => /^#\/job\/\d+$/.test(location.hash), null, 10000, 'the job page after submitting with the token');
      const id = Number((await page.evaluate(() => location.hash)).split('/').pop());
      const j = await d2.api('GET', '/v1/jobs/' + id);
      check(j.owner === 'alice', 'job owned by the token owner: ' + j.owner);
      await shot(page, 'token', false);
    });
  } catch (e) {
    steps.fail('token setup', e.stack || e);
  } finally {
    if (b2) await b2.close();
    await d2.stop();
  }
}

steps.finish();
