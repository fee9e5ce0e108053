// docs_screenshot.mjs - regenerates the dashboard's pictures in docs/. Without an option:
// docs/dashboard.png, from one small real SimCLR job (with linear probe, fine-tune, kNN and the
// supervised baseline at three label fractions) trained on a temporary ssld, its job page
// screenshotted in headless Chromium (about a minute on an idle machine). With --submit:
// docs/dashboard-submit.png, the Submit form (its job, dataset, method-parameter and model
// sections, a CNN encoder) on an ssld that only queues (a few seconds). Not a test (nothing is asserted).
//
//   node tests/browser/docs_screenshot.mjs build/daemon/ssld [--submit] [OUT.png]

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ssld, launchChromium, shortJob, sleep } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const exe = args.shift();
const submit = args[0] === '--submit' ? Boolean(args.shift()) : false;
const out = args[0] || path.join(here, '..', '..', 'docs', submit ? 'dashboard-submit.png' : 'dashboard.png');
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
  await page.waitForFunction(() => document.querySelector('main')?.dataset.ready === 'true' && document.querySelector('.eff-box .uplot'), null, { timeout: 30000 });
  await sleep(800);
  await page.screenshot({ path: out, fullPage: true });
}

async function submitForm() {
  await d.start('--workers', '0');
  b = await launchChromium({ width: 1280, height: 3200 });   // the whole form in the viewport
  const page = await b.context.newPage();
  await page.goto(d.url('/#/submit'));
  await page.locator('#panel-form select[name="model.encoder"]').waitFor({ timeout: 30000 });
  await page.locator('#panel-form select[name="model.encoder"]').selectOption('cnn');
  await page.locator('#panel-form input[name="model.pool_grid"]').fill('2');
  await page.evaluate(() => window.scrollTo(0, 0));
  const top = await page.locator('#panel-form [data-section="job"]').boundingBox();
  const bottom = await page.locator('#panel-form [data-section="model"]').boundingBox();
  await page.screenshot({ path: out, clip: { x: 0, y: top.y - 12, width: 1280, height: bottom.y + bottom.height - top.y + 24 } });
}

try {
  await (submit ? submitForm() : jobPage());
  console.log('wrote ' + out);
} finally {
  if (b) await b.close();
  await d.stop();
}
