// docs_screenshot.mjs - regenerates docs/dashboard.png: trains one small real SimCLR job (with
// linear probe, fine-tune, kNN and the supervised baseline at three label fractions) on a
// temporary ssld, and screenshots its job page in headless Chromium. Not a test (nothing is
// asserted); about a minute on an idle machine.
//
//   node tests/browser/docs_screenshot.mjs build/daemon/ssld [OUT.png]

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ssld, launchChromium, shortJob, sleep } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const exe = process.argv[2];
const out = process.argv[3] || path.join(here, '..', '..', 'docs', 'dashboard.png');
const d = new Ssld(exe, path.join(here, '..', '..', 'web'));
let b;
try {
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
  console.log('wrote ' + out);
} finally {
  if (b) await b.close();
  await d.stop();
}
