// compare_rerun.test.mjs - the compare page's spec diff and different-data warning, and "Run again
// with changes", in headless Chromium against a real ssld on loopback.
//
//   node compare_rerun.test.mjs SSLD_EXE WEB_DIR OUT_DIR
//
// Three tiny real jobs (SimCLR, 4 steps, a kNN evaluation): A; B, which differs from A in one key
// (params.temperature); C, which also trains on different data (dataset.limit_train). Checks:
// comparing A and B lists exactly that key, one column per job, with no data warning and a best
// marked; adding C lists its dataset key, warns that the jobs trained on different data and marks
// no best in C's row (its data group has one job), and fits a narrow screen; "Run again with
// changes" on A's page opens the Submit form filled with A's values, and submitting after one edit
// queues a job whose resolved spec is A's with that one change; changing the encoder there takes
// out the old encoder's keys (the server accepts the result); and, on a server that only queues,
// every method's example run again untouched resolves to the same spec as the job it came from.
// Screenshots go to OUT_DIR. Exit 77 (with the reason) when Chromium, playwright-core or
// Fashion-MNIST is missing.

import fs from 'node:fs';
import path from 'node:path';
import { Ssld, check, launchChromium, tinyJob as tiny, until, testStart, pageErrors, WAIT } from './harness.mjs';
import { specDiff } from '../../web/js/specdiff.js';

const { exe, webDir, outDir, steps, step } = await testStart('compare_rerun.test.mjs');


async function shot(page, name) {
  const f = path.join(outDir, name + '.png');
  await page.screenshot({ path: f, fullPage: true });
  console.log(`     screenshot ${f}`);
}

const d = new Ssld(exe, webDir);
let b;
try {
  await d.start('--workers', '2', '--job-threads', '1', '--flush-interval', '0.25');
  const a = await d.api('POST', '/v1/jobs', tiny('base'));
  const bj = await d.api('POST', '/v1/jobs', tiny('cooler', { extra: { params: { temperature: 0.2 } } }));
  const c = await d.api('POST', '/v1/jobs', tiny('more-data', { limitTrain: 320 }));
  const done = (j) => j.state !== 'queued' && j.state !== 'running';
  const finals = [];
  for (const id of [a.id, bj.id, c.id]) finals.push(await d.waitJob(id, done, 240000));
  check(finals.every((j) => j.state === 'succeeded'), 'the three jobs succeed: ' + finals.map((j) => `#${j.id} ${j.state} ${j.error || ''}`).join(', '));

  b = await launchChromium();
  const page = await b.context.newPage();
  const errors = pageErrors(page);
  const ready = () => document.querySelector('main')?.dataset.ready === 'true' && document.querySelector('table.evals tbody tr');

  await step('compare, same data: the one key that differs, no warning, a best marked', async () => {
    await page.goto(d.url(`/#/compare?ids=${a.id},${bj.id}`));
    await until(page, ready, null, 30000, 'the compare page with its results');
    await until(page, () => document.querySelector('table.spec-diff'), null, 10000, 'the spec diff');
    const paths = await page.locator('table.spec-diff tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.path));
    check(JSON.stringify(paths) === '["params.temperature"]', 'only the differing key: ' + JSON.stringify(paths));
    const heads = await page.locator('table.spec-diff thead th[data-job]').evaluateAll((hs) => hs.map((x) => x.dataset.job));
    check(JSON.stringify(heads) === JSON.stringify([String(a.id), String(bj.id)]), 'one column per job, in order: ' + JSON.stringify(heads));
    const cells = await page.locator('table.spec-diff tbody tr td').allTextContents();
    check(JSON.stringify(cells) === '["0.5","0.2"]', 'each job\'s value: ' + JSON.stringify(cells));
    check(await page.locator('#data-warning').isHidden(), 'no data warning for jobs on the same data');
    check(await page.locator('table.evals td.best').count() >= 1, 'the best of the kNN column is marked');
  });

  await step('compare, different data: the dataset key, a warning, no best across data', async () => {
    await page.goto(d.url(`/#/compare?ids=${a.id},${bj.id},${c.id}`));
    await until(page, () => document.querySelectorAll('table.evals tbody tr').length === 3 && document.querySelector('table.spec-diff'), null, 30000, 'three result rows and the diff');
    const paths = await page.locator('table.spec-diff tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.path));
    check(JSON.stringify(paths.slice().sort()) === '["dataset.limit_train","params.temperature"]', 'the two differing keys: ' + JSON.stringify(paths));
    const dataRow = await page.locator('table.spec-diff tr[data-path="dataset.limit_train"] td').allTextContents();
    check(JSON.stringify(dataRow) === '["256","256","320"]', 'limit_train per job: ' + JSON.stringify(dataRow));
    check(await page.locator('table.spec-diff tr[data-path="dataset.limit_train"]').getAttribute('class') === 'data', 'the dataset row is marked');
    const warn = page.locator('#data-warning');
    check(await warn.isVisible(), 'the data warning shows');
    const text = await warn.textContent();
    check(/trained on different data; the best marker compares unlike things/.test(text), 'warning text: ' + text);
    check(text.includes(`#${a.id} on data A, #${bj.id} on data A, #${c.id} on data B.`), 'names each job\'s data: ' + text);
    const groups = await page.locator('table.evals td.data-group').allTextContents();
    check(JSON.stringify(groups) === '["A","A","B"]', 'data column: ' + JSON.stringify(groups));
    check(await page.locator(`table.evals tr[data-job="${c.id}"] td.best`).count() === 0, 'no best in the row of the job on other data');
    check(await page.locator(`table.evals tr[data-job="${a.id}"] td.best, table.evals tr[data-job="${bj.id}"] td.best`).count() >= 1, 'a best among the jobs on the same data');
    await shot(page, 'compare-different-data');
    await page.setViewportSize({ width: 760, height: 900 });
    const over = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    check(over <= 0, 'narrow screen: the page is wider than the viewport by ' + over + ' px');
    await page.setViewportSize({ width: 1360, height: 900 });
  });

  await step('run again with changes: the form is filled with the job\'s spec; one edit is all that changes', async () => {
    await page.goto(d.url('/#/job/' + a.id));
    await page.getByRole('link', { name: 'Run again with changes' }).click();
    await until(page, (from) => location.hash === '#/submit?from=' + from, a.id, 10000, 'the link to open #/submit?from=' + a.id);
    const val = (name) => page.locator(`#panel-form [name="${name}"]`).inputValue();
    await page.locator('#panel-form [name="params.temperature"]').waitFor({ timeout: WAIT });
    check(await page.locator('#panel-form input[name="method"][value="simclr"]').isChecked(), 'method simclr chosen');
    const filled = {
      name: await val('name'), temperature: await val('params.temperature'), limit_train: await val('dataset.limit_train'),
      limit_test: await val('dataset.limit_test'), epochs: await val('pretrain.epochs'), batch: await val('pretrain.batch_size'),
      hidden: await val('model.hidden'), out_dim: await val('model.out_dim'), encoder: await val('model.encoder'), seed: await val('seed'),
      protocol: await val('evaluations[0].protocol'), fractions: await val('evaluations[0].label_fractions'),
    };
    const want = { name: 'base', temperature: '0.5', limit_train: '256', limit_test: '256', epochs: '1', batch: '64', hidden: '64', out_dim: '32',
      encoder: 'mlp', seed: '3', protocol: 'knn', fractions: '0.5' };
    check(JSON.stringify(filled) === JSON.stringify(want), 'fields filled with the job\'s values: ' + JSON.stringify(filled));
    check(await page.locator('#panel-form fieldset.eval-row').count() === 1, 'one evaluation row, as the job had');
    await page.locator('#panel-form [name="pretrain.optimizer.lr"]').fill('0.003');
    await until(page, () => document.querySelector('#panel-form [data-field="pretrain.optimizer.lr"]').classList.contains('changed'), null, 5000, 'the edited field to be marked');
    const marked = await page.locator('#panel-form .field.changed').evaluateAll((es) => es.map((e) => e.dataset.field));
    check(JSON.stringify(marked) === '["pretrain.optimizer.lr"]', 'only the edited field is marked changed: ' + JSON.stringify(marked));
    await shot(page, 'run-again');
    const posted = page.waitForRequest((q) => q.method() === 'POST' && new URL(q.url()).pathname === '/v1/jobs');
    await page.getByRole('button', { name: 'Submit as a new job' }).click();
    await posted;
    await until(page, (from) => /^#\/job\/\d+$/.test(location.hash) && location.hash !== '#/job/' + from, a.id, 15000, 'the new job\'s page');
    const id = Number((await page.evaluate(() => location.hash)).split('/').pop());
    const [old, fresh] = [await d.api('GET', '/v1/jobs/' + a.id), await d.api('GET', '/v1/jobs/' + id)];
    check(fresh.spec.pretrain.optimizer.lr === 0.003, 'the edit is in the new spec: ' + JSON.stringify(fresh.spec.pretrain.optimizer));
    const diff = specDiff([old.spec, fresh.spec]).map((r) => r.path);
    check(JSON.stringify(diff) === '["pretrain.optimizer.lr"]' && fresh.spec.name === old.spec.name, 'nothing else changed: ' + JSON.stringify(diff));
  });

  await step('run again: a change of encoder takes out the keys of the old one', async () => {
    await page.goto(d.url('/#/submit?from=' + a.id));
    await page.locator('#panel-form [name="model.hidden"]').waitFor({ timeout: WAIT });
    await page.locator('#panel-form [name="model.encoder"]').selectOption('cnn');
    await page.locator('#panel-form [name="model.hidden"]').waitFor({ state: 'hidden', timeout: WAIT });
    await page.getByRole('tab', { name: 'JSON' }).click();
    const spec = JSON.parse(await page.locator('#spec-json').inputValue());
    check(spec.model.encoder === 'cnn' && !('hidden' in spec.model) && spec.model.out_dim === 32, 'model: cnn, no MLP widths, the rest kept: ' + JSON.stringify(spec.model));
    check(spec.params.temperature === 0.5 && spec.dataset.limit_train === 256 && spec.evaluations.length === 1, 'the rest as it was: ' + JSON.stringify(spec).slice(0, 300));
    const dry = await d.api('POST', '/v1/jobs?dry_run=1', spec);
    check(dry.spec && dry.spec.model.encoder === 'cnn', 'the server accepts it: ' + JSON.stringify(dry.spec && dry.spec.model));
  });

  await step('no script errors in the page', async () => check(!errors.length, '\n  ' + errors.join('\n  ')));
} catch (e) {
  steps.fail('setup', e.stack || e);
} finally {
  if (b) await b.close();
  await d.stop();
}

// ---- every method's example, run again untouched, is the same job ------------------------------
// On a server that only queues: each example of the catalogue is submitted, its run-again form
// opened, and the form's spec (the JSON tab: what it would post) resolved by a dry run must equal
// the job's resolved spec.
{
  const d2 = new Ssld(exe, webDir);
  let b2;
  try {
    await d2.start('--workers', '0');
    b2 = await launchChromium();
    const page = await b2.context.newPage();
    await step('run again untouched: every method\'s example resolves to the same spec', async () => {
      const cat = await d2.api('GET', '/v1/methods');
      const tried = [];
      for (const m of cat.methods) {
        if (!m.example) continue;
        let job;
        try { job = await d2.api('POST', '/v1/jobs', m.example); } catch (e) {
          console.log(`     (${m.name}: its example is refused here, ${e.message.slice(0, 160)})`);
          continue;
        }
        const spec = (await d2.api('GET', '/v1/jobs/' + job.id)).spec;
        await page.goto(d2.url('/#/submit?from=' + job.id));
        await page.locator('#from-note').waitFor({ timeout: WAIT });
        await page.getByRole('tab', { name: 'JSON' }).click();
        const sent = JSON.parse(await page.locator('#spec-json').inputValue());
        const again = (await d2.api('POST', '/v1/jobs?dry_run=1', sent)).spec;
        const diff = specDiff([spec, again]).map((r) => r.path);
        check(!diff.length && again.name === spec.name, `${m.name}: the form's spec differs in ${JSON.stringify(diff)}`);
        tried.push(m.name);
      }
      check(tried.length >= cat.methods.length / 2, 'most examples tried: ' + tried.join(' '));
      console.log('     ' + tried.join(' '));
    });
  } catch (e) {
    steps.fail('run-again setup', e.stack || e);
  } finally {
    if (b2) await b2.close();
    await d2.stop();
  }
}
steps.finish();
