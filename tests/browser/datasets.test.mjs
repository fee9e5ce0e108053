// datasets.test.mjs - the dashboard's Datasets page in headless Chromium against a real ssld on
// loopback.
//
//   node datasets.test.mjs SSLD_EXE WEB_DIR OUT_DIR
//
// `ssld dataset push` uploads a folder of PNGs made here (red/ 3 images, blue/ 2); #/datasets then
// lists it (format, 2 classes, 5 files); opening it shows the files per class and the sample grid
// (an image that loaded), and how a job names it. Screenshot to OUT_DIR. Exit 77 (with the
// reason) when Chromium or playwright-core is missing.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ssld, check, launchChromium, until, testStart, solidPng, pageErrors, WAIT } from './harness.mjs';

const { exe, webDir, outDir, steps, step } = await testStart('datasets.test.mjs');

const d = new Ssld(exe, webDir);
const src = fs.mkdtempSync(path.join(os.tmpdir(), 'ssld-ds-src-'));
let b;
try {
  for (const [cls, colour, n] of [['red', [220, 30, 30], 3], ['blue', [30, 30, 220], 2]]) {
    fs.mkdirSync(path.join(src, cls));
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(src, cls, `${i}.png`), solidPng(8, 8, colour));
  }
  await d.start('--workers', '0');
  const push = spawnSync(exe, ['dataset', 'push', src, 'flowers', '--server', d.url('')], { encoding: 'utf8' });
  check(push.status === 0, `ssld dataset push: exit ${push.status}\n${push.stdout}\n${push.stderr}`);

  b = await launchChromium();
  const page = await b.context.newPage();
  const errors = pageErrors(page);

  await step('the Datasets page lists the upload with its format, classes and files', async () => {
    await page.goto(d.url('/#/datasets'));
    await until(page, () => document.querySelector('main')?.dataset.ready === 'true' && document.querySelector('table.datasets tbody tr button'), null, 30000, 'the datasets table');
    const row = await page.locator('table.datasets tbody tr').first().locator('td').allTextContents();
    check(row[0] === 'anonymous/flowers' && row[1] === 'image_folder' && row[2] === '2' && row[3] === '5', 'row: ' + JSON.stringify(row));
    check(await page.locator('nav a[data-nav="datasets"][aria-current="page"]').count() === 1, 'the nav link is current');
  });

  await step('opening it shows the files per class, the sample grid and the job reference', async () => {
    await page.locator('table.datasets tbody tr button').first().click();
    await until(page, () => document.querySelectorAll('table.classes tbody tr').length === 2, null, 30000, 'the class table');
    const classes = await page.locator('table.classes tbody tr').evaluateAll((rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
    check(JSON.stringify(classes) === JSON.stringify([['blue', '2'], ['red', '3']]), 'classes: ' + JSON.stringify(classes));
    await until(page, () => { const i = document.querySelector('.dataset-details img'); return i && i.complete && i.naturalWidth > 0; }, null, 30000, 'the sample grid');
    const code = await page.locator('.dataset-details code').first().textContent();
    check(code.includes('"dataset:anonymous/flowers"'), 'job reference: ' + code);
    await page.screenshot({ path: path.join(outDir, 'datasets.png'), fullPage: true });
  });

  await step('the Submit form offers the upload in the dataset path fields', async () => {
    await page.goto(d.url('/#/submit'));
    await page.locator('#panel-form select[name="dataset.format"]').waitFor({ timeout: WAIT });
    await until(page, () => document.querySelectorAll('#uploaded-datasets option').length === 1, null, 30000, 'the uploaded datasets list');
    check(await page.locator('#uploaded-datasets option').getAttribute('value') === 'dataset:anonymous/flowers', 'the option is the job reference');
    await page.locator('#panel-form select[name="dataset.format"]').selectOption('image_folder');
    const train = page.locator('#panel-form input[name="dataset.train"]').filter({ visible: true }).first();
    check(await train.getAttribute('list') === 'uploaded-datasets', 'dataset.train offers the list');
  });

  await step('no page errors', async () => check(errors.length === 0, errors.join('\n')));
} catch (e) {
  steps.fail('setup', e.stack || e);
} finally {
  if (b) await b.close();
  await d.stop();
  fs.rmSync(src, { recursive: true, force: true });
}
steps.finish();
